//! linnet-client against the in-process broker (and against a raw-packet fake server where
//! the server has to misbehave or be watched byte by byte): QoS flows both ways, subscribe
//! codes, v5 properties, topic aliases, WebSocket, Receive Maximum, manual ack, keep alive,
//! the blocking facade and the one-shot helpers.

#![allow(unused_imports, dead_code)] // the rest of the suite lands next

use std::future::Future;
use std::net::SocketAddr;
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use linnet_client::{
    blocking, simple, Client, ClientError, ConnectOptions, ConnectProperties, Event, Message,
    Messages, OutgoingMessage, ProtocolVersion, PublishProperties, QoS, ReasonCode,
    SubscribeProperties, SubscriptionOptions, Transport,
};
use linnet_proto::{
    ConnAck, Connect, Decoder, Packet, PubResponse, Publish, SubAck, Subscribe, TopicName,
};
use linnet_testkit::{RawClient, TestBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const VERSIONS: [ProtocolVersion; 2] = [V311, V5];
/// Every await in these tests is bounded by this.
const LIMIT: Duration = Duration::from_secs(5);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(LIMIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn opts(broker: &TestBroker, version: ProtocolVersion) -> ConnectOptions {
    ConnectOptions::new("127.0.0.1", broker.tcp.port()).version(version)
}

async fn connect(o: ConnectOptions) -> (Client, Messages) {
    let (client, messages, connected) = within("connect", Client::connect(o))
        .await
        .expect("connects");
    assert!(connected.reason.is_success());
    (client, messages)
}

async fn next_message(messages: &mut Messages) -> Message {
    within("message", messages.recv())
        .await
        .expect("a message before the connection ended")
}

async fn expect_no_message(messages: &mut Messages, quiet: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(quiet, messages.recv()).await {
        panic!("expected no message, got {m:?}");
    }
}

// ----- a fake server for watching the client packet by packet -----

/// One accepted connection of the fake server.
struct Peer {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
    version: ProtocolVersion,
}

impl Peer {
    /// Accepts a connection and reads its CONNECT.
    async fn accept(listener: &TcpListener) -> (Self, Connect) {
        let (stream, _) = within("accept", listener.accept()).await.expect("accept");
        let mut peer = Self {
            stream,
            decoder: Decoder::default(),
            buf: BytesMut::new(),
            version: V311,
        };
        match peer.recv().await {
            Some(Packet::Connect(c)) => {
                peer.version = c.protocol;
                (peer, *c)
            }
            other => panic!("expected CONNECT first, got {other:?}"),
        }
    }

    async fn send(&mut self, packet: impl Into<Packet>) {
        let mut out = BytesMut::new();
        packet
            .into()
            .encode(self.version, &mut out)
            .expect("encodes");
        self.stream.write_all(&out).await.expect("write");
    }

    /// The next packet, or None when the client closed the connection.
    async fn recv(&mut self) -> Option<Packet> {
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

    async fn expect(&mut self) -> Packet {
        self.recv().await.expect("a packet, not a close")
    }

    async fn connack(
        &mut self,
        session_present: bool,
        properties: Option<linnet_proto::ConnAckProperties>,
    ) {
        let mut c = ConnAck::new(session_present, ReasonCode::SUCCESS);
        if let Some(p) = properties {
            c.properties = p;
        }
        self.send(c).await;
    }
}

async fn fake_server() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (listener, addr)
}

// ----- QoS both ways -----

#[tokio::test]
async fn every_qos_both_ways() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let (sub, mut messages) = connect(opts(&broker, version)).await;
        let (publisher, _) = connect(opts(&broker, version)).await;
        for sub_qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let filter = format!("qos/{version:?}/{}", sub_qos as u8);
            let granted = within("subscribe", sub.subscribe(&filter, sub_qos))
                .await
                .expect("granted");
            assert_eq!(granted.0, sub_qos as u8);
            for pub_qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let payload = format!("{sub_qos:?}-{pub_qos:?}");
                let outcome = within(
                    "publish",
                    publisher.publish(&filter, payload.clone(), pub_qos, false),
                )
                .await
                .expect("published");
                assert!(outcome.reason.is_success());
                let m = next_message(&mut messages).await;
                assert_eq!(m.topic, filter);
                assert_eq!(m.payload, payload.as_bytes());
                assert_eq!(
                    m.qos,
                    sub_qos.min(pub_qos),
                    "delivered at min(sub, pub) QoS"
                );
                assert_eq!(m.packet_id.is_some(), m.qos != QoS::AtMostOnce);
            }
        }
        within("disconnect", publisher.disconnect())
            .await
            .expect("ok");
        within("disconnect", sub.disconnect()).await.expect("ok");
        assert!(
            within("end", messages.recv()).await.is_none(),
            "Messages ends after disconnect"
        );
    }
}

#[tokio::test]
async fn subscribe_returns_codes_and_rejections() {
    let broker = TestBroker::start().await;
    let (client, _m) = connect(opts(&broker, V5)).await;
    let codes = within(
        "subscribe_many",
        client.subscribe_many(
            vec![
                ("a/+".into(), SubscriptionOptions::qos(QoS::AtMostOnce)),
                ("b/#".into(), SubscriptionOptions::qos(QoS::AtLeastOnce)),
                ("c".into(), SubscriptionOptions::qos(QoS::ExactlyOnce)),
            ],
            SubscribeProperties::default(),
        ),
    )
    .await
    .expect("suback");
    assert_eq!(codes, vec![ReasonCode(0), ReasonCode(1), ReasonCode(2)]);
    // A bad filter never leaves the client.
    let err = client
        .subscribe("a/#/b", QoS::AtMostOnce)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Invalid { .. }), "{err:?}");
    let codes = within(
        "unsubscribe",
        client.unsubscribe(vec!["a/+".into(), "zzz".into()]),
    )
    .await
    .expect("unsuback");
    assert_eq!(
        codes,
        vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
    );
}

#[tokio::test]
async fn connect_refused_reports_the_code_in_words() {
    let (listener, addr) = fake_server().await;
    let server = tokio::spawn(async move {
        for (version_expected, code) in [
            (V5, ReasonCode::NOT_AUTHORIZED),
            (V311, ReasonCode::NOT_AUTHORIZED),
        ] {
            let (mut peer, connect) = Peer::accept(&listener).await;
            assert_eq!(connect.protocol, version_expected);
            peer.send(ConnAck::new(false, code)).await;
        }
    });
    let err = Client::connect(ConnectOptions::new("127.0.0.1", addr.port()).version(V5))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "connection refused: not authorized (0x87)");
    let err = Client::connect(ConnectOptions::new("127.0.0.1", addr.port()).version(V311))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "connection refused: not authorized (0x05)");
    assert_eq!(err.reason_code(), Some(5));
    within("server", server).await.expect("server ok");
}
