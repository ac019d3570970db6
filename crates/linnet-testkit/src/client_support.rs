//! Support for the linnet-client suites (tests/14_client.rs, 15_client_reconnect.rs and
//! 16_client_mosquitto.rs): bounded waits ([`within`]), client event waiters, a raw-packet
//! fake server ([`fake_server`], [`Peer`]) that watches the client packet by packet, a relay
//! ([`Gate`]) that holds reconnects until the test opens it, and the broker-restart scenario
//! ([`RestartScenario`]) run against both Linnet and Mosquitto.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::future::join_all;
use linnet_client::{Backoff, Client, ConnectOptions, Event, Message, Messages, QoS};
use linnet_proto::{
    ConnAck, ConnAckProperties, Connect, Decoder, Packet, ProtocolVersion, Publish, ReasonCode,
    Subscribe,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every await in the client suites is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(5);

/// Awaits `f`, panicking with `what` if it takes longer than [`LIMIT`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// A reconnect backoff short enough for tests.
pub fn fast_backoff() -> Option<Backoff> {
    Some(Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    })
}

/// Connects and asserts a successful CONNACK.
pub async fn connect(options: ConnectOptions) -> (Client, Messages) {
    let (client, messages, connected) = within("connect", Client::connect(options))
        .await
        .expect("connects");
    assert!(connected.reason.is_success());
    (client, messages)
}

/// The next message, which must come before the connection ends.
pub async fn next_message(messages: &mut Messages) -> Message {
    within("message", messages.recv())
        .await
        .expect("a message before the connection ended")
}

/// Waits for the next event matching `pred`, skipping others.
pub async fn wait_event(
    messages: &mut Messages,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    within(what, async {
        loop {
            match messages.next_event().await {
                Some(e) if pred(&e) => return e,
                Some(_) => continue,
                None => panic!("client ended while waiting for {what}"),
            }
        }
    })
    .await
}

/// Whether `e` is [`Event::Disconnected`].
pub fn is_disconnected(e: &Event) -> bool {
    matches!(e, Event::Disconnected { .. })
}

/// Whether `e` is [`Event::Connected`].
pub fn is_connected(e: &Event) -> bool {
    matches!(e, Event::Connected(_))
}

/// A listener on an ephemeral loopback port for a fake server, and its address.
pub async fn fake_server() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

/// A fake server and a client connected to it with the options `options` builds for the
/// server's port (CONNACK: no session present, with `properties` if given). The listener
/// stays open for reconnects as long as the caller keeps it.
pub async fn fake_pair(
    options: impl FnOnce(u16) -> ConnectOptions,
    properties: Option<ConnAckProperties>,
) -> (TcpListener, Peer, Client, Messages) {
    let (listener, addr) = fake_server().await;
    let connecting = tokio::spawn(Client::connect(options(addr.port())));
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.connack(false, properties).await;
    let (client, messages, _) = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");
    (listener, peer, client, messages)
}

/// One accepted connection of a fake server.
#[derive(Debug)]
pub struct Peer {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Peer {
    /// Accepts a connection and reads its CONNECT.
    pub async fn accept(listener: &TcpListener) -> (Self, Connect) {
        let (stream, _) = within("accept", listener.accept()).await.expect("accept");
        let mut peer = Self {
            stream,
            decoder: Decoder::default(),
            buf: BytesMut::new(),
            version: ProtocolVersion::V3_1_1,
        };
        match peer.recv().await {
            Some(Packet::Connect(c)) => {
                peer.version = c.protocol;
                (peer, *c)
            }
            other => panic!("expected CONNECT first, got {other:?}"),
        }
    }

    /// Encodes `packet` in the client's protocol version and writes it.
    pub async fn send(&mut self, packet: impl Into<Packet>) {
        let mut out = BytesMut::new();
        packet
            .into()
            .encode(self.version, &mut out)
            .expect("encodes");
        self.stream.write_all(&out).await.expect("write");
    }

    /// Writes raw bytes (a malformed packet, say) as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next packet, or None when the client closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        within("packet from the client", async {
            loop {
                if let Some(p) = self.decoder.decode(&mut self.buf).expect("valid packet") {
                    return Some(p);
                }
                self.buf.reserve(4096);
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
    }

    /// The next packet, which must come before the client closes the connection.
    pub async fn expect(&mut self) -> Packet {
        self.recv().await.expect("a packet, not a close")
    }

    /// The next packet, which must be a PUBLISH.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.expect().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// The next packet, which must be a SUBSCRIBE.
    pub async fn expect_subscribe(&mut self) -> Subscribe {
        match self.expect().await {
            Packet::Subscribe(s) => s,
            other => panic!("expected SUBSCRIBE, got {other:?}"),
        }
    }

    /// Asserts that the client sends nothing for `d` (a check that can only miss a bug under
    /// load, never fail a correct client).
    pub async fn quiet(&mut self, d: Duration, why: &str) {
        if let Ok(p) = tokio::time::timeout(d, self.recv()).await {
            panic!("{why}: got {p:?}");
        }
    }

    /// Sends a successful CONNACK, with `properties` if given.
    pub async fn connack(&mut self, session_present: bool, properties: Option<ConnAckProperties>) {
        let mut c = ConnAck::new(session_present, ReasonCode::SUCCESS);
        if let Some(p) = properties {
            c.properties = p;
        }
        self.send(c).await;
    }
}

/// A TCP relay to `upstream` that holds new connections while closed: a client reconnecting
/// through it gets through only once the test opens it (a gate instead of a race with the
/// reconnect backoff).
#[derive(Debug)]
pub struct Gate {
    /// The loopback port the relay listens on.
    pub port: u16,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    /// Starts an open gate in front of `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (open, rx) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    if rx.wait_for(|open| *open).await.is_err() {
                        return;
                    }
                    if let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        });
        Gate { port, open }
    }

    /// Opens or closes the gate for connections not yet let through.
    pub fn set(&self, open: bool) {
        self.open.send_replace(open);
    }
}

/// A broker restarted on the same port mid-stream (losing every session): a subscriber
/// connected straight to it and a publisher going through a [`Gate`], both reconnecting.
/// Publishes made during the outage wait in the offline queue, the subscriber re-subscribes,
/// and only then does the gate let the publisher through: each outage message arrives
/// exactly once, in order.
#[derive(Debug)]
pub struct RestartScenario {
    /// The topic the subscriber subscribes to and the publisher publishes on.
    pub topic: &'static str,
    /// How many messages the publisher sends while the broker is down.
    pub outage_messages: usize,
    /// The broker's TCP port (the same before and after the restart).
    pub broker_port: u16,
    /// The subscriber's options: straight to the broker, with a session and reconnect.
    pub subscriber: ConnectOptions,
    /// The publisher's protocol version.
    pub publisher_version: ProtocolVersion,
}

impl RestartScenario {
    /// Runs the scenario: `stop` takes `broker` down, `start` brings it back on the same
    /// port from what `stop` returned. Returns the restarted broker.
    pub async fn run<B, S, Stopping, Starting>(
        self,
        broker: B,
        stop: impl FnOnce(B) -> Stopping,
        start: impl FnOnce(S) -> Starting,
    ) -> B
    where
        Stopping: Future<Output = S>,
        Starting: Future<Output = B>,
    {
        let topic = self.topic;
        let gate = Gate::start(self.broker_port).await;
        let pub_opts = ConnectOptions::new("127.0.0.1", gate.port)
            .version(self.publisher_version)
            .reconnect(fast_backoff());
        let (sub, mut sub_events) = connect(self.subscriber).await;
        within("subscribe", sub.subscribe(topic, QoS::AtLeastOnce))
            .await
            .expect("granted");
        let (publisher, mut pub_events) = connect(pub_opts).await;
        within(
            "publish",
            publisher.publish(topic, "before", QoS::AtLeastOnce, false),
        )
        .await
        .expect("acked");
        assert_eq!(next_message(&mut sub_events).await.payload_str(), "before");

        gate.set(false);
        let stopped = stop(broker).await;
        wait_event(&mut sub_events, "sub Disconnected", is_disconnected).await;
        wait_event(&mut pub_events, "pub Disconnected", is_disconnected).await;
        let p = publisher.clone();
        let during = tokio::spawn(async move {
            join_all((1..=self.outage_messages).map(|i| {
                let p = p.clone();
                async move {
                    p.publish(topic, format!("during {i}"), QoS::AtLeastOnce, false)
                        .await
                }
            }))
            .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!during.is_finished(), "publishes wait in the offline queue");

        let broker = start(stopped).await;
        match wait_event(&mut sub_events, "sub Connected", is_connected).await {
            Event::Connected(c) => assert!(!c.session_present, "a restarted broker has no session"),
            _ => unreachable!(),
        }
        // The automatic re-subscribe went out before this SUBSCRIBE: its SUBACK means both
        // are in place. Only then may the publisher through.
        within("subscribe", sub.subscribe(topic, QoS::AtLeastOnce))
            .await
            .expect("granted");
        gate.set(true);
        for r in within("outage publishes", during).await.expect("task") {
            r.expect("acknowledged after the restart");
        }
        let mut got = Vec::new();
        while got.len() < self.outage_messages {
            got.push(
                next_message(&mut sub_events)
                    .await
                    .payload_str()
                    .to_string(),
            );
        }
        assert_eq!(
            got,
            (1..=self.outage_messages)
                .map(|i| format!("during {i}"))
                .collect::<Vec<_>>(),
            "each exactly once, in order"
        );
        if let Ok(Some(extra)) =
            tokio::time::timeout(Duration::from_millis(300), sub_events.recv()).await
        {
            panic!("duplicate after the restart: {extra:?}");
        }
        broker
    }
}
