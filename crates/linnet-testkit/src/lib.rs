//! Test support for black-box tests of the Linnet broker: [`TestBroker`] runs a broker
//! in-process on ephemeral loopback ports, and [`RawClient`] speaks MQTT packet by packet
//! over a real socket, so tests can send exactly the bytes they mean (malformed ones too) and
//! assert exactly what comes back. [`client_support`] holds what the linnet-client suites
//! share (a fake server, a reconnect gate, the broker-restart scenario).

pub mod client_support;

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use linnet_broker::{Broker, Config};
use linnet_proto::{
    ConnAck, Connect, Decoder, Disconnect, Packet, PacketId, ProtocolVersion, PubResponse, Publish,
    QoS, ReasonCode, SubAck, Subscribe, TopicFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// How long a test waits for a packet it expects.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A broker running in this process on 127.0.0.1 with ephemeral TCP and WebSocket ports.
#[derive(Debug)]
pub struct TestBroker {
    pub broker: Broker,
    pub tcp: SocketAddr,
    pub ws: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// A broker with the default configuration ($SYS off).
    pub async fn start() -> Self {
        Self::with_config(|_| {}).await
    }

    /// A broker whose default test configuration `adjust` may change.
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::with_store(adjust, Arc::new(linnet_broker::store::InMemory)).await
    }

    /// Like [`TestBroker::with_config`], reporting durable changes to `store`.
    pub async fn with_store(
        adjust: impl FnOnce(&mut Config),
        store: Arc<dyn linnet_broker::store::Store>,
    ) -> Self {
        let mut config = Config::default();
        config.listeners.tcp = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        config.listeners.ws = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
        config.sys.interval = 0;
        adjust(&mut config);
        config.validate().expect("test config is valid");
        let broker = Broker::with_store(config, store);
        let bound = linnet_broker::bind(broker.clone())
            .await
            .expect("bind loopback");
        let tcp = bound.tcp_addrs()[0];
        let ws = bound.ws_addrs().first().copied().unwrap_or(tcp);
        let task = tokio::spawn(async move {
            bound.serve().await.expect("broker serves");
        });
        Self {
            broker,
            tcp,
            ws,
            task: Some(task),
        }
    }

    /// Shuts the broker down and waits for it to finish.
    pub async fn stop(mut self) {
        self.broker.shutdown();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Connects a raw client and completes CONNECT / CONNACK with a clean session.
    pub async fn client(&self, version: ProtocolVersion, client_id: &str) -> RawClient {
        let (client, _) = connect_ok(self, Connect::new(version, client_id)).await;
        client
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.broker.shutdown();
    }
}

/// A packet-level MQTT client over a real TCP socket.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    decoder: Decoder,
    buf: BytesMut,
    pub version: ProtocolVersion,
}

impl RawClient {
    /// Opens a TCP connection without sending anything.
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Self {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to test broker");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            decoder: Decoder::new(version),
            buf: BytesMut::new(),
            version,
        }
    }

    /// Opens a connection, sends `connect` and returns the CONNACK.
    pub async fn connect(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut client = Self::open(addr, connect.protocol).await;
        client.send(connect).await;
        match client.recv().await {
            Packet::ConnAck(connack) => (client, connack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Sends one packet encoded for this client's version.
    pub async fn send(&mut self, packet: impl Into<Packet>) {
        let mut out = BytesMut::new();
        packet
            .into()
            .encode(self.version, &mut out)
            .expect("test packet encodes");
        self.send_bytes(&out).await;
    }

    /// Sends raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to broker");
    }

    /// The next packet, or `None` if none arrives within `within` (or the socket closed).
    pub async fn try_recv(&mut self, within: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(packet)) => return Some(packet),
                Ok(None) => {}
                Err(error) => panic!("broker sent an invalid packet: {error}"),
            }
            self.buf.reserve(4096);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next packet; panics if none arrives within [`RECV_TIMEOUT`].
    pub async fn recv(&mut self) -> Packet {
        match self.try_recv(RECV_TIMEOUT).await {
            Some(packet) => packet,
            None => panic!("no packet from the broker within {RECV_TIMEOUT:?}"),
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn expect_nothing(&mut self, quiet: Duration) {
        if let Some(packet) = self.try_recv(quiet).await {
            panic!("expected no packet, got {packet:?}");
        }
    }

    /// Waits until the broker closes the connection; returns the packets it sent first
    /// (a v5 DISCONNECT, say) with any DISCONNECT Reason String removed: that is free text
    /// for people, so tests compare codes ([`RawClient::expect_closed_raw`] keeps it).
    /// Panics if the connection stays open for [`RECV_TIMEOUT`].
    pub async fn expect_closed(&mut self) -> Vec<Packet> {
        let mut packets = self.expect_closed_raw().await;
        for packet in &mut packets {
            if let Packet::Disconnect(disconnect) = packet {
                disconnect.properties.reason_string = None;
            }
        }
        packets
    }

    /// Like [`RawClient::expect_closed`], with the packets exactly as received.
    pub async fn expect_closed_raw(&mut self) -> Vec<Packet> {
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        let mut packets = Vec::new();
        loop {
            while let Ok(Some(packet)) = self.decoder.decode(&mut self.buf) {
                packets.push(packet);
            }
            self.buf.reserve(4096);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    while let Ok(Some(packet)) = self.decoder.decode(&mut self.buf) {
                        packets.push(packet);
                    }
                    return packets;
                }
                Ok(Ok(_)) => {}
                Err(_) => panic!("broker kept the connection open; got {packets:?}"),
            }
        }
    }

    /// SUBSCRIBE to one filter and return the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubAck {
        self.send_subscribe(Subscribe::new(pid(1), topic_filter(filter), qos))
            .await
    }

    /// Sends `subscribe` (any filters, options and properties) and returns the SUBACK, which
    /// must be the next packet.
    pub async fn send_subscribe(&mut self, subscribe: Subscribe) -> SubAck {
        self.send(subscribe).await;
        match self.recv().await {
            Packet::SubAck(suback) => suback,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// PUBLISH at QoS 0.
    pub async fn publish(&mut self, topic: &str, payload: &'static [u8]) {
        self.send(Publish::new(topic, payload)).await;
    }

    /// The next packet, which must be a PUBLISH.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// A PINGREQ / PINGRESP round trip. The broker handles a connection's packets in order,
    /// so when this returns it has handled everything this client sent before, and nothing
    /// else was queued for this client ahead of the PINGRESP.
    pub async fn ping(&mut self) {
        self.send(Packet::PingReq).await;
        assert_eq!(self.recv().await, Packet::PingResp, "expected PINGRESP");
    }

    /// Ends the connection with a normal DISCONNECT (reason 0x00, no properties) and waits
    /// for the broker to close it without sending anything.
    pub async fn hang_up(&mut self) {
        self.send(Disconnect::default()).await;
        let packets = self.expect_closed().await;
        assert!(
            packets.is_empty(),
            "expected a silent close after DISCONNECT, got {packets:?}"
        );
    }

    /// Receives a PUBLISH and completes its QoS flow as the receiving client: nothing for
    /// QoS 0, PUBACK for QoS 1, PUBREC / (expect PUBREL) / PUBCOMP for QoS 2. Returns the
    /// PUBLISH as received.
    pub async fn recv_and_ack(&mut self) -> Publish {
        let publish = self.recv_publish().await;
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, None) => {}
            (QoS::AtLeastOnce, Some(id)) => self.send(Packet::PubAck(PubResponse::new(id))).await,
            (QoS::ExactlyOnce, Some(id)) => {
                self.send(Packet::PubRec(PubResponse::new(id))).await;
                assert_eq!(self.recv().await, Packet::PubRel(PubResponse::new(id)));
                self.send(Packet::PubComp(PubResponse::new(id))).await;
            }
            other => panic!("QoS and packet id disagree: {other:?}"),
        }
        publish
    }

    /// Sends `publish` as the publishing client and waits until the broker has handled it:
    /// a PINGREQ round trip for QoS 0 ([`RawClient::ping`]), a PUBACK for QoS 1, PUBREC /
    /// PUBREL / PUBCOMP for QoS 2. Every acknowledgement must be exactly Success with the
    /// PUBLISH's packet id and no properties. The publisher must not be subscribed to the
    /// topic (its own copy would arrive where the acknowledgement is expected).
    pub async fn publish_and_complete(&mut self, publish: Publish) {
        let (qos, id) = (publish.qos, publish.packet_id);
        self.send(publish).await;
        match (qos, id) {
            (QoS::AtMostOnce, _) => self.ping().await,
            (QoS::AtLeastOnce, Some(id)) => {
                assert_eq!(self.recv().await, Packet::PubAck(PubResponse::new(id)));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                assert_eq!(self.recv().await, Packet::PubRec(PubResponse::new(id)));
                self.send(Packet::PubRel(PubResponse::new(id))).await;
                assert_eq!(self.recv().await, Packet::PubComp(PubResponse::new(id)));
            }
            other => panic!("QoS and packet id disagree: {other:?}"),
        }
    }

    /// Sends a QoS 1 `publish` and returns its PUBACK, which must be the next packet and
    /// carry the PUBLISH's packet id. The reason code is not checked (a v5 broker answers
    /// 0x10 No matching subscribers when nobody subscribes): callers check it if they care.
    pub async fn publish_acked(&mut self, publish: Publish) -> PubResponse {
        let id = match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => id,
            other => panic!("publish_acked takes a QoS 1 PUBLISH with a packet id, got {other:?}"),
        };
        self.send(publish).await;
        match self.recv().await {
            Packet::PubAck(ack) => {
                assert_eq!(ack.packet_id, id, "PUBACK for the wrong packet id");
                ack
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

/// Connects a raw client to `broker` with `connect` (any version and options) and asserts
/// that the CONNACK reports Success; returns the client and the CONNACK.
pub async fn connect_ok(broker: &TestBroker, connect: Connect) -> (RawClient, ConnAck) {
    let (client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS, "{connack:?}");
    (client, connack)
}

/// A CONNECT for `client_id` that asks to keep the session: clean session 0 (3.1.1), or
/// clean start 0 with a Session Expiry Interval of 60 s (v5).
pub fn persistent(version: ProtocolVersion, client_id: &str) -> Connect {
    let mut connect = Connect::new(version, client_id);
    connect.clean_start = false;
    if version.is_v5() {
        connect.properties.session_expiry_interval = Some(60);
    }
    connect
}

/// A PUBLISH of `payload` on `topic` at `qos`; `id` is its packet id at QoS 1 and 2 and is
/// ignored at QoS 0. Panics if `id` is 0 at QoS 1 or 2.
pub fn publish(topic: &str, payload: impl Into<Bytes>, qos: QoS, id: u16) -> Publish {
    let packet_id = (qos != QoS::AtMostOnce).then(|| pid(id));
    Publish::new(topic, payload).with_qos(qos, packet_id)
}

/// A QoS 1 PUBLISH of `payload` on `topic` with packet id `id`; panics if `id` is 0.
pub fn qos1(topic: &str, payload: impl AsRef<[u8]>, id: u16) -> Publish {
    Publish::new(topic, Bytes::copy_from_slice(payload.as_ref()))
        .with_qos(QoS::AtLeastOnce, Some(pid(id)))
}

/// What the broker sends before it closes a connection for a protocol error or malformed
/// packet: a v5 DISCONNECT with `reason` and no properties (compare with
/// [`RawClient::expect_closed`], which drops the Reason String), nothing for 3.1.1.
pub fn goodbye(version: ProtocolVersion, reason: ReasonCode) -> Vec<Packet> {
    if version.is_v5() {
        vec![Packet::Disconnect(Disconnect::new(reason))]
    } else {
        Vec::new()
    }
}

/// The size of `packet` encoded for MQTT 5.0. For a packet received from a v5 connection this
/// is the size it had on the wire, since the codec is canonical.
pub fn wire_size(packet: &Packet) -> usize {
    packet
        .encoded_size(ProtocolVersion::V5)
        .expect("a received v5 packet encodes again")
}

/// A packet identifier; panics on 0.
pub fn pid(id: u16) -> PacketId {
    NonZeroU16::new(id).expect("packet id is not 0")
}

/// A topic filter; panics if invalid.
pub fn topic_filter(filter: &str) -> TopicFilter {
    TopicFilter::new(filter).expect("valid topic filter")
}
