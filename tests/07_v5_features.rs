//! MQTT 5.0 features over real sockets: Receive Maximum, Maximum Packet Size in both
//! directions, Topic Alias from the client, Message Expiry, the forwarded PUBLISH properties
//! (request / response, user properties, payload format, content type), Subscription
//! Identifiers from a client, Server Keep Alive, AUTH without a method and graceful shutdown.

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use linnet_proto::{
    Auth, Bytes, Connect, Disconnect, Packet, ProtocolVersion, PubResponse, Publish,
    PublishProperties, QoS, ReasonCode, SubAck, Subscribe, TopicName, UnsubAck, Unsubscribe,
};
use linnet_testkit::{pid, topic_filter, RawClient, TestBroker};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// The one DISCONNECT a v5 client should see before the broker closes.
fn disconnect(reason: ReasonCode) -> Vec<Packet> {
    vec![Packet::Disconnect(Disconnect::new(reason))]
}

/// A v5 CONNECT whose session outlives the connection by a minute.
fn persistent(client_id: &str, clean_start: bool) -> Connect {
    let mut connect = Connect::new(V5, client_id);
    connect.clean_start = clean_start;
    connect.properties.session_expiry_interval = Some(60);
    connect
}

/// A QoS 0 v5 PUBLISH without properties whose whole encoding is exactly `size` bytes.
fn publish_of_size(topic: &str, size: usize) -> Publish {
    let encoded = |len: usize| {
        let publish = Publish::new(topic, vec![b'x'; len]);
        (
            Packet::from(publish.clone()).encoded_size(V5).unwrap(),
            publish,
        )
    };
    let mut len = size;
    loop {
        let (encoded_size, publish) = encoded(len);
        if encoded_size <= size {
            assert_eq!(encoded_size, size, "no payload length gives {size} bytes");
            return publish;
        }
        len -= 1;
    }
}

/// Publishes one QoS 0 message with `properties` from one v5 client to another and returns
/// what the subscriber receives.
async fn forwarded(properties: PublishProperties) -> Publish {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "subscriber").await;
    subscriber.subscribe("fwd/t", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "publisher").await;
    publisher
        .send(Publish {
            properties,
            ..Publish::new("fwd/t", "payload")
        })
        .await;
    let received = subscriber.recv_publish().await;
    assert_eq!(&*received.topic, "fwd/t");
    assert_eq!(&received.payload[..], b"payload");
    received
}

// ---------------------------------------------------------------------------------------
// Receive Maximum (broker side)

#[tokio::test]
async fn qos2_publish_beyond_the_servers_receive_maximum_gets_disconnect_0x93() {
    let broker = TestBroker::with_config(|c| c.limits.receive_maximum = 2).await;
    let (mut client, connack) = RawClient::connect(broker.tcp, Connect::new(V5, "rm")).await;
    assert_eq!(
        connack.properties.receive_maximum.map(NonZeroU16::get),
        Some(2)
    );
    for id in 1..=2 {
        client
            .send(Publish::new("rm/t", "x").with_qos(QoS::ExactlyOnce, Some(pid(id))))
            .await;
        match client.recv().await {
            Packet::PubRec(pubrec) => assert_eq!(pubrec.packet_id, pid(id)),
            other => panic!("expected PUBREC, got {other:?}"),
        }
    }
    client
        .send(Publish::new("rm/t", "x").with_qos(QoS::ExactlyOnce, Some(pid(3))))
        .await;
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED)
    );
}

#[tokio::test]
async fn receive_maximum_counts_only_qos2_publishes_not_yet_completed() {
    let broker = TestBroker::with_config(|c| c.limits.receive_maximum = 2).await;
    let mut client = broker.client(V5, "rm").await;
    let qos2 = |id| Publish::new("rm/t", "x").with_qos(QoS::ExactlyOnce, Some(pid(id)));
    for id in 1..=2 {
        client.send(qos2(id)).await;
        assert!(matches!(client.recv().await, Packet::PubRec(r) if r.packet_id == pid(id)));
    }
    // QoS 1 is acknowledged at once and never fills the window.
    for id in 10..=14 {
        client
            .send(Publish::new("rm/t", "x").with_qos(QoS::AtLeastOnce, Some(pid(id))))
            .await;
        assert!(matches!(client.recv().await, Packet::PubAck(r) if r.packet_id == pid(id)));
    }
    // A re-sent PUBLISH of one already counted is not a new one [MQTT-4.3.3-10].
    client
        .send(Publish {
            dup: true,
            ..qos2(2)
        })
        .await;
    assert!(matches!(client.recv().await, Packet::PubRec(r) if r.packet_id == pid(2)));
    // PUBREL / PUBCOMP frees a place.
    client.send(Packet::PubRel(PubResponse::new(pid(1)))).await;
    assert_eq!(
        client.recv().await,
        Packet::PubComp(PubResponse::new(pid(1)))
    );
    client.send(qos2(3)).await;
    assert!(matches!(client.recv().await, Packet::PubRec(r) if r.packet_id == pid(3)));
}

/// A subscriber with Receive Maximum 2 on `rm/t` at QoS 1, and five QoS 1 messages
/// ("0".."4") already published to it.
async fn subscriber_with_receive_maximum_2(broker: &TestBroker) -> RawClient {
    let mut connect = Connect::new(V5, "rm-subscriber");
    connect.properties.receive_maximum = NonZeroU16::new(2);
    let (mut subscriber, _) = RawClient::connect(broker.tcp, connect).await;
    subscriber.subscribe("rm/t", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "rm-publisher").await;
    for (id, payload) in (1..=5).zip(["0", "1", "2", "3", "4"]) {
        let publish = Publish::new("rm/t", payload).with_qos(QoS::AtLeastOnce, Some(pid(id)));
        publisher.send(publish).await;
        assert!(matches!(publisher.recv().await, Packet::PubAck(r) if r.packet_id == pid(id)));
    }
    subscriber
}

async fn recv_numbered(subscriber: &mut RawClient, payload: &str) -> Publish {
    let publish = subscriber.recv_publish().await;
    assert_eq!(&publish.payload[..], payload.as_bytes());
    publish
}

#[tokio::test]
async fn mqtt_3_3_4_9_no_more_unacknowledged_publishes_than_the_clients_receive_maximum() {
    let broker = TestBroker::start().await;
    let mut subscriber = subscriber_with_receive_maximum_2(&broker).await;
    let first = recv_numbered(&mut subscriber, "0").await;
    let second = recv_numbered(&mut subscriber, "1").await;
    subscriber.expect_nothing(Duration::from_millis(300)).await;
    subscriber
        .send(Packet::PubAck(PubResponse::new(first.packet_id.unwrap())))
        .await;
    let third = recv_numbered(&mut subscriber, "2").await;
    subscriber.expect_nothing(Duration::from_millis(300)).await;
    for done in [second, third] {
        subscriber
            .send(Packet::PubAck(PubResponse::new(done.packet_id.unwrap())))
            .await;
    }
    recv_numbered(&mut subscriber, "3").await;
    recv_numbered(&mut subscriber, "4").await;
}

#[tokio::test]
async fn mqtt_3_3_4_10_a_full_receive_maximum_window_does_not_hold_back_other_packets() {
    let broker = TestBroker::start().await;
    let mut subscriber = subscriber_with_receive_maximum_2(&broker).await;
    recv_numbered(&mut subscriber, "0").await;
    recv_numbered(&mut subscriber, "1").await;
    subscriber.send(Packet::PingReq).await;
    assert_eq!(subscriber.recv().await, Packet::PingResp);
    subscriber
        .send(Subscribe::new(
            pid(2),
            topic_filter("other"),
            QoS::AtMostOnce,
        ))
        .await;
    assert!(matches!(subscriber.recv().await, Packet::SubAck(s) if s.packet_id == pid(2)));
}

// ---------------------------------------------------------------------------------------
// Maximum Packet Size

#[tokio::test]
async fn packet_larger_than_the_servers_maximum_packet_size_gets_disconnect_0x95() {
    let broker = TestBroker::with_config(|c| c.limits.max_packet_size = 1024).await;
    let (mut client, connack) = RawClient::connect(broker.tcp, Connect::new(V5, "big")).await;
    assert_eq!(
        connack.properties.maximum_packet_size.map(NonZeroU32::get),
        Some(1024)
    );
    // Exactly at the limit is fine.
    let mut at_limit = publish_of_size("big/t", 1024);
    at_limit = at_limit.with_qos(QoS::AtLeastOnce, Some(pid(1)));
    at_limit.payload = at_limit.payload.slice(2..); // the packet id takes two bytes
    assert_eq!(
        Packet::from(at_limit.clone()).encoded_size(V5).unwrap(),
        1024
    );
    client.send(at_limit).await;
    assert!(matches!(client.recv().await, Packet::PubAck(r) if r.packet_id == pid(1)));
    client.send(publish_of_size("big/t", 1025)).await;
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::PACKET_TOO_LARGE)
    );
}

#[tokio::test]
async fn mqtt_3_1_2_24_no_publish_larger_than_the_clients_maximum_packet_size() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "small");
    connect.properties.maximum_packet_size = NonZeroU32::new(64);
    let (mut subscriber, _) = RawClient::connect(broker.tcp, connect).await;
    subscriber.subscribe("mps/t", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "publisher").await;
    publisher.send(publish_of_size("mps/t", 65)).await;
    publisher.send(publish_of_size("mps/t", 200)).await;
    publisher.send(publish_of_size("mps/t", 64)).await;
    publisher.publish("mps/t", b"end").await;
    let first = subscriber.recv_publish().await;
    assert_eq!(Packet::from(first).encoded_size(V5).unwrap(), 64);
    assert_eq!(&subscriber.recv_publish().await.payload[..], b"end");
    subscriber.expect_nothing(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn mqtt_3_1_2_25_oversized_publish_is_dropped_as_if_it_had_been_sent() {
    let broker = TestBroker::start().await;
    let mut connect = persistent("small", true);
    connect.properties.maximum_packet_size = NonZeroU32::new(64);
    let (mut subscriber, _) = RawClient::connect(broker.tcp, connect).await;
    subscriber.subscribe("mps/t", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "publisher").await;
    let big = publish_of_size("mps/t", 200).with_qos(QoS::AtLeastOnce, Some(pid(1)));
    publisher.send(big).await;
    publisher
        .send(Publish::new("mps/t", "small").with_qos(QoS::AtLeastOnce, Some(pid(2))))
        .await;
    let small = subscriber.recv_publish().await;
    assert_eq!(&small.payload[..], b"small");
    let packet_id = small.packet_id.expect("QoS 1 has a packet id");
    subscriber
        .send(Packet::PubAck(PubResponse::new(packet_id)))
        .await;
    subscriber.hang_up().await;
    // Resumed without a size limit: the dropped message is not owed any more.
    let (mut subscriber, connack) =
        RawClient::connect(broker.tcp, persistent("small", false)).await;
    assert!(connack.session_present);
    subscriber.expect_nothing(Duration::from_millis(300)).await;
}

// ---------------------------------------------------------------------------------------
// Topic Alias from the client

fn aliased(topic: &str, alias: u16, payload: &'static str) -> Publish {
    let mut publish = Publish::new(topic, payload);
    publish.properties.topic_alias = NonZeroU16::new(alias);
    publish
}

#[tokio::test]
async fn mqtt_3_3_2_12_topic_aliases_up_to_the_maximum_are_accepted_and_resolved() {
    // covers: [MQTT-3.1.2-27]
    let broker = TestBroker::with_config(|c| c.mqtt.topic_alias_maximum = 3).await;
    let mut subscriber = broker.client(V5, "subscriber").await;
    subscriber.subscribe("alias/#", QoS::AtMostOnce).await;
    let (mut publisher, connack) = RawClient::connect(broker.tcp, Connect::new(V5, "pub")).await;
    assert_eq!(connack.properties.topic_alias_maximum, Some(3));
    let sent = [
        aliased("alias/one", 1, "a"),
        aliased("", 1, "b"),
        aliased("alias/three", 3, "c"),
        aliased("", 3, "d"),
        aliased("alias/two", 1, "e"), // remaps alias 1
        aliased("", 1, "f"),
        aliased("", 3, "g"),
    ];
    for publish in sent {
        publisher.send(publish).await;
    }
    let expected = [
        ("alias/one", "a"),
        ("alias/one", "b"),
        ("alias/three", "c"),
        ("alias/three", "d"),
        ("alias/two", "e"),
        ("alias/two", "f"),
        ("alias/three", "g"),
    ];
    for (topic, payload) in expected {
        let publish = subscriber.recv_publish().await;
        assert_eq!(
            (&*publish.topic, &publish.payload[..]),
            (topic, payload.as_bytes())
        );
        // The subscriber set no Topic Alias Maximum: none may reach it [MQTT-3.1.2-27].
        assert_eq!(publish.properties.topic_alias, None);
    }
}

#[tokio::test]
async fn topic_alias_above_the_servers_maximum_gets_disconnect_0x94() {
    let broker = TestBroker::with_config(|c| c.mqtt.topic_alias_maximum = 3).await;
    let mut subscriber = broker.client(V5, "subscriber").await;
    subscriber.subscribe("alias/t", QoS::AtMostOnce).await;
    let mut client = broker.client(V5, "alias").await;
    client.send(aliased("alias/t", 4, "x")).await;
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::TOPIC_ALIAS_INVALID)
    );
    subscriber.expect_nothing(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn mqtt_3_3_2_8_topic_alias_0_gets_disconnect_0x94() {
    let broker = TestBroker::start().await;
    let mut client = broker.client(V5, "alias").await;
    #[rustfmt::skip]
    client.send_bytes(&[
        0x30, 0x09,               // PUBLISH QoS 0, remaining length 9
        0x00, 0x03, b'a', b'/', b't',
        0x03, 0x23, 0x00, 0x00,   // properties: topic alias 0
    ]).await;
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::TOPIC_ALIAS_INVALID)
    );
}

#[tokio::test]
async fn empty_topic_with_an_unknown_topic_alias_gets_disconnect_0x82() {
    let broker = TestBroker::start().await;
    let mut client = broker.client(V5, "alias").await;
    client.send(aliased("alias/t", 1, "x")).await;
    client.send(aliased("", 2, "y")).await;
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::PROTOCOL_ERROR)
    );
}

#[tokio::test]
async fn mqtt_3_3_2_7_topic_aliases_do_not_survive_a_reconnect() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "subscriber").await;
    subscriber.subscribe("alias/t", QoS::AtMostOnce).await;
    let (mut client, _) = RawClient::connect(broker.tcp, persistent("alias", true)).await;
    client.send(aliased("alias/t", 1, "x")).await;
    client.send(aliased("", 1, "y")).await;
    assert_eq!(&subscriber.recv_publish().await.payload[..], b"x");
    assert_eq!(&subscriber.recv_publish().await.payload[..], b"y");
    client.hang_up().await;
    let (mut client, connack) = RawClient::connect(broker.tcp, persistent("alias", false)).await;
    assert!(
        connack.session_present,
        "the session survives, the aliases do not"
    );
    client.send(aliased("", 1, "z")).await;
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::PROTOCOL_ERROR)
    );
    subscriber.expect_nothing(Duration::from_millis(200)).await;
}

// ---------------------------------------------------------------------------------------
// Message Expiry

/// A persistent QoS `qos` subscriber to `topic` that has gone offline.
async fn offline_subscriber(broker: &TestBroker, client_id: &str, topic: &str, qos: QoS) {
    let (mut subscriber, _) = RawClient::connect(broker.tcp, persistent(client_id, true)).await;
    subscriber.subscribe(topic, qos).await;
    subscriber.hang_up().await;
}

fn expiring(topic: &str, payload: &'static str, id: u16, expiry: Option<u32>) -> Publish {
    let mut publish = Publish::new(topic, payload).with_qos(QoS::AtLeastOnce, Some(pid(id)));
    publish.properties.message_expiry_interval = expiry;
    publish
}

#[tokio::test]
async fn mqtt_3_3_2_6_forwarded_message_expiry_is_reduced_by_the_time_held() {
    let broker = TestBroker::start().await;
    offline_subscriber(&broker, "expiry", "exp/t", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "publisher").await;
    publisher.send(expiring("exp/t", "ten", 1, Some(10))).await;
    assert!(matches!(publisher.recv().await, Packet::PubAck(r) if r.reason_code.is_success()));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (mut subscriber, connack) =
        RawClient::connect(broker.tcp, persistent("expiry", false)).await;
    assert!(connack.session_present);
    let publish = subscriber.recv_publish().await;
    assert_eq!(&publish.payload[..], b"ten");
    let left = publish
        .properties
        .message_expiry_interval
        .expect("expiry is forwarded");
    assert!(
        (1..=9).contains(&left),
        "forwarded expiry {left} after holding it 1.1 s"
    );
}

#[tokio::test]
async fn mqtt_3_3_2_5_expired_queued_message_is_not_delivered() {
    let broker = TestBroker::start().await;
    offline_subscriber(&broker, "expiry", "exp/t", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "publisher").await;
    publisher.send(expiring("exp/t", "old", 1, Some(1))).await;
    publisher.send(expiring("exp/t", "fresh", 2, None)).await;
    for id in 1..=2 {
        assert!(matches!(publisher.recv().await, Packet::PubAck(r) if r.packet_id == pid(id)));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (mut subscriber, _) = RawClient::connect(broker.tcp, persistent("expiry", false)).await;
    let publish = subscriber.recv_publish().await;
    assert_eq!(&publish.payload[..], b"fresh");
    assert_eq!(publish.properties.message_expiry_interval, None);
    subscriber.expect_nothing(Duration::from_millis(300)).await;
}

#[tokio::test]

async fn mqtt_4_3_3_7_qos2_publish_already_sent_is_not_subject_to_expiry() {
    let broker = TestBroker::start().await;
    let (mut subscriber, _) = RawClient::connect(broker.tcp, persistent("q2", true)).await;
    subscriber.subscribe("exp/t", QoS::ExactlyOnce).await;
    let mut publisher = broker.client(V5, "publisher").await;
    let mut publish = Publish::new("exp/t", "once").with_qos(QoS::ExactlyOnce, Some(pid(1)));
    publish.properties.message_expiry_interval = Some(1);
    publisher.send(publish).await;
    let sent = subscriber.recv_publish().await;
    assert_eq!((sent.qos, sent.dup), (QoS::ExactlyOnce, false));
    // No PUBREC: the message stays unacknowledged past its expiry.
    subscriber.hang_up().await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (mut subscriber, connack) = RawClient::connect(broker.tcp, persistent("q2", false)).await;
    assert!(connack.session_present);
    let resent = subscriber.recv_publish().await;
    assert!(resent.dup, "a re-sent PUBLISH has DUP set [MQTT-3.3.1-1]");
    assert_eq!(
        resent.packet_id, sent.packet_id,
        "original packet id [MQTT-4.4.0-1]"
    );
    assert_eq!(&resent.payload[..], b"once");
}

// ---------------------------------------------------------------------------------------
// Forwarded properties

#[tokio::test]
async fn mqtt_3_3_2_15_response_topic_is_forwarded_unchanged() {
    let sent = PublishProperties {
        response_topic: Some(TopicName::new("reply/to/me").unwrap()),
        ..Default::default()
    };
    assert_eq!(forwarded(sent.clone()).await.properties, sent);
}

#[tokio::test]
async fn mqtt_3_3_2_16_correlation_data_is_forwarded_unchanged() {
    let sent = PublishProperties {
        response_topic: Some(TopicName::new("reply/to/me").unwrap()),
        correlation_data: Some(Bytes::from_static(&[0x00, 0xFF, 0x10, 0x00, 0x80])),
        ..Default::default()
    };
    assert_eq!(forwarded(sent.clone()).await.properties, sent);
}

#[tokio::test]
async fn mqtt_3_3_2_17_all_user_properties_are_forwarded() {
    let sent = PublishProperties {
        user_properties: vec![
            ("k".into(), "v".into()),
            ("k".into(), "v".into()),
            ("".into(), "".into()),
            ("ключ".into(), "значение".into()),
        ],
        ..Default::default()
    };
    assert_eq!(forwarded(sent.clone()).await.properties, sent);
}

#[tokio::test]
async fn mqtt_3_3_2_18_user_property_order_is_preserved() {
    let sent = PublishProperties {
        user_properties: vec![
            ("z".into(), "3".into()),
            ("a".into(), "1".into()),
            ("m".into(), "2".into()),
            ("a".into(), "0".into()),
            ("z".into(), "3".into()),
        ],
        ..Default::default()
    };
    let received = forwarded(sent.clone()).await;
    assert_eq!(received.properties.user_properties, sent.user_properties);
}

#[tokio::test]
async fn mqtt_3_3_2_4_payload_format_indicator_is_forwarded_unchanged() {
    for indicator in [true, false] {
        let sent = PublishProperties {
            payload_format_indicator: Some(indicator),
            ..Default::default()
        };
        assert_eq!(forwarded(sent.clone()).await.properties, sent);
    }
}

#[tokio::test]
async fn mqtt_3_3_2_20_content_type_is_forwarded_unchanged() {
    let sent = PublishProperties {
        payload_format_indicator: Some(true),
        content_type: Some("application/json; charset=utf-8".into()),
        ..Default::default()
    };
    assert_eq!(forwarded(sent.clone()).await.properties, sent);
}

// ---------------------------------------------------------------------------------------
// Subscription Identifier from a client

#[tokio::test]
async fn mqtt_3_3_4_6_subscription_identifier_in_a_client_publish_gets_disconnect_0x82() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "subscriber").await;
    subscriber.subscribe("sid/t", QoS::AtMostOnce).await;
    let mut client = broker.client(V5, "sid").await;
    let mut publish = Publish::new("sid/t", "x");
    publish.properties.subscription_identifiers = vec![NonZeroU32::new(7).unwrap()];
    client.send(publish).await;
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::PROTOCOL_ERROR)
    );
    subscriber.expect_nothing(Duration::from_millis(200)).await;
}

// ---------------------------------------------------------------------------------------
// Server Keep Alive

#[tokio::test]
async fn server_keep_alive_caps_a_zero_or_larger_client_keep_alive() {
    let broker = TestBroker::with_config(|c| c.limits.max_keep_alive = 5).await;
    for keep_alive in [0, 6, 60] {
        let mut connect = Connect::new(V5, format!("ka{keep_alive}"));
        connect.keep_alive = keep_alive;
        let (_client, connack) = RawClient::connect(broker.tcp, connect).await;
        assert_eq!(
            connack.properties.server_keep_alive,
            Some(5),
            "keep alive {keep_alive}"
        );
    }
}

#[tokio::test]
async fn mqtt_3_2_2_22_without_server_keep_alive_the_clients_keep_alive_is_used() {
    let broker = TestBroker::with_config(|c| c.limits.max_keep_alive = 5).await;
    let mut connect = Connect::new(V5, "ka1");
    connect.keep_alive = 1;
    let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.properties.server_keep_alive, None);
    let started = tokio::time::Instant::now();
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "closed after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(3000),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn server_keep_alive_is_enforced() {
    let broker = TestBroker::with_config(|c| c.limits.max_keep_alive = 1).await;
    let mut connect = Connect::new(V5, "ka0");
    connect.keep_alive = 0;
    let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.properties.server_keep_alive, Some(1));
    let started = tokio::time::Instant::now();
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::KEEP_ALIVE_TIMEOUT)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "closed after {waited:?}"
    );
}

// ---------------------------------------------------------------------------------------
// AUTH and shutdown

#[tokio::test]
async fn auth_without_a_negotiated_method_gets_disconnect_0x82() {
    let broker = TestBroker::start().await;
    let mut client = broker.client(V5, "auth").await;
    let mut auth = Auth::new(ReasonCode::RE_AUTHENTICATE);
    auth.properties.authentication_method = Some("SCRAM-SHA-1".into());
    client.send(auth).await;
    assert_eq!(
        client.expect_closed().await,
        disconnect(ReasonCode::PROTOCOL_ERROR)
    );
}

#[tokio::test]
async fn graceful_shutdown_sends_v5_clients_disconnect_0x8b() {
    let broker = TestBroker::start().await;
    let mut first = broker.client(V5, "first").await;
    let mut second = broker.client(V5, "second").await;
    let mut old = broker.client(V311, "old").await;
    broker.broker.shutdown();
    assert_eq!(
        first.expect_closed().await,
        disconnect(ReasonCode::SERVER_SHUTTING_DOWN)
    );
    assert_eq!(
        second.expect_closed().await,
        disconnect(ReasonCode::SERVER_SHUTTING_DOWN)
    );
    // 3.1.1 has no server DISCONNECT: the connection just closes.
    assert!(old.expect_closed().await.is_empty());
}

// ---------------------------------------------------------------------------------------
// Topic Alias to the client

/// A v5 subscriber to `alias/#` whose CONNECT carried `topic_alias_maximum`, and a publisher
/// that sends `alias/a`, `alias/b`, `alias/c` and each again, with its own aliases.
async fn aliased_traffic(topic_alias_maximum: Option<u16>) -> (Vec<Publish>, [&'static str; 7]) {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "subscriber");
    connect.properties.topic_alias_maximum = topic_alias_maximum;
    let (mut subscriber, _) = RawClient::connect(broker.tcp, connect).await;
    subscriber.subscribe("alias/#", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "publisher").await;
    let sent = [
        aliased("alias/a", 1, "1"),
        aliased("alias/b", 2, "2"),
        aliased("alias/c", 3, "3"),
        aliased("", 1, "4"),
        aliased("", 2, "5"),
        aliased("", 3, "6"),
        Publish::new("alias/a", "7"),
    ];
    for publish in sent {
        publisher.send(publish).await;
    }
    let mut received = Vec::new();
    for _ in 0..7 {
        received.push(subscriber.recv_publish().await);
    }
    subscriber.send(Packet::PingReq).await;
    assert_eq!(subscriber.recv().await, Packet::PingResp);
    let topics = [
        "alias/a", "alias/b", "alias/c", "alias/a", "alias/b", "alias/c", "alias/a",
    ];
    (received, topics)
}

#[tokio::test]
async fn mqtt_3_1_2_26_topic_aliases_sent_to_a_client_stay_within_its_maximum() {
    // covers: [MQTT-3.3.2-11]
    let (received, topics) = aliased_traffic(Some(2)).await;
    // The server may use aliases 1 and 2 (and must then resolve to the right topic), no more.
    let mut mapped: [Option<String>; 2] = [None, None];
    for (publish, topic) in received.iter().zip(topics) {
        let resolved = match publish.properties.topic_alias {
            Some(alias) => {
                assert!(
                    alias.get() <= 2,
                    "Topic Alias {alias} sent to a maximum of 2"
                );
                let slot = &mut mapped[usize::from(alias.get()) - 1];
                if !publish.topic.is_empty() {
                    *slot = Some(publish.topic.to_string());
                }
                slot.clone()
                    .expect("an alias is set before it is used alone")
            }
            None => publish.topic.to_string(),
        };
        assert_eq!(resolved, topic);
    }
}

#[tokio::test]
async fn mqtt_3_1_2_27_no_topic_alias_to_a_client_with_topic_alias_maximum_0() {
    // Sent as 0, and absent (which means 0).
    for maximum in [Some(0), None] {
        let (received, topics) = aliased_traffic(maximum).await;
        for (publish, topic) in received.iter().zip(topics) {
            assert_eq!(publish.properties.topic_alias, None, "{maximum:?}");
            assert_eq!(&*publish.topic, topic);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Request Response Information / Request Problem Information

#[tokio::test]
async fn mqtt_3_1_2_28_no_response_information_unless_requested() {
    let broker = TestBroker::start().await;
    for request in [Some(false), None] {
        let mut connect = Connect::new(V5, "rri");
        connect.properties.request_response_information = request;
        let (_client, connack) = RawClient::connect(broker.tcp, connect).await;
        assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
        assert_eq!(connack.properties.response_information, None, "{request:?}");
    }
}

#[tokio::test]
async fn mqtt_3_1_2_29_without_problem_information_acks_carry_no_reason_string() {
    let broker = TestBroker::with_config(|c| c.mqtt.wildcard_subscription_available = false).await;
    let mut connect = Connect::new(V5, "rpi");
    connect.properties.request_problem_information = Some(false);
    let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    // Packets whose reason codes report a problem; each is compared whole, so a Reason
    // String or a User Property would fail it.
    let qos1 = |topic, id| Publish::new(topic, "x").with_qos(QoS::AtLeastOnce, Some(pid(id)));
    let exchanges: Vec<(Packet, Packet)> = vec![
        (
            qos1("nobody/home", 1).into(),
            Packet::PubAck(PubResponse::with_reason(
                pid(1),
                ReasonCode::NO_MATCHING_SUBSCRIBERS,
            )),
        ),
        (
            qos1("$SYS/x", 2).into(),
            Packet::PubAck(PubResponse::with_reason(pid(2), ReasonCode::NOT_AUTHORIZED)),
        ),
        (
            Publish::new("nobody/home", "x")
                .with_qos(QoS::ExactlyOnce, Some(pid(3)))
                .into(),
            Packet::PubRec(PubResponse::with_reason(
                pid(3),
                ReasonCode::NO_MATCHING_SUBSCRIBERS,
            )),
        ),
        (
            Packet::PubRel(PubResponse::new(pid(4))),
            Packet::PubComp(PubResponse::with_reason(
                pid(4),
                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            )),
        ),
        (
            Packet::PubRec(PubResponse::new(pid(5))),
            Packet::PubRel(PubResponse::with_reason(
                pid(5),
                ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
            )),
        ),
        (
            Subscribe::new(pid(6), topic_filter("a/#"), QoS::AtMostOnce).into(),
            Packet::SubAck(SubAck::new(
                pid(6),
                vec![ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED],
            )),
        ),
        (
            Unsubscribe::new(pid(7), vec![topic_filter("never")]).into(),
            Packet::UnsubAck(UnsubAck::new(
                pid(7),
                vec![ReasonCode::NO_SUBSCRIPTION_EXISTED],
            )),
        ),
    ];
    for (request, answer) in exchanges {
        client.send(request).await;
        assert_eq!(client.recv().await, answer);
    }
}
