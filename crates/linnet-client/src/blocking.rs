//! The blocking facade for programs without async: a paho-style [`Client`] with callbacks
//! (`on_connect`, `on_message`, `on_disconnect`) and a loop (`loop_forever`, or
//! `loop_start` on a thread of its own), plus blocking one-shot helpers.
//!
//! Each [`Client`] runs a private current-thread tokio runtime on its own thread; that
//! thread drives the connection, so the connection stays alive (acks, keep alive) whether or
//! not a loop runs. The loop only calls the callbacks. Calls block the calling thread and may
//! be made from callbacks, but not from inside an async runtime.
//!
//! ```no_run
//! use linnet_client::blocking::Client;
//! use linnet_client::{ConnectOptions, QoS};
//!
//! let client = Client::new(ConnectOptions::new("localhost", 1883)).unwrap();
//! client.on_connect(|client, code| {
//!     if code == 0 {
//!         client.subscribe("python/mqtt", QoS::AtMostOnce).unwrap();
//!     }
//! });
//! client.on_message(|_client, msg| {
//!     println!("Received `{}` from `{}` topic", msg.payload_str(), msg.topic);
//! });
//! client.connect().unwrap();
//! client.loop_forever().unwrap();
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use linnet_proto::{QoS, ReasonCode};
use tokio::sync::oneshot;

use crate::{
    ClientError, ConnectOptions, Connected, Event, Message, OutgoingMessage, PublishOutcome,
};

type ConnectCallback = Box<dyn FnMut(&Client, u8) + Send>;
type MessageCallback = Box<dyn FnMut(&Client, &Message) + Send>;
type DisconnectCallback = Box<dyn FnMut(&Client, Option<ReasonCode>) + Send>;

/// What the loop receives.
enum Item {
    Event(Box<Event>),
    /// `loop_stop` asked the loop to return.
    Stop,
}

/// A paho-style blocking client; cheap to clone (clones share the connection).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Client")
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

struct Inner {
    opts: ConnectOptions,
    client_id: String,
    runtime: tokio::runtime::Handle,
    /// Dropping it stops the runtime thread.
    _stop: oneshot::Sender<()>,
    client: Mutex<Option<crate::Client>>,
    items_tx: std_mpsc::Sender<Item>,
    items_rx: Mutex<Option<std_mpsc::Receiver<Item>>>,
    on_connect: Mutex<Option<ConnectCallback>>,
    on_message: Mutex<Option<MessageCallback>>,
    on_disconnect: Mutex<Option<DisconnectCallback>>,
    /// The application called `disconnect`.
    closed: AtomicBool,
    loop_thread: Mutex<Option<JoinHandle<Result<(), ClientError>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Client {
    /// A client for these options; nothing is connected yet. Starts the runtime thread.
    pub fn new(opts: ConnectOptions) -> Result<Self, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ClientError::Io {
                addr: "tokio runtime".into(),
                source,
            })?;
        let runtime = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("linnet-client".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|source| ClientError::Io {
                addr: "client thread".into(),
                source,
            })?;
        let (items_tx, items_rx) = std_mpsc::channel();
        Ok(Self {
            inner: Arc::new(Inner {
                client_id: opts.client_id_str().to_owned(),
                opts,
                runtime,
                _stop: stop,
                client: Mutex::new(None),
                items_tx,
                items_rx: Mutex::new(Some(items_rx)),
                on_connect: Mutex::new(None),
                on_message: Mutex::new(None),
                on_disconnect: Mutex::new(None),
                closed: AtomicBool::new(false),
                loop_thread: Mutex::new(None),
            }),
        })
    }

    /// Called after each (re)connect with the CONNACK code (0: accepted; otherwise the v3
    /// return code or v5 reason code, see [`reason_text`](crate::reason_text)).
    pub fn on_connect(&self, f: impl FnMut(&Client, u8) + Send + 'static) {
        *lock(&self.inner.on_connect) = Some(Box::new(f));
    }

    /// Called for each received message.
    pub fn on_message(&self, f: impl FnMut(&Client, &Message) + Send + 'static) {
        *lock(&self.inner.on_message) = Some(Box::new(f));
    }

    /// Called when the connection ends (with the server's reason if it sent DISCONNECT).
    pub fn on_disconnect(&self, f: impl FnMut(&Client, Option<ReasonCode>) + Send + 'static) {
        *lock(&self.inner.on_disconnect) = Some(Box::new(f));
    }

    /// Runs `fut` on the client's runtime and waits for it.
    fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, ClientError>> + Send + 'static,
    ) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.inner.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.blocking_recv().unwrap_or(Err(ClientError::Closed))
    }

    fn handle(&self) -> Result<crate::Client, ClientError> {
        lock(&self.inner.client).clone().ok_or(ClientError::Closed)
    }

    /// Connects. A refusal calls `on_connect` with the code and returns
    /// [`ClientError::Refused`]; on success `on_connect` runs from the loop.
    pub fn connect(&self) -> Result<Connected, ClientError> {
        let opts = self.inner.opts.clone();
        let items = self.inner.items_tx.clone();
        let result = self.block(async move {
            let (client, mut messages, connected) = crate::Client::connect(opts).await?;
            tokio::spawn(async move {
                while let Some(event) = messages.next_event().await {
                    if items.send(Item::Event(Box::new(event))).is_err() {
                        break;
                    }
                }
            });
            Ok((client, connected))
        });
        match result {
            Ok((client, connected)) => {
                self.inner.closed.store(false, Ordering::SeqCst);
                *lock(&self.inner.client) = Some(client);
                Ok(connected)
            }
            Err(e) => {
                if let ClientError::Refused { code, .. } = &e {
                    self.call_on_connect(*code);
                }
                Err(e)
            }
        }
    }

    fn call_on_connect(&self, code: u8) {
        let taken = lock(&self.inner.on_connect).take();
        if let Some(mut f) = taken {
            f(self, code);
            let mut slot = lock(&self.inner.on_connect);
            if slot.is_none() {
                *slot = Some(f);
            }
        }
    }

    fn call_on_message(&self, msg: &Message) {
        let taken = lock(&self.inner.on_message).take();
        if let Some(mut f) = taken {
            f(self, msg);
            let mut slot = lock(&self.inner.on_message);
            if slot.is_none() {
                *slot = Some(f);
            }
        }
    }

    fn call_on_disconnect(&self, reason: Option<ReasonCode>) {
        let taken = lock(&self.inner.on_disconnect).take();
        if let Some(mut f) = taken {
            f(self, reason);
            let mut slot = lock(&self.inner.on_disconnect);
            if slot.is_none() {
                *slot = Some(f);
            }
        }
    }

    /// Subscribes; returns the granted QoS as a reason code.
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Result<ReasonCode, ClientError> {
        let client = self.handle()?;
        let filter = filter.to_owned();
        self.block(async move { client.subscribe(&filter, qos).await })
    }

    /// Unsubscribes.
    pub fn unsubscribe(&self, filters: Vec<String>) -> Result<Vec<ReasonCode>, ClientError> {
        let client = self.handle()?;
        self.block(async move { client.unsubscribe(filters).await })
    }

    /// Publishes and waits for the QoS flow to complete.
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<PublishOutcome, ClientError> {
        self.publish_message(OutgoingMessage::new(topic, payload).qos(qos).retain(retain))
    }

    /// Publishes a message with all its options.
    pub fn publish_message(&self, msg: OutgoingMessage) -> Result<PublishOutcome, ClientError> {
        let client = self.handle()?;
        self.block(async move { client.publish_message(msg).await })
    }

    /// Acknowledges a message (manual-ack mode).
    pub fn ack(&self, msg: &Message) -> Result<(), ClientError> {
        let client = self.handle()?;
        let msg = msg.clone();
        self.block(async move { client.ack(&msg).await })
    }

    /// Sends DISCONNECT and ends the connection; a running loop then returns `Ok`.
    pub fn disconnect(&self) -> Result<(), ClientError> {
        self.inner.closed.store(true, Ordering::SeqCst);
        let Some(client) = lock(&self.inner.client).take() else {
            return Ok(());
        };
        self.block(async move { client.disconnect().await })
    }

    /// Calls the callbacks for every event until the connection ends (`Ok` after
    /// [`Client::disconnect`], [`ClientError::ConnectionLost`] otherwise) or `loop_stop`.
    pub fn loop_forever(&self) -> Result<(), ClientError> {
        let Some(rx) = lock(&self.inner.items_rx).take() else {
            return Err(ClientError::invalid("loop", "a loop is already running"));
        };
        let result = self.run_loop(&rx);
        *lock(&self.inner.items_rx) = Some(rx);
        result
    }

    fn run_loop(&self, rx: &std_mpsc::Receiver<Item>) -> Result<(), ClientError> {
        loop {
            // Wake now and then to notice a client whose task ended without an event.
            let item = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(item) => item,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    let ended = lock(&self.inner.client)
                        .as_ref()
                        .map_or(true, crate::Client::is_closed);
                    if ended && rx.try_recv().is_err() {
                        return self.loop_result();
                    }
                    continue;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return self.loop_result(),
            };
            let event = match item {
                Item::Stop => return Ok(()),
                Item::Event(event) => *event,
            };
            match event {
                Event::Connected(c) => self.call_on_connect(c.reason.0),
                Event::Message(m) => self.call_on_message(&m),
                Event::Disconnected { reason, .. } => self.call_on_disconnect(reason),
                Event::ConnectFailed { .. } | Event::ResubscribeFailed { .. } => {}
            }
        }
    }

    fn loop_result(&self) -> Result<(), ClientError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(ClientError::ConnectionLost)
        }
    }

    /// Runs [`Client::loop_forever`] on a new thread.
    pub fn loop_start(&self) -> Result<(), ClientError> {
        let mut slot = lock(&self.inner.loop_thread);
        if slot.is_some() {
            return Err(ClientError::invalid("loop", "a loop is already running"));
        }
        let me = self.clone();
        let thread = std::thread::Builder::new()
            .name("linnet-client-loop".into())
            .spawn(move || me.loop_forever())
            .map_err(|source| ClientError::Io {
                addr: "loop thread".into(),
                source,
            })?;
        *slot = Some(thread);
        Ok(())
    }

    /// Stops the thread started by [`Client::loop_start`] and waits for it.
    pub fn loop_stop(&self) -> Result<(), ClientError> {
        let thread = lock(&self.inner.loop_thread).take();
        let Some(thread) = thread else {
            return Ok(());
        };
        let _ = self.inner.items_tx.send(Item::Stop);
        match thread.join() {
            Ok(result) => result,
            Err(_) => Err(ClientError::Protocol("the loop thread panicked".into())),
        }
    }
}

/// Runs an async helper on a temporary runtime.
fn run<T>(fut: impl Future<Output = Result<T, ClientError>>) -> Result<T, ClientError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ClientError::Io {
            addr: "tokio runtime".into(),
            source,
        })?;
    rt.block_on(fut)
}

/// Blocking [`crate::simple::publish_single`].
pub fn publish_single(
    opts: ConnectOptions,
    topic: &str,
    payload: impl Into<Bytes>,
    qos: QoS,
    retain: bool,
) -> Result<PublishOutcome, ClientError> {
    run(crate::simple::publish_single(
        opts, topic, payload, qos, retain,
    ))
}

/// Blocking [`crate::simple::publish_multiple`].
pub fn publish_multiple(
    opts: ConnectOptions,
    msgs: Vec<OutgoingMessage>,
) -> Result<Vec<PublishOutcome>, ClientError> {
    run(crate::simple::publish_multiple(opts, msgs))
}

/// Blocking [`crate::simple::receive`].
pub fn receive(
    opts: ConnectOptions,
    filters: &[&str],
    qos: QoS,
    count: usize,
    timeout: Option<Duration>,
) -> Result<Vec<Message>, ClientError> {
    run(crate::simple::receive(opts, filters, qos, count, timeout))
}
