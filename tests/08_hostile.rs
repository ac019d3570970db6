//! Hostile and broken clients over real sockets: malformed packets after CONNECT (a v5 client
//! is told why with DISCONNECT and the reason code of linnet-proto's `DecodeError`, a 3.1.1
//! client is just dropped), oversized packets rejected from the fixed header alone, garbage
//! before CONNECT, malformed CONNECT, slow-loris connections, a subscriber that never reads,
//! and packets pipelined behind CONNECT. In every case a well-behaved client on the same
//! broker keeps working.

use std::sync::atomic::Ordering;
use std::time::Duration;

use linnet_proto::codec::put_varint;
use linnet_proto::{
    Auth, Bytes, BytesMut, ConnAck, Connect, DecodeError, Decoder, Disconnect, Packet, PacketType,
    ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, TopicName, Will,
};
use linnet_testkit::{goodbye, pid, RawClient, TestBroker, RECV_TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
const VERSIONS: [ProtocolVersion; 2] = [V311, V5];

/// A well-behaved client, subscribed to its own topic, that must keep working.
struct Witness(RawClient);

impl Witness {
    async fn join(broker: &TestBroker) -> Self {
        let mut client = broker.client(V5, "witness").await;
        client.subscribe("witness/t", QoS::AtMostOnce).await;
        Self(client)
    }

    /// Publishes and receives its own message through the broker.
    async fn still_works(&mut self) {
        self.0.publish("witness/t", b"still here").await;
        let publish = self.0.recv_publish().await;
        assert_eq!(&publish.payload[..], b"still here");
    }
}

/// What linnet-proto's decoder says about `wire` when it is the whole input.
fn decode_error(version: ProtocolVersion, max_packet_size: u32, wire: &[u8]) -> DecodeError {
    let mut buf = BytesMut::from(wire);
    match Decoder::new(version)
        .with_max_packet_size(max_packet_size)
        .decode(&mut buf)
    {
        Err(error) => error,
        other => panic!("test vector {wire:02x?} decodes as {other:?}"),
    }
}

/// Connects a client with `version`, sends `wire` and checks that the broker closes the
/// connection as `error` (which the codec must report for `wire`) requires, telling a v5
/// client `reason`; then that a witness on the same broker still works.
async fn assert_kicked(
    version: ProtocolVersion,
    wire: &[u8],
    error: DecodeError,
    reason: ReasonCode,
) {
    assert_eq!(
        decode_error(version, u32::MAX, wire),
        error,
        "{version} {wire:02x?}"
    );
    assert_eq!(error.reason_code(), reason, "{error}");
    let broker = TestBroker::start().await;
    let mut witness = Witness::join(&broker).await;
    let mut client = broker.client(version, "hostile").await;
    client.send_bytes(wire).await;
    let packets = client.expect_closed().await;
    assert_eq!(
        packets,
        goodbye(version, reason),
        "{version} {wire:02x?} ({error})"
    );
    witness.still_works().await;
}

/// `v311` with a property length of 0 inserted at `at` (where v5 has its properties), and the
/// remaining length (one byte) adjusted.
fn with_properties(v311: &[u8], at: usize) -> Vec<u8> {
    let mut wire = v311.to_vec();
    wire.insert(at, 0x00);
    wire[1] += 1;
    wire
}

/// The same packet for each version: the 3.1.1 bytes, and the v5 bytes with an empty
/// property block at `properties_at`.
fn both(v311: &[u8], properties_at: usize) -> [(ProtocolVersion, Vec<u8>); 2] {
    [
        (V311, v311.to_vec()),
        (V5, with_properties(v311, properties_at)),
    ]
}

#[tokio::test]
async fn mqtt_2_1_3_1_reserved_header_flags_close_the_connection() {
    // covers: [MQTT-3.6.1-1] [v311:MQTT-3.6.1-1] [MQTT-3.14.1-1] [v311:MQTT-3.14.1-1]
    // covers: [v311:MQTT-3.8.1-1] [MQTT-4.13.1-1] [v311:MQTT-4.8.0-1]
    for version in VERSIONS {
        // PINGREQ 0001, PUBREL 0000, DISCONNECT 1000: each must have other flags.
        for (wire, packet) in [
            (&[0xC1, 0x00][..], PacketType::PingReq),
            (&[0x60, 0x02, 0x00, 0x01][..], PacketType::PubRel),
            (&[0xE8, 0x00][..], PacketType::Disconnect),
        ] {
            let error = DecodeError::InvalidHeaderFlags {
                packet,
                flags: wire[0] & 0x0F,
            };
            assert_kicked(version, wire, error, ReasonCode::MALFORMED_PACKET).await;
        }
    }
    // SUBSCRIBE with flags 0000 instead of 0010 [MQTT-3.8.1-1].
    let subscribe = [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00];
    for (version, wire) in both(&subscribe, 4) {
        let error = DecodeError::InvalidHeaderFlags {
            packet: PacketType::Subscribe,
            flags: 0,
        };
        assert_kicked(version, &wire, error, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_3_3_1_4_publish_with_qos_3_closes_the_connection() {
    #[rustfmt::skip]
    let publish = [
        0x36, 0x07,                         // PUBLISH QoS 3
        0x00, 0x03, b'a', b'/', b'b',       // topic
        0x00, 0x01,                         // packet id 1
    ];
    for (version, wire) in both(&publish, 9) {
        assert_kicked(
            version,
            &wire,
            DecodeError::PublishQoS3,
            ReasonCode::MALFORMED_PACKET,
        )
        .await;
    }
}

#[tokio::test]
async fn mqtt_1_5_4_1_topic_that_is_not_utf8_closes_the_connection() {
    // An invalid two-byte sequence, and an encoded surrogate U+D800.
    for bad in [[b'a', 0xC3, 0x28], [0xED, 0xA0, 0x80]] {
        let publish = [0x30, 0x05, 0x00, 0x03, bad[0], bad[1], bad[2]];
        for (version, wire) in both(&publish, 7) {
            assert_kicked(
                version,
                &wire,
                DecodeError::InvalidUtf8,
                ReasonCode::MALFORMED_PACKET,
            )
            .await;
        }
    }
}

#[tokio::test]
async fn mqtt_1_5_4_2_topic_containing_u0000_closes_the_connection() {
    // covers: [v311:MQTT-4.7.3-2]
    let publish = [0x30, 0x06, 0x00, 0x03, b'a', 0x00, b'b', b'x'];
    for (version, wire) in both(&publish, 7) {
        assert_kicked(
            version,
            &wire,
            DecodeError::NullCharacter,
            ReasonCode::MALFORMED_PACKET,
        )
        .await;
    }
}

#[tokio::test]
async fn remaining_length_of_five_bytes_closes_the_connection() {
    for version in VERSIONS {
        let wire = [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        assert_kicked(
            version,
            &wire,
            DecodeError::VarIntTooLong,
            ReasonCode::MALFORMED_PACKET,
        )
        .await;
    }
}

#[tokio::test]
async fn mqtt_1_5_5_1_remaining_length_not_in_the_fewest_bytes_closes_the_connection() {
    for version in VERSIONS {
        // PINGREQ whose remaining length 0 is written as 0x80 0x00.
        let wire = [0xC0, 0x80, 0x00];
        assert_kicked(
            version,
            &wire,
            DecodeError::VarIntNotMinimal,
            ReasonCode::MALFORMED_PACKET,
        )
        .await;
    }
}

#[tokio::test]
async fn field_running_past_the_remaining_length_closes_the_connection() {
    for version in VERSIONS {
        // PUBLISH whose topic claims 5 bytes where the remaining length leaves 1.
        let wire = [0x30, 0x03, 0x00, 0x05, b'a'];
        let error = DecodeError::Truncated {
            packet: PacketType::Publish,
        };
        assert_kicked(version, &wire, error, ReasonCode::MALFORMED_PACKET).await;
    }
    // SUBSCRIBE whose filter claims 5 bytes and has none.
    let subscribe = [0x82, 0x04, 0x00, 0x01, 0x00, 0x05];
    for (version, wire) in both(&subscribe, 4) {
        let error = DecodeError::Truncated {
            packet: PacketType::Subscribe,
        };
        assert_kicked(version, &wire, error, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn zero_packet_identifier_closes_the_connection() {
    let subscribe = [0x82, 0x06, 0x00, 0x00, 0x00, 0x01, b'a', 0x00];
    for (version, wire) in both(&subscribe, 4) {
        let error = DecodeError::ZeroPacketId {
            packet: PacketType::Subscribe,
        };
        assert_kicked(version, &wire, error, ReasonCode::PROTOCOL_ERROR).await;
    }
    let publish = [0x32, 0x06, 0x00, 0x01, b't', 0x00, 0x00, b'x'];
    for (version, wire) in both(&publish, 7) {
        let error = DecodeError::ZeroPacketId {
            packet: PacketType::Publish,
        };
        assert_kicked(version, &wire, error, ReasonCode::PROTOCOL_ERROR).await;
    }
}

#[tokio::test]
async fn mqtt_3_8_3_2_subscribe_without_topic_filters_closes_the_connection() {
    let subscribe = [0x82, 0x02, 0x00, 0x01];
    for (version, wire) in both(&subscribe, 4) {
        assert_kicked(
            version,
            &wire,
            DecodeError::EmptySubscribe,
            ReasonCode::PROTOCOL_ERROR,
        )
        .await;
    }
}

#[tokio::test]
async fn reserved_packet_type_closes_the_connection() {
    for version in VERSIONS {
        let error = DecodeError::ReservedPacketType(0);
        assert_kicked(version, &[0x00, 0x00], error, ReasonCode::MALFORMED_PACKET).await;
    }
    // AUTH (15) does not exist in 3.1.1.
    let error = DecodeError::ReservedPacketType(15);
    assert_kicked(V311, &[0xF0, 0x00], error, ReasonCode::MALFORMED_PACKET).await;
}

/// A fixed header with `first` and a remaining length of 10 MB, and nothing after it.
fn ten_megabyte_header(first: u8) -> Vec<u8> {
    let mut wire = vec![first];
    put_varint(&mut wire, 10_000_000);
    wire
}

#[tokio::test]
async fn packet_announcing_10_mb_is_rejected_from_its_fixed_header_alone() {
    for version in VERSIONS {
        let broker = TestBroker::with_config(|c| c.limits.max_packet_size = 1024).await;
        let mut witness = Witness::join(&broker).await;
        let mut client = broker.client(version, "hostile").await;
        let wire = ten_megabyte_header(0x30);
        let error = decode_error(version, 1024, &wire);
        assert_eq!(
            error,
            DecodeError::PacketTooLarge {
                size: 10_000_005,
                max: 1024
            }
        );
        client.send_bytes(&wire).await;
        let packets = client.expect_closed().await;
        assert_eq!(
            packets,
            goodbye(version, ReasonCode::PACKET_TOO_LARGE),
            "{version}"
        );
        witness.still_works().await;
    }
}

#[tokio::test]
async fn connect_announcing_10_mb_is_refused_from_its_fixed_header_alone() {
    for version in VERSIONS {
        let broker = TestBroker::with_config(|c| c.limits.max_packet_size = 1024).await;
        let mut witness = Witness::join(&broker).await;
        let mut client = RawClient::open(broker.tcp, version).await;
        client.send_bytes(&ten_megabyte_header(0x10)).await;
        assert_eq!(client.expect_closed().await, Vec::new(), "{version}");
        witness.still_works().await;
    }
}

#[tokio::test]
async fn garbage_before_connect_closes_the_connection() {
    let garbage: [&[u8]; 3] = [&[0xDE, 0xAD, 0xBE, 0xEF], &[0x00, 0x00], &[0xFF; 8]];
    for version in VERSIONS {
        for junk in garbage {
            let broker = TestBroker::start().await;
            let mut witness = Witness::join(&broker).await;
            let mut wire = BytesMut::from(junk);
            Packet::from(Connect::new(version, "hostile"))
                .encode(version, &mut wire)
                .unwrap();
            let mut client = RawClient::open(broker.tcp, version).await;
            client.send_bytes(&wire).await;
            assert_eq!(
                client.expect_closed().await,
                Vec::new(),
                "{version} {junk:02x?}"
            );
            witness.still_works().await;
        }
    }
}

#[tokio::test]
async fn mqtt_3_1_4_1_malformed_connect_is_refused_and_closed() {
    // No DISCONNECT for a connection that never got a successful CONNACK.
    // covers: [MQTT-3.14.0-1] [MQTT-4.13.2-1]
    for version in VERSIONS {
        let mut wire = BytesMut::new();
        Packet::from(Connect::new(version, "hostile"))
            .encode(version, &mut wire)
            .unwrap();
        // Fixed header 2 bytes, protocol name 6, level 1: then the CONNECT flags.
        wire[9] |= 0x01; // reserved flag [MQTT-3.1.2-3]
        let error = decode_error(version, u32::MAX, &wire);
        assert_eq!(error, DecodeError::ConnectReservedFlag);
        let broker = TestBroker::start().await;
        let mut witness = Witness::join(&broker).await;
        let mut client = RawClient::open(broker.tcp, version).await;
        client.send_bytes(&wire).await;
        // v5 may say why with a CONNACK reason code; 3.1.1 closes without CONNACK.
        let expected = if version.is_v5() {
            vec![Packet::ConnAck(ConnAck::new(false, error.reason_code()))]
        } else {
            Vec::new()
        };
        assert_eq!(client.expect_closed().await, expected, "{version}");
        witness.still_works().await;
    }
}

#[tokio::test]
async fn slow_loris_with_one_byte_of_connect_is_closed_after_the_connect_timeout() {
    let broker = TestBroker::with_config(|c| c.limits.connect_timeout = 1).await;
    let mut witness = Witness::join(&broker).await;
    let mut client = RawClient::open(broker.tcp, V311).await;
    let started = Instant::now();
    client.send_bytes(&[0x10]).await;
    assert_eq!(client.expect_closed().await, Vec::new());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    witness.still_works().await;
}

#[tokio::test]
async fn slow_loris_trickling_a_connect_does_not_extend_the_connect_timeout() {
    let broker = TestBroker::with_config(|c| c.limits.connect_timeout = 1).await;
    let mut witness = Witness::join(&broker).await;
    let mut wire = BytesMut::new();
    Packet::from(Connect::new(V311, "trickle-trickle"))
        .encode(V311, &mut wire)
        .unwrap();
    // One byte every 200 ms would take over 5 s for the whole CONNECT.
    assert!(wire.len() * 200 > 5000);
    let mut stream = TcpStream::connect(broker.tcp).await.unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut closed = false;
    'trickle: for byte in wire.iter() {
        if stream.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let pause = Instant::now() + Duration::from_millis(200);
        let mut buf = [0u8; 64];
        loop {
            match tokio::time::timeout_at(pause, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break 'trickle;
                }
                Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
    }
    let waited = started.elapsed();
    assert!(closed, "the broker let the trickle finish");
    assert!(
        received.is_empty(),
        "no CONNACK for an unfinished CONNECT: {received:02x?}"
    );
    assert!(
        waited < Duration::from_millis(2500),
        "closed after {waited:?}"
    );
    assert!(waited < RECV_TIMEOUT);
    witness.still_works().await;
}

/// MQTT 5.0 3.1.4: "Clients are allowed to send further MQTT Control Packets immediately after
/// sending a CONNECT packet; Clients need not wait for a CONNACK".
#[tokio::test]

async fn packets_sent_right_behind_connect_are_handled() {
    for version in VERSIONS {
        let broker = TestBroker::start().await;
        let mut wire = BytesMut::new();
        Packet::from(Connect::new(version, "eager"))
            .encode(version, &mut wire)
            .unwrap();
        Packet::PingReq.encode(version, &mut wire).unwrap();
        let mut client = RawClient::open(broker.tcp, version).await;
        client.send_bytes(&wire).await;
        assert!(matches!(client.recv().await, Packet::ConnAck(c) if c.reason_code.is_success()));
        assert_eq!(client.recv().await, Packet::PingResp, "{version}");
    }
}

#[tokio::test]
async fn subscriber_that_never_reads_does_not_stall_the_broker() {
    let broker = TestBroker::with_config(|c| c.limits.max_outbound_bytes = 256 * 1024).await;
    let mut witness = Witness::join(&broker).await;
    let mut sleeper = broker.client(V5, "sleeper").await;
    sleeper.subscribe("flood/t", QoS::AtMostOnce).await;
    // From here on the sleeper reads nothing: its socket buffers fill up.
    let mut publisher = broker.client(V5, "flooder").await;
    let payload = Bytes::from(vec![0x55; 64 * 1024]);
    let started = Instant::now();
    for _ in 0..400 {
        publisher
            .send(Publish::new("flood/t", payload.clone()))
            .await;
    }
    publisher.send(Packet::PingReq).await;
    assert_eq!(publisher.recv().await, Packet::PingResp);
    witness.still_works().await;
    assert!(started.elapsed() < RECV_TIMEOUT);
    // The sleeper really fell behind: QoS 0 messages for it were shed.
    let dropped = broker
        .broker
        .stats()
        .messages_dropped
        .load(Ordering::Relaxed);
    assert!(dropped > 0, "the flood never backed up");
    drop(sleeper);
}

#[tokio::test]
async fn mqtt_3_12_4_1_every_pingreq_gets_a_pingresp() {
    // covers: [v311:MQTT-3.12.4-1]
    for version in VERSIONS {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "pinger").await;
        // One at a time, then five in one write: one PINGRESP each.
        client.send(Packet::PingReq).await;
        assert_eq!(client.recv().await, Packet::PingResp, "{version}");
        client.send_bytes(&[0xC0, 0x00].repeat(5)).await;
        for _ in 0..5 {
            assert_eq!(client.recv().await, Packet::PingResp, "{version}");
        }
        client.expect_nothing(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn mqtt_3_15_1_1_auth_with_reserved_flags_set_closes_the_connection() {
    // AUTH, reason 0x18 (Continue authentication), no properties; flags must be 0000.
    for first in [0xF1, 0xF2, 0xF8] {
        let wire = [first, 0x02, 0x18, 0x00];
        let error = DecodeError::InvalidHeaderFlags {
            packet: PacketType::Auth,
            flags: first & 0x0F,
        };
        assert_kicked(V5, &wire, error, ReasonCode::MALFORMED_PACKET).await;
    }
}

#[tokio::test]
async fn mqtt_3_5_2_1_broker_pubrec_pubrel_and_pubcomp_use_their_own_reason_codes() {
    // covers: [MQTT-3.6.2-1] [MQTT-3.7.2-1]
    let broker = TestBroker::with_config(|c| c.limits.max_topic_length = 8).await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("t", QoS::ExactlyOnce).await;
    let mut client = broker.client(V5, "c").await;
    let mut received = Vec::new();
    // PUBREC: Success, No matching subscribers, Not authorized, Topic Name invalid.
    for (n, topic) in ["t", "nobody", "$SYS/x", "far/too/long"]
        .into_iter()
        .enumerate()
    {
        let id = pid(n as u16 + 1);
        client
            .send(Publish::new(topic, "x").with_qos(QoS::ExactlyOnce, Some(id)))
            .await;
        received.push(client.recv().await);
    }
    // PUBREL: Success, to the subscriber after its PUBREC.
    let delivered = subscriber.recv_publish().await;
    let delivered_id = delivered.packet_id.expect("QoS 2 has an id");
    subscriber
        .send(Packet::PubRec(PubResponse::new(delivered_id)))
        .await;
    received.push(subscriber.recv().await);
    // PUBREL: Packet Identifier not found. PUBCOMP: Success, and Packet Identifier not found.
    let unknown = pid(999);
    client.send(Packet::PubRec(PubResponse::new(unknown))).await;
    received.push(client.recv().await);
    client.send(Packet::PubRel(PubResponse::new(pid(1)))).await;
    received.push(client.recv().await);
    client.send(Packet::PubRel(PubResponse::new(unknown))).await;
    received.push(client.recv().await);
    let summary: Vec<(PacketType, u8)> = received
        .iter()
        .map(|packet| match packet {
            Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
                assert!(
                    r.reason_code.is_valid_for(packet.packet_type()),
                    "{packet:?}"
                );
                (packet.packet_type(), r.reason_code.0)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            (PacketType::PubRec, 0x00),
            (PacketType::PubRec, 0x10),
            (PacketType::PubRec, 0x87),
            (PacketType::PubRec, 0x90),
            (PacketType::PubRel, 0x00),
            (PacketType::PubRel, 0x92),
            (PacketType::PubComp, 0x00),
            (PacketType::PubComp, 0x92),
        ]
    );
}

#[tokio::test]
async fn reason_code_not_defined_for_pubrec_pubrel_or_pubcomp_closes_the_connection() {
    // covers: [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1]
    // Packet id 1 and a reason code defined for other packets but not for this one.
    for (wire, packet) in [
        ([0x50, 0x03, 0x00, 0x01, 0x04], PacketType::PubRec),
        ([0x62, 0x03, 0x00, 0x01, 0x10], PacketType::PubRel),
        ([0x70, 0x03, 0x00, 0x01, 0x87], PacketType::PubComp),
    ] {
        let error = DecodeError::InvalidReasonCode {
            packet,
            code: wire[4],
        };
        assert_kicked(V5, &wire, error, ReasonCode::PROTOCOL_ERROR).await;
    }
}

#[tokio::test]
async fn mqtt_3_14_0_1_no_disconnect_before_a_successful_connack() {
    // A refused CONNECT gets its CONNACK (0x80 or above) and the connection closes; a
    // connection that never sent CONNECT is closed without a word.
    // covers: [MQTT-4.13.2-1]
    let broker = TestBroker::with_config(|c| {
        c.limits.max_connections = 2;
        c.limits.connect_timeout = 1;
    })
    .await;
    let mut witness = Witness::join(&broker).await;
    let mut with_method = Connect::new(V5, "method");
    with_method.properties.authentication_method = Some("SCRAM-SHA-1".into());
    let mut dollar_will = Connect::new(V5, "will");
    dollar_will.will = Some(Will::new(
        TopicName::new("$SYS/will").expect("valid name"),
        "x",
    ));
    for (connect, reason) in [
        (with_method, ReasonCode::BAD_AUTHENTICATION_METHOD),
        (dollar_will, ReasonCode::NOT_AUTHORIZED),
    ] {
        let mut client = RawClient::open(broker.tcp, V5).await;
        client.send(connect).await;
        assert_eq!(
            client.expect_closed().await,
            vec![Packet::ConnAck(ConnAck::new(false, reason))]
        );
    }
    // Connection limit: the witness and one more.
    let mut second = broker.client(V5, "second").await;
    let mut client = RawClient::open(broker.tcp, V5).await;
    client.send(Connect::new(V5, "third")).await;
    assert_eq!(
        client.expect_closed().await,
        vec![Packet::ConnAck(ConnAck::new(
            false,
            ReasonCode::SERVER_UNAVAILABLE
        ))]
    );
    second.send(Disconnect::default()).await;
    assert!(second.expect_closed().await.is_empty());
    // No CONNECT within the connect timeout.
    let mut silent = RawClient::open(broker.tcp, V5).await;
    assert_eq!(silent.expect_closed().await, Vec::new());
    // A malformed packet right behind a good CONNECT: CONNACK first, then DISCONNECT.
    let mut wire = BytesMut::new();
    Packet::from(Connect::new(V5, "eager"))
        .encode(V5, &mut wire)
        .unwrap();
    wire.extend_from_slice(&[0xC1, 0x00]);
    let mut client = RawClient::open(broker.tcp, V5).await;
    client.send_bytes(&wire).await;
    let packets = client.expect_closed().await;
    assert!(
        matches!(packets.as_slice(), [Packet::ConnAck(c), Packet::Disconnect(d)]
            if c.reason_code == ReasonCode::SUCCESS && d.reason_code == ReasonCode::MALFORMED_PACKET),
        "{packets:?}"
    );
    witness.still_works().await;
}

#[tokio::test]
async fn mqtt_3_14_4_1_nothing_follows_a_disconnect_from_the_broker() {
    // covers: [MQTT-3.14.4-2] [MQTT-4.13.1-1] [MQTT-4.13.2-1]
    let broker = TestBroker::start().await;
    // PINGREQ, a malformed PINGREQ, PINGREQ: the first is answered, the last is not.
    let mut client = broker.client(V5, "c").await;
    client
        .send_bytes(&[0xC0, 0x00, 0xC1, 0x00, 0xC0, 0x00])
        .await;
    assert_eq!(
        client.expect_closed().await,
        vec![
            Packet::PingResp,
            Packet::Disconnect(Disconnect::new(ReasonCode::MALFORMED_PACKET))
        ]
    );
    // A subscriber with messages streaming in: the DISCONNECT is the last packet it gets.
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("s/t", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    let mut burst = BytesMut::new();
    for n in 0..200u32 {
        Packet::from(Publish::new("s/t", n.to_string()))
            .encode(V5, &mut burst)
            .unwrap();
    }
    publisher.send_bytes(&burst).await;
    subscriber.send_bytes(&[0xC1, 0x00]).await;
    publisher.send_bytes(&burst).await;
    let packets = subscriber.expect_closed().await;
    let (last, before) = packets.split_last().expect("a DISCONNECT");
    assert_eq!(
        last,
        &Packet::Disconnect(Disconnect::new(ReasonCode::MALFORMED_PACKET))
    );
    assert!(
        before.iter().all(|p| matches!(p, Packet::Publish(_))),
        "{before:?}"
    );
    publisher.send(Packet::PingReq).await;
    assert_eq!(publisher.recv().await, Packet::PingResp);
}

#[tokio::test]
async fn mqtt311_4_7_3_1_empty_topic_name_closes_the_connection() {
    // PUBLISH QoS 0 with a zero-length topic (and, for v5, no Topic Alias).
    let publish = [0x30, 0x03, 0x00, 0x00, b'x'];
    for (version, wire) in both(&publish, 4) {
        let error = decode_error(version, u32::MAX, &wire);
        let broker = TestBroker::start().await;
        let mut witness = Witness::join(&broker).await;
        let mut client = broker.client(version, "empty").await;
        client.send_bytes(&wire).await;
        assert_eq!(
            client.expect_closed().await,
            goodbye(version, error.reason_code()),
            "{version} ({error})"
        );
        witness.still_works().await;
    }
}

// A 3.1.1 client cannot know how many QoS 2 messages the broker will hold for it before
// PUBREL. Past that limit the broker cannot take the next one on: it closes the connection
// rather than lose or half-handle it.
#[tokio::test]
async fn mqtt311_4_8_0_2_publish_the_broker_cannot_take_on_closes_the_connection() {
    let broker = TestBroker::with_config(|c| c.limits.receive_maximum = 2).await;
    let mut witness = Witness::join(&broker).await;
    let mut watcher = broker.client(V311, "watcher").await;
    watcher.subscribe("held/#", QoS::AtMostOnce).await;
    let mut client = broker.client(V311, "greedy").await;
    for n in 1..=2u16 {
        let id = pid(n);
        client
            .send(Publish::new("held/t", n.to_string()).with_qos(QoS::ExactlyOnce, Some(id)))
            .await;
        assert_eq!(client.recv().await, Packet::PubRec(PubResponse::new(id)));
        assert_eq!(
            watcher.recv_publish().await,
            Publish::new("held/t", n.to_string())
        );
    }
    client
        .send(Publish::new("held/t", "3").with_qos(QoS::ExactlyOnce, Some(pid(3))))
        .await;
    assert_eq!(client.expect_closed().await, Vec::new());
    watcher.expect_nothing(Duration::from_millis(100)).await;
    witness.still_works().await;
}

#[tokio::test]
async fn mqtt_4_12_0_1_unsupported_authentication_method_is_refused_and_closed() {
    // Rejecting authentication (here at its first step) closes the connection.
    // covers: [MQTT-4.12.0-4]
    let broker = TestBroker::start().await;
    let mut witness = Witness::join(&broker).await;
    for data in [None, Some(Bytes::from_static(b"client-first"))] {
        let mut connect = Connect::new(V5, "auth");
        connect.properties.authentication_method = Some("SCRAM-SHA-256".into());
        connect.properties.authentication_data = data.clone();
        let mut client = RawClient::open(broker.tcp, V5).await;
        client.send(connect).await;
        // Never an AUTH: a CONNACK with 0x8C (Bad authentication method), then the close.
        assert_eq!(
            client.expect_closed().await,
            vec![Packet::ConnAck(ConnAck::new(
                false,
                ReasonCode::BAD_AUTHENTICATION_METHOD
            ))],
            "{data:?}"
        );
    }
    witness.still_works().await;
}

#[tokio::test]
async fn mqtt_4_12_0_6_without_an_authentication_method_there_is_no_auth_exchange() {
    let broker = TestBroker::start().await;
    let (mut client, connack) = RawClient::connect(broker.tcp, Connect::new(V5, "plain")).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        (
            &connack.properties.authentication_method,
            &connack.properties.authentication_data
        ),
        (&None, &None)
    );
    // An AUTH from the client is answered with DISCONNECT, never with AUTH.
    let mut auth = Auth::new(ReasonCode::CONTINUE_AUTHENTICATION);
    auth.properties.authentication_method = Some("SCRAM-SHA-256".into());
    client.send(Packet::Auth(auth)).await;
    assert_eq!(
        client.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::PROTOCOL_ERROR
        ))]
    );
}

#[tokio::test]
async fn v5_disconnect_for_a_protocol_violation_says_why_in_a_reason_string() {
    let broker = TestBroker::start().await;
    let mut client = broker.client(ProtocolVersion::V5, "explained").await;
    // PUBLISH with QoS 3 (both QoS bits set): malformed.
    client
        .send_bytes(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01])
        .await;
    let packets = client.expect_closed_raw().await;
    let [linnet_proto::Packet::Disconnect(disconnect)] = &packets[..] else {
        panic!("expected one DISCONNECT, got {packets:?}");
    };
    assert_eq!(
        disconnect.reason_code,
        linnet_proto::ReasonCode::MALFORMED_PACKET
    );
    let text = disconnect
        .properties
        .reason_string
        .as_deref()
        .expect("a reason string");
    assert!(text.contains("MQTT-3.3.1-4"), "{text}");
}

#[tokio::test]
async fn topics_with_more_levels_than_the_limit_are_refused() {
    let broker = TestBroker::with_config(|c| c.limits.max_topic_levels = 3).await;
    let mut client = broker.client(ProtocolVersion::V5, "deep").await;
    let suback = client
        .subscribe("a/b/c/d", linnet_proto::QoS::AtMostOnce)
        .await;
    assert_eq!(
        suback.reason_codes,
        vec![linnet_proto::ReasonCode::TOPIC_FILTER_INVALID]
    );
    let allowed = client
        .subscribe("a/b/#", linnet_proto::QoS::AtMostOnce)
        .await;
    assert_eq!(
        allowed.reason_codes,
        vec![linnet_proto::ReasonCode::GRANTED_QOS_0]
    );
    let deep = linnet_proto::Publish::new("a/b/c/d", &b"x"[..])
        .with_qos(linnet_proto::QoS::AtLeastOnce, Some(pid(7)));
    client.send(deep).await;
    let linnet_proto::Packet::PubAck(ack) = client.recv().await else {
        panic!("expected PUBACK");
    };
    assert_eq!(
        ack.reason_code,
        linnet_proto::ReasonCode::TOPIC_NAME_INVALID
    );
    // Nothing was routed to the `a/b/#` subscription.
    client.send(linnet_proto::Packet::PingReq).await;
    assert_eq!(client.recv().await, linnet_proto::Packet::PingResp);
}
