//! `linnet-client`: an MQTT 3.1.1 / 5.0 client for tokio.
//!
//! This file owns the public surface: the handle [`Client`], the receiver [`Messages`], the
//! message and outcome types, and re-exports. The protocol state (packet ids, in-flight
//! window, aliases, offline queue) lives in `state`, a plain struct without I/O; the tokio task
//! that owns the socket and drives that state lives in `connection`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), linnet_client::ClientError> {
//! use linnet_client::{Client, ConnectOptions, QoS};
//!
//! let (client, mut messages, connected) =
//!     Client::connect(ConnectOptions::new("localhost", 1883)).await?;
//! assert!(connected.reason.is_success());
//! client.subscribe("python/mqtt", QoS::AtLeastOnce).await?;
//! client.publish("python/mqtt", "messages: 1", QoS::AtLeastOnce, false).await?;
//! while let Some(msg) = messages.recv().await {
//!     println!("Received `{}` from `{}` topic", String::from_utf8_lossy(&msg.payload), msg.topic);
//! }
//! # Ok(()) }
//! ```
//!
//! # How the connection runs
//!
//! [`Client::connect`] opens the transport, completes CONNECT / CONNACK and spawns one task
//! that owns the socket. [`Client`] is a cheap handle that sends commands to that task; each
//! call waits for its own reply (a PUBACK, a SUBACK...). Incoming messages and connection
//! events go to [`Messages`] over an **unbounded** channel: the task never waits for the
//! application, so acknowledgements and keep alive go on even if `Messages` is never read
//! (nothing hangs for want of polling a second object). The cost is memory if the application
//! never reads; with [`ConnectOptions::manual_ack`] the server's flow control (our Receive
//! Maximum) bounds what can pile up. Dropping `Messages` discards later messages. The task
//! ends, sending DISCONNECT, on [`Client::disconnect`] or when every `Client` and the
//! `Messages` are dropped.
//!
//! # Reconnect, session resumption and the offline queue
//!
//! With [`ConnectOptions::reconnect`] a lost connection is retried with capped exponential
//! backoff and jitter ([`Backoff`]); the backoff starts over only after a connection stayed up
//! for 10 s, and each failed attempt is an [`Event::ConnectFailed`] (with the CONNACK refusal
//! code, if any). A write the server does not take within 1.5 times the keep alive is a lost
//! connection. Reconnects ask to resume the session (MQTT 5.0: Clean
//! Start 0; MQTT 3.x keeps the Clean Session flag the application chose, because a 3.x session
//! never expires). If CONNACK says the session is present, unacknowledged QoS 1/2 PUBLISHes
//! are re-sent with DUP set (as far as the server's new Receive Maximum allows, the rest as
//! acks come) and QoS 2 messages waiting for PUBCOMP get their PUBREL again, in their
//! original order. If the session was lost, the client re-subscribes every filter it holds
//! (before any SUBSCRIBE / UNSUBSCRIBE still pending; refused filters are an
//! [`Event::ResubscribeFailed`] and forgotten) and sends the unacknowledged messages again as
//! new messages (at-least-once holds); QoS 2 messages already in the PUBREL stage were
//! received by the server and complete.
//!
//! **Offline queue policy:** publishes issued while disconnected (during reconnect) wait in a
//! queue of at most [`ConnectOptions::offline_queue`] messages (default 1000), in order; when
//! it is full, `publish` fails at once with [`ClientError::QueueFull`] and the queue keeps
//! what it had. Queued messages are sent after the next CONNACK; a v5 Message Expiry
//! Interval counts the time spent waiting (an expired message is dropped and its `publish`
//! fails with [`ClientError::Timeout`]). While connected, publishes
//! beyond the server's Receive Maximum wait in the same queue (without that limit: each caller
//! awaits its publish, which bounds them). Without reconnect, a lost connection fails every
//! waiting call with [`ClientError::ConnectionLost`].

mod connection;
mod error;
mod options;
mod rand;
mod state;
mod transport;

pub mod blocking;
pub mod simple;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use error::{reason_text, ClientError};
pub use linnet_proto::{
    AckProperties, Bytes, ConnAckProperties, ConnectProperties, ConnectReturnCode,
    DisconnectProperties, ProtocolVersion, PublishProperties, QoS, ReasonCode, RetainHandling,
    SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, UserProperty, WillProperties,
};
pub use options::{AuthHandler, Backoff, ConnectOptions, LastWill, Transport};

use connection::Command;

/// What CONNACK said.
#[derive(Clone, Debug)]
pub struct Connected {
    pub session_present: bool,
    /// The v5 reason code (for 3.x, the return code mapped onto it: 0x00 when accepted).
    pub reason: ReasonCode,
    pub properties: ConnAckProperties,
    /// The client id the server assigned when the client sent an empty one (v5).
    pub assigned_client_id: Option<String>,
}

/// Which PUBLISH a manual acknowledgement answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AckToken {
    /// The connection the PUBLISH arrived on; an ack for an older connection is dropped (the
    /// server re-sends the message after a reconnect).
    pub(crate) generation: u64,
    pub(crate) packet_id: u16,
    pub(crate) qos: QoS,
}

/// A received application message.
#[derive(Clone, Debug)]
pub struct Message {
    /// The topic, with any topic alias already resolved.
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub dup: bool,
    /// The packet identifier (QoS 1/2), as mosquitto_sub's `%m` prints it.
    pub packet_id: Option<u16>,
    /// The properties as received (`topic_alias` kept if the server used one).
    pub properties: PublishProperties,
    pub(crate) ack: Option<AckToken>,
}

impl Message {
    /// The payload as text (lossy UTF-8).
    pub fn payload_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.payload)
    }
}

/// An outgoing message with every option.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: PublishProperties,
}

impl OutgoingMessage {
    /// A QoS 0, non-retained message without properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: PublishProperties::default(),
        }
    }

    pub fn qos(mut self, q: QoS) -> Self {
        self.qos = q;
        self
    }

    pub fn retain(mut self, r: bool) -> Self {
        self.retain = r;
        self
    }

    /// Sets all v5 PUBLISH properties.
    pub fn properties(mut self, p: PublishProperties) -> Self {
        self.properties = p;
        self
    }
}

/// Outcome of a publish: QoS 0 -> written to the socket (reason 0x00); QoS 1 -> the PUBACK's
/// reason; QoS 2 -> the PUBREC's reason when it is not 0x00, else the PUBCOMP's.
#[derive(Clone, Debug)]
pub struct PublishOutcome {
    pub reason: ReasonCode,
    pub properties: AckProperties,
}

/// What arrives on [`Messages`]: messages and connection events, in order.
#[derive(Clone, Debug)]
pub enum Event {
    Message(Message),
    /// After each (re)connect, including the first.
    Connected(Connected),
    /// The connection ended: a server DISCONNECT (with its reason) or the transport was lost
    /// (`reason` None, or 0x8D when keep alive ran out).
    Disconnected {
        reason: Option<ReasonCode>,
        reason_string: Option<String>,
    },
    /// A reconnect attempt failed: `code` is the CONNACK refusal (v3 return code or v5
    /// reason code, e.g. 0x87 / 5 "not authorized"), None when the transport or handshake
    /// failed; `text` says what happened. The client keeps trying (backoff applies).
    ConnectFailed {
        code: Option<u8>,
        text: String,
    },
    /// After a session loss the client re-subscribes what the old session held; these
    /// filters were refused (with the server's code) and are no longer subscribed.
    ResubscribeFailed {
        failed: Vec<(String, ReasonCode)>,
    },
}

/// A cheap, cloneable handle to the connection task.
#[derive(Clone, Debug)]
pub struct Client {
    tx: mpsc::UnboundedSender<Command>,
    version: ProtocolVersion,
}

/// Incoming messages and events; see the crate docs for why this channel is unbounded.
/// `recv` and `next_event` are cancel-safe: they may be used in `tokio::select!` without
/// losing anything.
#[derive(Debug)]
pub struct Messages {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Client {
    /// Opens the transport, sends CONNECT, waits for CONNACK (all within the connect
    /// timeout) and spawns the connection task. A refusal is [`ClientError::Refused`] with the
    /// v3 return code or v5 reason code. Must be called within a tokio runtime.
    pub async fn connect(
        opts: ConnectOptions,
    ) -> Result<(Client, Messages, Connected), ClientError> {
        let version = opts.version;
        let (tx, rx, connected) = connection::start(opts).await?;
        Ok((Client { tx, version }, Messages { rx }, connected))
    }

    /// Publishes `payload` to `topic`; resolves when the QoS flow completes.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Result<PublishOutcome, ClientError> {
        self.publish_message(OutgoingMessage::new(topic, payload).qos(qos).retain(retain))
            .await
    }

    /// Publishes a message with all its options. A PUBACK / PUBREC failure code is
    /// [`ClientError::Rejected`]; a message larger than the server's Maximum Packet Size is
    /// `Rejected` with 0x95 (packet too large), one MQTT cannot encode is
    /// [`ClientError::Invalid`]; either way nothing is sent.
    ///
    /// Topic aliases are automatic (when the server allows them): the topic must not be
    /// empty, and a Topic Alias property set in `msg` is ignored.
    pub async fn publish_message(
        &self,
        mut msg: OutgoingMessage,
    ) -> Result<PublishOutcome, ClientError> {
        linnet_proto::topic::validate_topic_name(&msg.topic)
            .map_err(|e| ClientError::invalid("topic", format!("{:?}: {e}", msg.topic)))?;
        msg.properties.topic_alias = None;
        if !msg.properties.subscription_identifiers.is_empty() {
            // [MQTT-3.3.4-6]
            return Err(ClientError::invalid(
                "properties",
                "a client PUBLISH carries no subscription identifier",
            ));
        }
        self.call(|reply| Command::Publish { msg, reply }).await
    }

    /// Subscribes to one filter; returns the granted QoS as a reason code, or
    /// [`ClientError::Rejected`] if the server refused it.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<ReasonCode, ClientError> {
        let codes = self
            .subscribe_many(
                vec![(filter.to_owned(), SubscriptionOptions::qos(qos))],
                SubscribeProperties::default(),
            )
            .await?;
        match codes.first() {
            Some(code) if code.is_success() => Ok(*code),
            Some(code) => Err(ClientError::Rejected {
                code: code.0,
                text: reason_text(self.version, code.0).to_owned(),
            }),
            None => Err(ClientError::Protocol("SUBACK without reason codes".into())),
        }
    }

    /// Subscribes to several filters in one SUBSCRIBE; returns one code per filter (failures
    /// included, as codes >= 0x80). Granted filters are re-subscribed after a session loss.
    pub async fn subscribe_many(
        &self,
        subs: Vec<(String, SubscriptionOptions)>,
        properties: SubscribeProperties,
    ) -> Result<Vec<ReasonCode>, ClientError> {
        if subs.is_empty() {
            return Err(ClientError::invalid("subscribe", "no topic filter"));
        }
        let mut checked = Vec::with_capacity(subs.len());
        for (filter, options) in subs {
            let filter = TopicFilter::new(filter.as_str())
                .map_err(|e| ClientError::invalid("topic filter", format!("{filter:?}: {e}")))?;
            checked.push((filter, options));
        }
        self.call(|reply| Command::Subscribe {
            subs: checked,
            properties,
            reply,
        })
        .await
    }

    /// Subscribes to `filter` with a handler of its own: messages whose topic matches it go to
    /// the returned [`FilterMessages`] instead of [`Messages`] (to every handler that matches;
    /// to `Messages` only when none does). Dropping the receiver ends the routing, not the
    /// subscription; unsubscribing the filter ends both.
    pub async fn subscribe_handler(
        &self,
        filter: &str,
        qos: QoS,
    ) -> Result<(ReasonCode, FilterMessages), ClientError> {
        let checked = TopicFilter::new(filter)
            .map_err(|e| ClientError::invalid("topic filter", format!("{filter:?}: {e}")))?;
        let (tx, rx) = mpsc::unbounded_channel();
        // Routed before SUBSCRIBE goes out, so retained messages find their handler.
        self.tx
            .send(Command::Route {
                filter: checked,
                tx,
            })
            .map_err(|_| ClientError::Closed)?;
        let code = self.subscribe(filter, qos).await?;
        Ok((code, FilterMessages { rx }))
    }

    /// Unsubscribes; returns one code per filter (v3.1.1 has none: all 0x00).
    pub async fn unsubscribe(&self, filters: Vec<String>) -> Result<Vec<ReasonCode>, ClientError> {
        if filters.is_empty() {
            return Err(ClientError::invalid("unsubscribe", "no topic filter"));
        }
        let mut checked = Vec::with_capacity(filters.len());
        for filter in filters {
            let f = TopicFilter::new(filter.as_str())
                .map_err(|e| ClientError::invalid("topic filter", format!("{filter:?}: {e}")))?;
            checked.push(f);
        }
        self.call(|reply| Command::Unsubscribe {
            filters: checked,
            reply,
        })
        .await
    }

    /// Acknowledges a message received in manual-ack mode (PUBACK for QoS 1, PUBREC for QoS 2).
    /// Acks go out in the order the messages arrived [MQTT-4.6.0-2]: a message acknowledged
    /// early waits for the ones before it. Does nothing for QoS 0 or in automatic mode, and
    /// for a message from an earlier connection (the server sends it again).
    pub async fn ack(&self, msg: &Message) -> Result<(), ClientError> {
        match msg.ack {
            Some(token) => self
                .tx
                .send(Command::Ack(token))
                .map_err(|_| ClientError::Closed),
            None => Ok(()),
        }
    }

    /// Sends DISCONNECT (normal disconnection) and ends the connection task.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(
            ReasonCode::NORMAL_DISCONNECTION,
            DisconnectProperties::default(),
        )
        .await
    }

    /// Sends DISCONNECT with a reason (v5; e.g. 0x04 to have the will published) and ends
    /// the connection task. Succeeds also if the task had already ended.
    pub async fn disconnect_with(
        &self,
        reason: ReasonCode,
        properties: DisconnectProperties,
    ) -> Result<(), ClientError> {
        match self
            .call(|reply| Command::Disconnect {
                reason,
                properties,
                reply,
            })
            .await
        {
            Ok(()) | Err(ClientError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// MQTT 5.0 re-authentication [MQTT-4.12.1-1]: sends AUTH 0x19 with the Authentication
    /// Method given at connect and `data`; the server's challenges are answered by the
    /// handler from [`ConnectOptions::authentication`]. Resolves when the server's AUTH 0x00
    /// (success) arrives. Fails with `Invalid` if no authentication method was configured.
    pub async fn reauthenticate(&self, data: Option<Bytes>) -> Result<(), ClientError> {
        self.call(|reply| Command::Reauthenticate { data, reply })
            .await
    }

    /// The protocol version of this client.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// Whether the connection task has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command,
    ) -> Result<T, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| ClientError::Closed)?;
        rx.await.unwrap_or(Err(ClientError::Closed))
    }
}

/// The messages of one filter, from [`Client::subscribe_handler`].
#[derive(Debug)]
pub struct FilterMessages {
    rx: mpsc::UnboundedReceiver<Message>,
}

impl FilterMessages {
    /// The next message for this filter; `None` after the connection task ended or the filter
    /// was unsubscribed. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }
}

impl Messages {
    /// The next message, skipping other events; `None` after the connection task ended.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            match self.rx.recv().await? {
                Event::Message(m) => return Some(m),
                _ => continue,
            }
        }
    }

    /// The next message or event; `None` after the connection task ended.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// [`Messages::recv`] with a time limit: `Ok(None)` when the task ended,
    /// `Err(Timeout)` when nothing came in time.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<Option<Message>, ClientError> {
        tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| ClientError::Timeout("waiting for a message"))
    }
}
