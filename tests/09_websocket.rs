//! MQTT over WebSocket (MQTT 5.0 section 6) on the broker's WebSocket listener: the `mqtt`
//! subprotocol, packets that span or share binary frames, text frames, the endpoint path, and
//! messages between WebSocket and TCP clients.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use linnet_proto::{
    Bytes, BytesMut, Connect, Decoder, Disconnect, Packet, ProtocolVersion, PubResponse, Publish,
    QoS, ReasonCode, SubAck, Subscribe,
};
use linnet_testkit::{pid, topic_filter, RawClient, TestBroker, RECV_TIMEOUT};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A packet-level MQTT client over a WebSocket: it chooses how bytes are cut into frames,
/// and reads packets from frames however the broker cuts them.
struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: Decoder,
    buf: BytesMut,
    version: ProtocolVersion,
}

/// Outcome of reading the next frame.
enum Next {
    Data,
    Closed,
    TimedOut,
}

/// `ws://` URL of the broker's WebSocket listener at `path`.
fn url(broker: &TestBroker, path: &str) -> String {
    format!("ws://127.0.0.1:{}{path}", broker.ws.port())
}

/// A handshake request for `url` offering the `mqtt` subprotocol [MQTT-6.0.0-3].
async fn handshake(
    url: &str,
) -> Result<(WebSocketStream<MaybeTlsStream<TcpStream>>, Response), WsError> {
    let mut request = url.into_client_request().expect("valid request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    tokio_tungstenite::connect_async(request).await
}

fn encode(version: ProtocolVersion, packet: impl Into<Packet>) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet
        .into()
        .encode(version, &mut out)
        .expect("test packet encodes");
    out.to_vec()
}

impl WsClient {
    /// Opens the WebSocket without sending any MQTT packet.
    async fn open(broker: &TestBroker, version: ProtocolVersion) -> (Self, Response) {
        let (ws, response) = handshake(&url(broker, "/mqtt"))
            .await
            .expect("WebSocket handshake");
        let client = Self {
            ws,
            decoder: Decoder::new(version),
            buf: BytesMut::new(),
            version,
        };
        (client, response)
    }

    /// Opens the WebSocket and completes CONNECT / CONNACK in one frame each.
    async fn connect(broker: &TestBroker, connect: Connect) -> Self {
        let (mut client, _) = Self::open(broker, connect.protocol).await;
        client.send(connect).await;
        match client.recv().await {
            Packet::ConnAck(connack) => assert_eq!(connack.reason_code, ReasonCode::SUCCESS),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        client
    }

    /// Sends `bytes` as one binary frame.
    async fn send_frame(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send binary frame");
    }

    /// Sends one packet as one binary frame.
    async fn send(&mut self, packet: impl Into<Packet>) {
        let bytes = encode(self.version, packet);
        self.send_frame(&bytes).await;
    }

    /// Reads one more frame into the buffer.
    async fn read_frame(&mut self, deadline: tokio::time::Instant) -> Next {
        match tokio::time::timeout_at(deadline, self.ws.next()).await {
            Err(_) => Next::TimedOut,
            Ok(Some(Ok(Message::Binary(data)))) => {
                self.buf.extend_from_slice(&data);
                Next::Data
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => Next::Data,
            Ok(Some(Ok(Message::Text(text)))) => panic!("broker sent a text frame: {text}"),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => Next::Closed,
        }
    }

    /// The next packet, or `None` when none arrives within `within` or the socket closed.
    async fn try_recv(&mut self, within: Duration) -> Option<Packet> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.buf).expect("valid packet") {
                return Some(packet);
            }
            match self.read_frame(deadline).await {
                Next::Data => {}
                Next::Closed | Next::TimedOut => return None,
            }
        }
    }

    async fn recv(&mut self) -> Packet {
        match self.try_recv(RECV_TIMEOUT).await {
            Some(packet) => packet,
            None => panic!("no packet from the broker within {RECV_TIMEOUT:?}"),
        }
    }

    async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    async fn subscribe(&mut self, filter: &str, qos: QoS) {
        self.send(Subscribe::new(pid(1), topic_filter(filter), qos))
            .await;
        match self.recv().await {
            Packet::SubAck(suback) => assert_eq!(suback.reason_codes, [ReasonCode(qos as u8)]),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Waits until the broker ends the WebSocket; returns the packets it sent first.
    async fn expect_closed(&mut self) -> Vec<Packet> {
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        let mut packets = Vec::new();
        loop {
            while let Some(packet) = self.decoder.decode(&mut self.buf).expect("valid packet") {
                packets.push(packet);
            }
            match self.read_frame(deadline).await {
                Next::Data => {}
                Next::Closed => return packets,
                Next::TimedOut => panic!("broker kept the WebSocket open; got {packets:?}"),
            }
        }
    }
}

#[tokio::test]
async fn mqtt_6_0_0_4_server_selects_the_mqtt_subprotocol() {
    // covers: [v311:MQTT-6.0.0-4]
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let (mut client, response) = WsClient::open(&broker, version).await;
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        let chosen: Vec<&HeaderValue> = response
            .headers()
            .get_all("Sec-WebSocket-Protocol")
            .iter()
            .collect();
        assert_eq!(chosen, [HeaderValue::from_static("mqtt")], "{version}");
        client.send(Connect::new(version, "ws")).await;
        assert!(matches!(client.recv().await, Packet::ConnAck(c) if c.reason_code.is_success()));
    }
}

#[tokio::test]
async fn mqtt_6_0_0_2_packets_may_span_frames_and_frames_may_hold_several_packets() {
    // covers: [v311:MQTT-6.0.0-2]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let (mut client, _) = WsClient::open(&broker, version).await;
        // CONNECT cut in two frames, inside the protocol name.
        let connect = encode(version, Connect::new(version, "ws-frames"));
        client.send_frame(&connect[..5]).await;
        client.send_frame(&connect[5..]).await;
        match client.recv().await {
            Packet::ConnAck(connack) => assert_eq!(connack.reason_code, ReasonCode::SUCCESS),
            other => panic!("{version}: expected CONNACK, got {other:?}"),
        }
        // SUBSCRIBE and PINGREQ in one frame.
        let mut frame = encode(
            version,
            Subscribe::new(pid(7), topic_filter("ws/#"), QoS::AtLeastOnce),
        );
        frame.extend(encode(version, Packet::PingReq));
        client.send_frame(&frame).await;
        assert_eq!(
            client.recv().await,
            Packet::SubAck(SubAck::new(pid(7), vec![ReasonCode::GRANTED_QOS_1]))
        );
        assert_eq!(client.recv().await, Packet::PingResp);
        // Two PUBLISH in one frame, the second cut after its first byte into a third frame.
        let first = encode(version, Publish::new("ws/a", "one"));
        let second = encode(
            version,
            Publish::new("ws/b", "two").with_qos(QoS::AtLeastOnce, Some(pid(9))),
        );
        client
            .send_frame(&[first.as_slice(), &second[..1]].concat())
            .await;
        client.send_frame(&second[1..]).await;
        let mut received = Vec::new();
        for _ in 0..3 {
            match client.recv().await {
                Packet::Publish(p) => received.push((p.topic.to_string(), p.payload.to_vec())),
                Packet::PubAck(ack) => assert_eq!(ack.packet_id, pid(9)),
                other => panic!("{version}: unexpected {other:?}"),
            }
        }
        assert_eq!(
            received,
            [
                ("ws/a".to_string(), b"one".to_vec()),
                ("ws/b".to_string(), b"two".to_vec())
            ],
            "{version}"
        );
    }
}

#[tokio::test]

async fn mqtt_6_0_0_2_connect_and_subscribe_in_one_frame() {
    // covers: [v311:MQTT-6.0.0-2]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let (mut client, _) = WsClient::open(&broker, version).await;
        let mut frame = encode(version, Connect::new(version, "ws-eager"));
        frame.extend(encode(
            version,
            Subscribe::new(pid(5), topic_filter("ws/#"), QoS::AtMostOnce),
        ));
        client.send_frame(&frame).await;
        assert!(matches!(client.recv().await, Packet::ConnAck(c) if c.reason_code.is_success()));
        assert_eq!(
            client.recv().await,
            Packet::SubAck(SubAck::new(pid(5), vec![ReasonCode::GRANTED_QOS_0])),
            "{version}"
        );
    }
}

#[tokio::test]
async fn mqtt_6_0_0_1_text_frame_closes_the_connection() {
    // covers: [v311:MQTT-6.0.0-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = WsClient::connect(&broker, Connect::new(version, "ws-text")).await;
        client
            .ws
            .send(Message::text("PINGREQ"))
            .await
            .expect("send text frame");
        // Whatever else arrives after the text frame must not be answered.
        let _ = client
            .ws
            .send(Message::binary(encode(version, Packet::PingReq)))
            .await;
        let packets = client.expect_closed().await;
        assert!(
            packets.iter().all(|p| matches!(p, Packet::Disconnect(_))),
            "{version}: {packets:?}"
        );
    }
}

#[tokio::test]
async fn websocket_on_another_path_gets_http_404() {
    let broker = TestBroker::start().await;
    match handshake(&url(&broker, "/other")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), StatusCode::NOT_FOUND),
        Err(other) => panic!("expected an HTTP error, got {other}"),
        Ok((_, response)) => panic!("handshake on /other succeeded: {response:?}"),
    }
    // The right path still works.
    WsClient::connect(&broker, Connect::new(V5, "ws-path")).await;
}

/// A client on the WebSocket listener that starts the HTTP upgrade and never finishes it is
/// closed after the CONNECT timeout, as a TCP client that never sends CONNECT is.
#[tokio::test]
async fn an_unfinished_upgrade_is_closed_after_the_connect_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = TestBroker::with_config(|c| c.limits.connect_timeout = 1).await;
    let mut stream = TcpStream::connect(broker.ws).await.unwrap();
    stream.write_all(b"GET /mqtt HTTP/1.1\r\n").await.unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(RECV_TIMEOUT, stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "expected the broker to close the connection, got {read:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn websocket_ping_is_answered_and_mqtt_goes_on() {
    let broker = TestBroker::start().await;
    let mut client = WsClient::connect(&broker, Connect::new(V311, "ws-ping")).await;
    client
        .ws
        .send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .expect("send ping");
    match tokio::time::timeout(RECV_TIMEOUT, client.ws.next()).await {
        Ok(Some(Ok(Message::Pong(data)))) => assert_eq!(&data[..], b"hi"),
        Ok(other) => panic!("expected PONG, got {other:?}"),
        Err(_) => panic!("no PONG within {RECV_TIMEOUT:?}"),
    }
    client.send(Packet::PingReq).await;
    assert_eq!(client.recv().await, Packet::PingResp);
}

#[tokio::test]
async fn websocket_and_tcp_clients_exchange_messages_both_ways() {
    let broker = TestBroker::start().await;
    let mut ws = WsClient::connect(&broker, Connect::new(V5, "ws-side")).await;
    ws.subscribe("to/ws", QoS::AtLeastOnce).await;
    let mut tcp = broker.client(V311, "tcp-side").await;
    tcp.subscribe("to/tcp", QoS::AtLeastOnce).await;

    tcp.send(Publish::new("to/ws", "from tcp").with_qos(QoS::AtLeastOnce, Some(pid(3))))
        .await;
    assert_eq!(tcp.recv().await, Packet::PubAck(PubResponse::new(pid(3))));
    let publish = ws.recv_publish().await;
    assert_eq!(
        (&*publish.topic, &publish.payload[..]),
        ("to/ws", &b"from tcp"[..])
    );
    assert_eq!(publish.qos, QoS::AtLeastOnce);
    ws.send(Packet::PubAck(PubResponse::new(publish.packet_id.unwrap())))
        .await;

    ws.send(Publish::new("to/tcp", "from ws").with_qos(QoS::AtLeastOnce, Some(pid(4))))
        .await;
    assert_eq!(ws.recv().await, Packet::PubAck(PubResponse::new(pid(4))));
    let publish = tcp.recv_publish().await;
    assert_eq!(
        (&*publish.topic, &publish.payload[..]),
        ("to/tcp", &b"from ws"[..])
    );

    // A raw TCP client and a WebSocket client are the same to the broker: the TCP side can
    // take over the WebSocket side's client id.
    let _takeover = RawClient::connect(broker.tcp, Connect::new(V5, "ws-side")).await;
    let packets = ws.expect_closed().await;
    assert_eq!(
        packets,
        [Packet::Disconnect(Disconnect::new(
            ReasonCode::SESSION_TAKEN_OVER
        ))]
    );
}

/// `count` QoS 1 PUBLISH packets to `topic` with payloads of assorted sizes, encoded back to
/// back, and the payloads in order.
fn numbered_publishes(version: ProtocolVersion, topic: &str, count: u16) -> (Vec<u8>, Vec<Bytes>) {
    let mut wire = Vec::new();
    let mut payloads = Vec::new();
    for n in 1..=count {
        let payload = Bytes::from(format!("{n}:{}", "x".repeat(usize::from(n) * 37 % 300)));
        wire.extend(encode(
            version,
            Publish::new(topic, payload.clone()).with_qos(QoS::AtLeastOnce, Some(pid(n))),
        ));
        payloads.push(payload);
    }
    (wire, payloads)
}

/// Chunk sizes that cut packets everywhere: inside fixed headers, lengths and payloads.
fn ragged(wire: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = wire;
    for size in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*size).min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

// Both transports carry an ordered, lossless byte stream each way: 100 packets cut into
// ragged pieces (TCP writes, WebSocket frames) arrive whole and in order, and so do the
// broker's answers and deliveries on the other transport.
#[tokio::test]
async fn mqtt_4_2_1_tcp_and_websocket_carry_packets_whole_and_in_order() {
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut ws_sub = WsClient::connect(&broker, Connect::new(version, "ws-sub")).await;
        ws_sub.subscribe("from/tcp", QoS::AtLeastOnce).await;
        let mut tcp_sub = broker.client(version, "tcp-sub").await;
        tcp_sub.subscribe("from/ws", QoS::AtLeastOnce).await;

        let mut tcp_pub = broker.client(version, "tcp-pub").await;
        let (wire, tcp_payloads) = numbered_publishes(version, "from/tcp", 100);
        for chunk in ragged(&wire) {
            tcp_pub.send_bytes(chunk).await;
        }
        let mut ws_pub = WsClient::connect(&broker, Connect::new(version, "ws-pub")).await;
        let (wire, ws_payloads) = numbered_publishes(version, "from/ws", 100);
        for chunk in ragged(&wire) {
            ws_pub.send_frame(chunk).await;
        }

        for n in 1..=100 {
            let ack = Packet::PubAck(PubResponse::new(pid(n)));
            assert_eq!(tcp_pub.recv().await, ack, "{version}");
            assert_eq!(ws_pub.recv().await, ack, "{version}");
        }
        for (n, expected) in tcp_payloads.iter().enumerate() {
            let got = ws_sub.recv_publish().await;
            assert_eq!(&got.payload, expected, "{version}: message {n}");
            let id = got.packet_id.expect("QoS 1 has an id");
            ws_sub.send(Packet::PubAck(PubResponse::new(id))).await;
        }
        for (n, expected) in ws_payloads.iter().enumerate() {
            let got = tcp_sub.recv_publish().await;
            assert_eq!(&got.payload, expected, "{version}: message {n}");
            let id = got.packet_id.expect("QoS 1 has an id");
            tcp_sub.send(Packet::PubAck(PubResponse::new(id))).await;
        }
    }
}
