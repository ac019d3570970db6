//! CONNECT / CONNACK over real sockets: versions, client identifiers, takeover, keep alive,
//! the CONNECT timeout and refusals.

use std::time::Duration;

use linnet_proto::{ConnAck, Connect, Disconnect, Packet, ProtocolVersion, ReasonCode};
use linnet_testkit::{RawClient, TestBroker};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn mqtt_3_2_0_1_connack_is_the_first_packet_for_every_version() {
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
    assert!(
        waited >= Duration::from_millis(1400),
        "closed after {waited:?}"
    );
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
