//! CONNECT / CONNACK over real sockets: versions, client identifiers, takeover, keep alive,
//! the CONNECT timeout and refusals.

use std::num::NonZeroU32;
use std::time::Duration;

use linnet_proto::{
    BytesMut, ConnAck, Connect, Disconnect, Packet, PacketType, ProtocolVersion, PubResponse,
    Publish, QoS, ReasonCode, Subscribe, TopicName, Will,
};
use linnet_testkit::{connect_ok, persistent, pid, qos1, topic_filter, RawClient, TestBroker};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn mqtt_3_2_0_1_connack_is_the_first_packet_for_every_version() {
    // covers: [MQTT-3.1.4-5] [v311:MQTT-3.1.4-4] [v311:MQTT-3.2.0-1]
    let broker = TestBroker::start().await;
    for version in [ProtocolVersion::V3_1, V311, V5] {
        let (_client, connack) = RawClient::connect(broker.tcp, Connect::new(version, "c1")).await;
        assert_eq!(connack.reason_code, ReasonCode::SUCCESS, "{version}");
        assert!(!connack.session_present);
    }
}

#[tokio::test]
async fn mqtt_3_1_0_1_first_packet_must_be_connect() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::open(broker.tcp, V311).await;
    client.send(Packet::PingReq).await;
    assert!(client.expect_closed().await.is_empty());
}

#[tokio::test]
async fn mqtt_3_1_0_2_second_connect_is_a_protocol_error() {
    // covers: [MQTT-3.2.0-2]
    let broker = TestBroker::start().await;
    let mut client = broker.client(V5, "twice").await;
    client.send(Connect::new(V5, "twice")).await;
    let packets = client.expect_closed().await;
    assert_eq!(
        packets,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::PROTOCOL_ERROR
        ))]
    );
}

#[tokio::test]
async fn mqtt_3_1_2_2_unsupported_protocol_level_gets_return_code_1() {
    // covers: [v311:MQTT-3.1.2-2]
    let broker = TestBroker::start().await;
    let mut client = RawClient::open(broker.tcp, V311).await;
    // CONNECT "MQTT" level 6, clean session, keep alive 60, client id "x".
    client
        .send_bytes(&[
            0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 1, b'x',
        ])
        .await;
    let packets = client.expect_closed().await;
    assert_eq!(
        packets,
        vec![Packet::ConnAck(ConnAck::new(
            false,
            ReasonCode::UNSUPPORTED_PROTOCOL_VERSION
        ))]
    );
}

#[tokio::test]
async fn mqtt_3_1_3_6_v311_empty_client_id_with_clean_session_is_assigned() {
    let broker = TestBroker::start().await;
    let (_client, connack) = RawClient::connect(broker.tcp, Connect::new(V311, "")).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn mqtt_3_1_3_8_v311_empty_client_id_without_clean_session_is_rejected() {
    // covers: [v311:MQTT-3.1.3-8] [v311:MQTT-3.1.3-9]
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V311, "");
    connect.clean_start = false;
    let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    client.expect_closed().await;
}

#[tokio::test]
async fn mqtt_3_2_2_16_v5_empty_client_id_gets_an_assigned_identifier() {
    let broker = TestBroker::start().await;
    let (_client, connack) = RawClient::connect(broker.tcp, Connect::new(V5, "")).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    let assigned = connack
        .properties
        .assigned_client_identifier
        .expect("assigned id");
    assert!(!assigned.is_empty());
}

#[tokio::test]
async fn mqtt_3_1_4_3_same_client_id_takes_over_and_v5_gets_0x8e() {
    let broker = TestBroker::start().await;
    let mut first = broker.client(V5, "dup").await;
    let _second = broker.client(V5, "dup").await;
    let packets = first.expect_closed().await;
    assert_eq!(
        packets,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::SESSION_TAKEN_OVER
        ))]
    );
}

#[tokio::test]
async fn mqtt_3_1_2_22_keep_alive_expiry_closes_after_one_and_a_half_times() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "sleepy");
    connect.keep_alive = 1;
    let (mut client, _) = RawClient::connect(broker.tcp, connect).await;
    let started = tokio::time::Instant::now();
    let packets = client.expect_closed().await;
    let waited = started.elapsed();
    assert_eq!(
        packets,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::KEEP_ALIVE_TIMEOUT
        ))]
    );
    // Never before 1.5 s; the broker's keep-alive sweep looks every 0.5 s, so at most
    // about two of its ticks later (with slack for a loaded machine).
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_millis(3500),
        "closed after {waited:?}"
    );
}

/// The keep alive that counts is the one of the connection now attached: the connection it
/// took over from (no keep alive) leaving must not switch it off.
#[tokio::test]
async fn mqtt_3_1_2_22_keep_alive_holds_for_a_connection_that_took_over() {
    let broker = TestBroker::start().await;
    let mut first = Connect::new(V5, "resumed");
    first.clean_start = false;
    first.keep_alive = 0;
    first.properties.session_expiry_interval = Some(60);
    let (mut first, _) = RawClient::connect(broker.tcp, first).await;
    let mut second = Connect::new(V5, "resumed");
    second.clean_start = false;
    second.properties.session_expiry_interval = Some(60);
    second.keep_alive = 1;
    let (mut second, connack) = RawClient::connect(broker.tcp, second).await;
    assert!(connack.session_present);
    first.expect_closed().await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        second.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::KEEP_ALIVE_TIMEOUT
        ))]
    );
    assert!(started.elapsed() < Duration::from_millis(3500));
}

#[tokio::test]
async fn pingreq_keeps_the_connection_alive_and_gets_pingresp() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V311, "pinger");
    connect.keep_alive = 1;
    let (mut client, _) = RawClient::connect(broker.tcp, connect).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        client.send(Packet::PingReq).await;
        assert_eq!(client.recv().await, Packet::PingResp);
    }
}

#[tokio::test]
async fn connection_without_connect_is_closed_after_the_connect_timeout() {
    let broker = TestBroker::with_config(|c| c.limits.connect_timeout = 1).await;
    let mut client = RawClient::open(broker.tcp, V311).await;
    assert!(client.expect_closed().await.is_empty());
}

#[tokio::test]
async fn v5_connack_advertises_server_limits() {
    let broker = TestBroker::with_config(|c| {
        c.mqtt.maximum_qos = 1;
        c.mqtt.retain_available = false;
        c.limits.receive_maximum = 10;
    })
    .await;
    let (_client, connack) = RawClient::connect(broker.tcp, Connect::new(V5, "limits")).await;
    let properties = connack.properties;
    assert_eq!(properties.maximum_qos, Some(linnet_proto::QoS::AtLeastOnce));
    assert_eq!(properties.retain_available, Some(false));
    assert_eq!(properties.receive_maximum.map(|r| r.get()), Some(10));
    assert!(properties.maximum_packet_size.is_some());
}

#[tokio::test]
async fn mqtt_3_1_4_2_unknown_authentication_method_is_refused() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "auth");
    connect.properties.authentication_method = Some("SCRAM-SHA-1".into());
    let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD);
    client.expect_closed().await;
}

// ---------------------------------------------------------------------------------------------
// Helpers for the tests below

/// How long a negative check waits for a packet that must not come.
const QUIET: Duration = Duration::from_millis(200);

/// `packets` encoded back to back for `version`, to be sent in one write.
fn pipelined(version: ProtocolVersion, packets: Vec<Packet>) -> Vec<u8> {
    let mut wire = BytesMut::new();
    for packet in packets {
        packet
            .encode(version, &mut wire)
            .expect("test packet encodes");
    }
    wire.to_vec()
}

/// A 3.1.1 CONNECT: protocol name and level 4, `flags`, keep alive 60, then `payload`.
fn v311_connect(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x3C];
    body.extend_from_slice(payload);
    let mut wire = vec![0x10, u8::try_from(body.len()).expect("short test CONNECT")];
    wire.extend_from_slice(&body);
    wire
}

/// A will on `topic` with payload "bye".
fn will_on(topic: &str) -> Will {
    Will::new(TopicName::new(topic).expect("valid will topic"), "bye")
}

// ---------------------------------------------------------------------------------------------
// CONNECT processing

#[tokio::test]
async fn mqtt311_3_1_0_2_second_connect_closes_the_connection() {
    let broker = TestBroker::start().await;
    let mut client = broker.client(V311, "twice").await;
    client.send(Connect::new(V311, "twice")).await;
    // Closed, with no second CONNACK.
    assert_eq!(client.expect_closed().await, Vec::new());
    // Also when the second CONNECT arrives in the same write as the first.
    let mut client = RawClient::open(broker.tcp, V311).await;
    let connect = Packet::from(Connect::new(V311, "twice"));
    client
        .send_bytes(&pipelined(V311, vec![connect.clone(), connect]))
        .await;
    assert_eq!(
        client.expect_closed().await,
        vec![Packet::ConnAck(ConnAck::new(false, ReasonCode::SUCCESS))]
    );
}

#[tokio::test]
async fn mqtt311_3_1_2_1_connect_with_another_protocol_name_is_not_processed() {
    let broker = TestBroker::start().await;
    let mut watcher = broker.client(V311, "watcher").await;
    watcher.subscribe("alien/#", QoS::AtMostOnce).await;
    let mut connect = Connect::new(V311, "alien");
    connect.will = Some(will_on("alien/will"));
    let mut wire = pipelined(V311, vec![connect.into()]);
    assert_eq!(&wire[4..8], b"MQTT");
    wire[7] = b'X'; // "MQTX", level 4
    wire.extend(pipelined(
        V311,
        vec![Publish::new("alien/pipelined", "x").into()],
    ));
    let mut client = RawClient::open(broker.tcp, V311).await;
    client.send_bytes(&wire).await;
    // No CONNACK, no session, no will, and the PUBLISH behind it is not routed.
    assert_eq!(client.expect_closed().await, Vec::new());
    watcher.ping().await;
    watcher.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt311_3_1_4_1_malformed_connect_is_closed_without_connack() {
    // covers: [v311:MQTT-3.1.2-3] [v311:MQTT-3.2.2-6]
    let client_id = [0x00, 0x01, b'a'];
    let cases: [(&str, Vec<u8>); 7] = [
        ("reserved flag set", v311_connect(0x03, &client_id)),
        (
            "will QoS 3",
            v311_connect(0x1E, &[0, 1, b'a', 0, 1, b't', 0, 0]),
        ),
        ("will QoS without will flag", v311_connect(0x0A, &client_id)),
        (
            "password without user name",
            v311_connect(0x42, &[0, 1, b'a', 0, 1, b'p']),
        ),
        ("no client id", v311_connect(0x02, &[])),
        (
            "byte after the last field",
            v311_connect(0x02, &[0, 1, b'a', 0]),
        ),
        ("client id not UTF-8", v311_connect(0x02, &[0, 1, 0xFF])),
    ];
    let broker = TestBroker::start().await;
    for (case, wire) in cases {
        let mut client = RawClient::open(broker.tcp, V311).await;
        client.send_bytes(&wire).await;
        // 3.1.1 has no return code for a malformed CONNECT: closed without a CONNACK.
        assert_eq!(client.expect_closed().await, Vec::new(), "{case}");
    }
    // The broker still accepts a valid CONNECT.
    broker.client(V311, "a").await;
}

#[tokio::test]
async fn mqtt_3_1_3_2_session_state_is_identified_by_the_client_id() {
    // covers: [v311:MQTT-3.1.3-2]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        for id in ["alpha", "beta"] {
            let (mut client, connack) = connect_ok(&broker, persistent(version, id)).await;
            assert!(!connack.session_present);
            client.subscribe(&format!("{id}/t"), QoS::AtLeastOnce).await;
            client.hang_up().await;
        }
        let mut publisher = broker.client(version, "publisher").await;
        publisher
            .publish_acked(qos1("alpha/t", "for alpha", 1))
            .await;
        publisher.publish_acked(qos1("beta/t", "for beta", 2)).await;
        // Each identifier resumes its own session: its subscription and its queued message.
        for id in ["beta", "alpha"] {
            let (mut client, connack) = connect_ok(&broker, persistent(version, id)).await;
            assert!(connack.session_present, "{version} {id}");
            let got = client.recv_publish().await;
            let expected = format!("for {id}");
            assert_eq!(
                (&*got.topic, &got.payload[..]),
                (format!("{id}/t").as_str(), expected.as_bytes()),
                "{version}"
            );
            let packet_id = got.packet_id.expect("QoS 1");
            client
                .send(Packet::PubAck(PubResponse::new(packet_id)))
                .await;
            client.ping().await;
        }
        // An identifier that never connected has no session.
        let (_client, connack) = connect_ok(&broker, persistent(version, "gamma")).await;
        assert!(!connack.session_present, "{version}");
    }
}

#[tokio::test]
async fn mqtt_3_1_3_5_client_ids_of_1_to_23_alphanumerics_are_accepted() {
    // covers: [v311:MQTT-3.1.3-5]
    let ids = [
        "0",
        "z",
        "Q",
        "0123456789",
        "abcdefghijklmnopqrstuvw",
        "xyzABCDEFGHIJKLMNOPQRST",
        "UVWXYZ01234567890abcdef",
    ];
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        for id in ids {
            assert!(id.len() <= 23 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
            let (mut first, connack) = connect_ok(&broker, Connect::new(version, id)).await;
            // Used as given: nothing assigned instead, and the same id takes it over.
            assert_eq!(connack.properties.assigned_client_identifier, None);
            let _second = broker.client(version, id).await;
            first.expect_closed().await;
        }
    }
}

#[tokio::test]
async fn mqtt_3_1_3_7_the_assigned_client_id_identifies_the_session() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "");
    connect.properties.session_expiry_interval = Some(60);
    let (mut client, connack) = connect_ok(&broker, connect).await;
    let assigned = connack
        .properties
        .assigned_client_identifier
        .expect("Assigned Client Identifier");
    client.subscribe("assigned/t", QoS::AtMostOnce).await;
    // Connecting with the assigned identifier takes over that very session.
    let (mut again, connack) = connect_ok(&broker, persistent(V5, &assigned)).await;
    assert!(connack.session_present);
    assert_eq!(connack.properties.assigned_client_identifier, None);
    assert_eq!(
        client.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::SESSION_TAKEN_OVER
        ))]
    );
    let mut publisher = broker.client(V5, "publisher").await;
    publisher.publish("assigned/t", b"resumed").await;
    assert_eq!(
        again.recv_publish().await,
        Publish::new("assigned/t", "resumed")
    );
}

#[tokio::test]
async fn mqtt311_3_1_3_6_empty_client_ids_get_unique_identifiers() {
    let broker = TestBroker::start().await;
    let (mut first, _) = connect_ok(&broker, Connect::new(V311, "")).await;
    let (mut second, _) = connect_ok(&broker, Connect::new(V311, "")).await;
    // Had both been given the same identifier, the second would have taken the first over.
    first.subscribe("one", QoS::AtMostOnce).await;
    second.subscribe("two", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V311, "publisher").await;
    publisher.publish("one", b"1").await;
    publisher.publish("two", b"2").await;
    assert_eq!(first.recv_publish().await, Publish::new("one", "1"));
    assert_eq!(second.recv_publish().await, Publish::new("two", "2"));
    first.ping().await;
    second.ping().await;
}

#[tokio::test]
async fn mqtt_3_1_4_4_clean_start_decides_whether_the_session_is_resumed() {
    // covers: [v311:MQTT-3.1.4-3]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut publisher = broker.client(version, "publisher").await;
        let (mut client, connack) = connect_ok(&broker, persistent(version, "cs")).await;
        assert!(!connack.session_present);
        client.subscribe("cs/t", QoS::AtLeastOnce).await;
        client.hang_up().await;
        // Clean Start 0: the session and its subscription are resumed.
        let (mut client, connack) = connect_ok(&broker, persistent(version, "cs")).await;
        assert!(connack.session_present, "{version}");
        publisher.publish("cs/t", b"kept").await;
        assert_eq!(client.recv_publish().await, Publish::new("cs/t", "kept"));
        client.hang_up().await;
        // Clean Start 1: a new session, without the old subscription.
        let mut fresh = persistent(version, "cs");
        fresh.clean_start = true;
        let (mut client, connack) = connect_ok(&broker, fresh).await;
        assert!(!connack.session_present, "{version}");
        publisher.publish("cs/t", b"gone").await;
        publisher.ping().await;
        client.ping().await;
        client.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt_3_1_4_6_nothing_sent_after_a_refused_connect_is_processed() {
    // covers: [v311:MQTT-3.1.4-5]
    let broker = TestBroker::start().await;
    let mut watcher = broker.client(V5, "watcher").await;
    watcher.subscribe("leak/#", QoS::AtMostOnce).await;
    let mut empty_id = Connect::new(V311, "");
    empty_id.clean_start = false;
    let mut unknown_method = Connect::new(V5, "auth");
    unknown_method.properties.authentication_method = Some("SCRAM-SHA-1".into());
    let mut sys_will_v311 = Connect::new(V311, "sys");
    sys_will_v311.will = Some(will_on("$SYS/will"));
    let mut sys_will_v5 = sys_will_v311.clone();
    sys_will_v5.protocol = V5;
    let refusals = [
        (empty_id, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID),
        (unknown_method, ReasonCode::BAD_AUTHENTICATION_METHOD),
        (sys_will_v311, ReasonCode::NOT_AUTHORIZED),
        (sys_will_v5, ReasonCode::NOT_AUTHORIZED),
    ];
    for (connect, reason) in refusals {
        let version = connect.protocol;
        // A retained PUBLISH, a SUBSCRIBE and a PINGREQ right behind the refused CONNECT.
        let wire = pipelined(
            version,
            vec![
                connect.into(),
                qos1("leak/t", "x", 1).with_retain(true).into(),
                Subscribe::new(pid(2), topic_filter("leak/#"), QoS::AtMostOnce).into(),
                Packet::PingReq,
            ],
        );
        let mut client = RawClient::open(broker.tcp, version).await;
        client.send_bytes(&wire).await;
        // The refusal and nothing else: no PUBACK, SUBACK or PINGRESP.
        assert_eq!(
            client.expect_closed().await,
            vec![Packet::ConnAck(ConnAck::new(false, reason))],
            "{version}"
        );
    }
    watcher.ping().await;
    watcher.expect_nothing(QUIET).await;
    // Nothing was retained either.
    let mut late = broker.client(V5, "late").await;
    late.subscribe("leak/#", QoS::AtMostOnce).await;
    late.expect_nothing(QUIET).await;
}

// ---------------------------------------------------------------------------------------------
// CONNACK

#[tokio::test]
async fn mqtt311_3_2_0_1_connack_comes_before_queued_messages_and_pipelined_answers() {
    // covers: [MQTT-3.2.0-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let (mut client, _) = connect_ok(&broker, persistent(version, "first")).await;
        client.subscribe("first/t", QoS::AtLeastOnce).await;
        client.hang_up().await;
        let mut publisher = broker.client(version, "publisher").await;
        publisher.publish_acked(qos1("first/t", "queued", 1)).await;
        // Resume with a SUBSCRIBE and a PINGREQ behind the CONNECT.
        let wire = pipelined(
            version,
            vec![
                persistent(version, "first").into(),
                Subscribe::new(pid(9), topic_filter("other"), QoS::AtMostOnce).into(),
                Packet::PingReq,
            ],
        );
        let mut client = RawClient::open(broker.tcp, version).await;
        client.send_bytes(&wire).await;
        match client.recv().await {
            Packet::ConnAck(connack) => {
                assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
                assert!(connack.session_present, "{version}");
            }
            other => panic!("{version}: the first packet is {other:?}, not CONNACK"),
        }
        let mut rest = Vec::new();
        for _ in 0..3 {
            rest.push(client.recv().await.packet_type());
        }
        rest.sort_by_key(|t| *t as u8);
        assert_eq!(
            rest,
            [
                PacketType::Publish,
                PacketType::SubAck,
                PacketType::PingResp
            ],
            "{version}"
        );
    }
}

/// A broker that refuses wills above QoS 1 and retained wills.
async fn limited_broker() -> TestBroker {
    TestBroker::with_config(|c| {
        c.mqtt.maximum_qos = 1;
        c.mqtt.retain_available = false;
    })
    .await
}

#[tokio::test]
async fn mqtt_3_2_2_6_refusing_connack_has_session_present_0() {
    // covers: [v311:MQTT-3.2.2-4]
    for version in [V311, V5] {
        let broker = limited_broker().await;
        let (mut client, _) = connect_ok(&broker, persistent(version, "keeper")).await;
        client.subscribe("keeper/t", QoS::AtMostOnce).await;
        client.hang_up().await;
        // Refused while a session exists for "keeper".
        let mut refusals = Vec::new();
        let mut sys_will = persistent(version, "keeper");
        sys_will.will = Some(will_on("$SYS/will"));
        refusals.push((sys_will, ReasonCode::NOT_AUTHORIZED));
        let mut qos2_will = persistent(version, "keeper");
        qos2_will.will = Some(Will {
            qos: QoS::ExactlyOnce,
            ..will_on("keeper/will")
        });
        let too_high = if version.is_v5() {
            ReasonCode::QOS_NOT_SUPPORTED
        } else {
            ReasonCode::NOT_AUTHORIZED
        };
        refusals.push((qos2_will, too_high));
        if version.is_v5() {
            let mut unknown_method = persistent(version, "keeper");
            unknown_method.properties.authentication_method = Some("SCRAM-SHA-1".into());
            refusals.push((unknown_method, ReasonCode::BAD_AUTHENTICATION_METHOD));
        }
        for (connect, reason) in refusals {
            let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
            assert_eq!(connack, ConnAck::new(false, reason), "{version}");
            client.expect_closed().await;
        }
        // The session was there all along.
        let (_client, connack) = connect_ok(&broker, persistent(version, "keeper")).await;
        assert!(connack.session_present, "{version}");
    }
}

#[tokio::test]
async fn mqtt_3_2_2_7_the_connection_closes_after_a_refusing_connack() {
    // covers: [v311:MQTT-3.2.2-5] [MQTT-3.2.2-8]
    let broker = limited_broker().await;
    let mut cases: Vec<(ProtocolVersion, Vec<u8>, ReasonCode)> = Vec::new();
    let mut add = |connect: Connect, reason| {
        let version = connect.protocol;
        cases.push((version, pipelined(version, vec![connect.into()]), reason));
    };
    let mut empty_id = Connect::new(V311, "");
    empty_id.clean_start = false;
    add(empty_id, ReasonCode::CLIENT_IDENTIFIER_NOT_VALID);
    let mut unknown_method = Connect::new(V5, "auth");
    unknown_method.properties.authentication_method = Some("SCRAM-SHA-1".into());
    add(unknown_method, ReasonCode::BAD_AUTHENTICATION_METHOD);
    for version in [V311, V5] {
        let v5 = version.is_v5();
        let mut sys_will = Connect::new(version, "w");
        sys_will.will = Some(will_on("$SYS/will"));
        add(sys_will, ReasonCode::NOT_AUTHORIZED);
        let mut qos2_will = Connect::new(version, "w");
        qos2_will.will = Some(Will {
            qos: QoS::ExactlyOnce,
            ..will_on("w/will")
        });
        let refusal = if v5 {
            ReasonCode::QOS_NOT_SUPPORTED
        } else {
            ReasonCode::NOT_AUTHORIZED
        };
        add(qos2_will, refusal);
        let mut retained_will = Connect::new(version, "w");
        retained_will.will = Some(Will {
            retain: true,
            ..will_on("w/will")
        });
        let refusal = if v5 {
            ReasonCode::RETAIN_NOT_SUPPORTED
        } else {
            ReasonCode::NOT_AUTHORIZED
        };
        add(retained_will, refusal);
    }
    // Level 6: answered in the 3.1.1 layout with return code 1.
    cases.push((
        V311,
        vec![
            0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 1, b'x',
        ],
        ReasonCode::UNSUPPORTED_PROTOCOL_VERSION,
    ));
    // v5 CONNECTs that do not decode: the reserved flag set, and a Receive Maximum of 0.
    #[rustfmt::skip]
    cases.push((
        V5,
        vec![0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x03, 0, 60, 0, 0, 1, b'x'],
        ReasonCode::MALFORMED_PACKET,
    ));
    #[rustfmt::skip]
    cases.push((
        V5,
        vec![0x10, 0x11, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 3, 0x21, 0, 0, 0, 1, b'x'],
        ReasonCode::PROTOCOL_ERROR,
    ));
    for (version, wire, reason) in cases {
        let mut client = RawClient::open(broker.tcp, version).await;
        client.send_bytes(&wire).await;
        // The CONNACK, then the close (expect_closed fails if the connection stays open).
        assert_eq!(
            client.expect_closed().await,
            vec![Packet::ConnAck(ConnAck::new(false, reason))],
            "{version} {reason:?}"
        );
        if version.is_v5() {
            // A Connect Reason Code, and one of failure.
            assert!(reason.is_valid_for(PacketType::ConnAck), "{reason:?}");
            assert!(reason.0 >= 0x80, "{reason:?}");
        }
    }
    // Refused because the broker is full.
    let full = TestBroker::with_config(|c| c.limits.max_connections = 1).await;
    let _only = full.client(V5, "only").await;
    for version in [V311, V5] {
        let (mut client, connack) = RawClient::connect(full.tcp, Connect::new(version, "x")).await;
        assert_eq!(
            connack,
            ConnAck::new(false, ReasonCode::SERVER_UNAVAILABLE),
            "{version}"
        );
        assert_eq!(client.expect_closed().await, Vec::new());
    }
}

#[tokio::test]
async fn mqtt_3_2_2_9_maximum_qos_is_advertised_when_qos_2_is_not_supported() {
    for (maximum_qos, advertised) in [
        (0, Some(QoS::AtMostOnce)),
        (1, Some(QoS::AtLeastOnce)),
        (2, None),
    ] {
        let broker = TestBroker::with_config(|c| c.mqtt.maximum_qos = maximum_qos).await;
        let (_client, connack) = connect_ok(&broker, Connect::new(V5, "q")).await;
        assert_eq!(connack.properties.maximum_qos, advertised, "{maximum_qos}");
    }
}

#[tokio::test]
async fn mqtt_3_2_2_12_will_qos_above_the_maximum_qos_is_refused_with_0x9b() {
    for (maximum_qos, will_qos) in [
        (0, QoS::AtLeastOnce),
        (0, QoS::ExactlyOnce),
        (1, QoS::ExactlyOnce),
    ] {
        let broker = TestBroker::with_config(|c| c.mqtt.maximum_qos = maximum_qos).await;
        let mut connect = Connect::new(V5, "w");
        connect.will = Some(Will {
            qos: will_qos,
            ..will_on("w/will")
        });
        let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
        assert_eq!(
            connack,
            ConnAck::new(false, ReasonCode::QOS_NOT_SUPPORTED),
            "maximum {maximum_qos}, will {will_qos:?}"
        );
        assert_eq!(client.expect_closed().await, Vec::new());
    }
    // A will at the maximum is accepted.
    let broker = TestBroker::with_config(|c| c.mqtt.maximum_qos = 1).await;
    let mut connect = Connect::new(V5, "w");
    connect.will = Some(Will {
        qos: QoS::AtLeastOnce,
        ..will_on("w/will")
    });
    connect_ok(&broker, connect).await;
}

#[tokio::test]
async fn mqtt_3_2_2_13_retained_will_without_retain_support_is_refused_with_0x9a() {
    let broker = TestBroker::with_config(|c| c.mqtt.retain_available = false).await;
    let mut connect = Connect::new(V5, "w");
    connect.will = Some(Will {
        retain: true,
        ..will_on("w/will")
    });
    let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(
        connack,
        ConnAck::new(false, ReasonCode::RETAIN_NOT_SUPPORTED)
    );
    assert_eq!(client.expect_closed().await, Vec::new());
    // The same will without Will Retain is accepted.
    let mut connect = Connect::new(V5, "w");
    connect.will = Some(will_on("w/will"));
    let (_client, connack) = connect_ok(&broker, connect).await;
    assert_eq!(connack.properties.retain_available, Some(false));
}

#[tokio::test]
async fn mqtt_3_2_2_19_connack_fits_the_clients_maximum_packet_size() {
    // covers: [MQTT-3.2.2-20]
    let broker = TestBroker::start().await;
    let (_client, plain) = connect_ok(&broker, Connect::new(V5, "measure")).await;
    let size = Packet::from(plain).encoded_size(V5).unwrap();
    // A client that accepts exactly that many bytes gets a CONNACK no larger, with no
    // Reason String or User Properties added.
    let mut connect = Connect::new(V5, "tight");
    connect.properties.maximum_packet_size = NonZeroU32::new(size as u32);
    let (_client, connack) = connect_ok(&broker, connect).await;
    assert_eq!(connack.properties.reason_string, None);
    assert_eq!(connack.properties.user_properties, Vec::new());
    assert!(Packet::from(connack).encoded_size(V5).unwrap() <= size);
}

#[tokio::test]
async fn connack_leaves_out_properties_that_would_exceed_the_client_maximum_packet_size() {
    // covers: [MQTT-3.1.2-24]
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "tiny");
    connect.properties.maximum_packet_size = std::num::NonZeroU32::new(8);
    let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    assert_eq!(
        connack.properties,
        linnet_proto::ConnAckProperties::default()
    );
    client.send(Packet::PingReq).await;
    assert_eq!(client.recv().await, Packet::PingResp);
}
