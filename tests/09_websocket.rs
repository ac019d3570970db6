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
    let broker = TestBroker::start().await;
    let (mut client, response) = WsClient::open(&broker, V5).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let chosen: Vec<&HeaderValue> = response
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .collect();
    assert_eq!(chosen, [HeaderValue::from_static("mqtt")]);
    client.send(Connect::new(V5, "ws")).await;
    assert!(matches!(client.recv().await, Packet::ConnAck(c) if c.reason_code.is_success()));
}

#[tokio::test]
async fn mqtt_6_0_0_2_packets_may_span_frames_and_frames_may_hold_several_packets() {
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
