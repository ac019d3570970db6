//! SUBSCRIBE / UNSUBSCRIBE over real sockets: SUBACK and UNSUBACK codes, wildcard matching
//! through the broker, `$` topics, resubscription, v5 subscription options (No Local, Retain
//! As Published, Subscription Identifier), shared subscriptions and invalid filters.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::time::Duration;

use linnet_proto::{
    Bytes, BytesMut, Connect, Disconnect, Packet, ProtocolVersion, PubResponse, Publish, QoS,
    ReasonCode, SubAck, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe,
};
use linnet_testkit::{goodbye, pid, publish, topic_filter, wire_size, RawClient, TestBroker};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
const QUIET: Duration = Duration::from_millis(200);

/// One filter with its options.
fn subscription(filter: &str, options: SubscriptionOptions) -> Subscription {
    Subscription {
        filter: topic_filter(filter),
        options,
    }
}

/// A SUBSCRIBE with several filters and an optional v5 Subscription Identifier.
fn subscribe_packet(packet_id: u16, filters: &[(&str, QoS)], identifier: Option<u32>) -> Subscribe {
    Subscribe {
        packet_id: pid(packet_id),
        subscriptions: filters
            .iter()
            .map(|&(filter, qos)| subscription(filter, SubscriptionOptions::qos(qos)))
            .collect(),
        properties: SubscribeProperties {
            subscription_identifier: identifier.and_then(NonZeroU32::new),
            ..Default::default()
        },
    }
}

/// Subscribes to one filter with these options and expects it granted.
async fn subscribe_options(client: &mut RawClient, filter: &str, options: SubscriptionOptions) {
    let packet = Subscribe {
        packet_id: pid(1),
        subscriptions: vec![subscription(filter, options)],
        properties: SubscribeProperties::default(),
    };
    let suback = client.send_subscribe(packet).await;
    assert_eq!(suback.reason_codes, vec![ReasonCode(options.qos as u8)]);
}

/// Sends an UNSUBSCRIBE and returns the UNSUBACK.
async fn unsubscribe(client: &mut RawClient, packet_id: u16, filters: &[&str]) -> UnsubAck {
    let filters = filters.iter().map(|f| topic_filter(f)).collect();
    client.send(Unsubscribe::new(pid(packet_id), filters)).await;
    match client.recv().await {
        Packet::UnsubAck(unsuback) => unsuback,
        other => panic!("expected UNSUBACK, got {other:?}"),
    }
}

/// Publishes at QoS 1 and expects a PUBACK (any reason below 0x80).
async fn publish_qos1(client: &mut RawClient, topic: &str, payload: &str, id: u16) {
    let ack = client
        .publish_acked(publish(topic, payload.to_owned(), QoS::AtLeastOnce, id))
        .await;
    assert!(
        ack.reason_code.is_success(),
        "expected a successful PUBACK {id}, got {ack:?}"
    );
}

/// Receives QoS 0 PUBLISH packets until `QUIET` passes without one.
async fn drain(client: &mut RawClient) -> Vec<Publish> {
    let mut got = Vec::new();
    while let Some(packet) = client.try_recv(QUIET).await {
        match packet {
            Packet::Publish(publish) => got.push(publish),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    got
}

/// A SUBSCRIBE for one filter written byte by byte, so the filter can be invalid.
fn raw_subscribe(version: ProtocolVersion, filter: &str, options: u8) -> Vec<u8> {
    raw_subscribe_bytes(version, filter.as_bytes(), options)
}

/// [`raw_subscribe`] for a filter given as bytes, which need not be UTF-8.
fn raw_subscribe_bytes(version: ProtocolVersion, filter: &[u8], options: u8) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    if version.is_v5() {
        body.push(0x00); // no properties
    }
    body.extend_from_slice(&u16::try_from(filter.len()).expect("short").to_be_bytes());
    body.extend_from_slice(filter);
    body.push(options);
    let mut wire = vec![
        0x82,
        u8::try_from(body.len()).expect("one-byte remaining length"),
    ];
    wire.extend_from_slice(&body);
    wire
}

/// An UNSUBSCRIBE with packet id `packet_id` written byte by byte: fixed header byte `first`
/// (0xA2 when valid), then each filter as a length-prefixed string, one after another.
fn raw_unsubscribe(
    version: ProtocolVersion,
    first: u8,
    packet_id: u16,
    filters: &[&[u8]],
) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if version.is_v5() {
        body.push(0x00); // no properties
    }
    for filter in filters {
        body.extend_from_slice(&u16::try_from(filter.len()).expect("short").to_be_bytes());
        body.extend_from_slice(filter);
    }
    let mut wire = vec![
        first,
        u8::try_from(body.len()).expect("one-byte remaining length"),
    ];
    wire.extend_from_slice(&body);
    wire
}

/// Sends SUBSCRIBE for `filter` (invalid) and expects the broker to close the connection
/// without a SUBACK: v5 with a DISCONNECT carrying one of `reasons`, 3.1.1 silently.
async fn expect_filter_rejected(version: ProtocolVersion, filter: &str, reasons: &[ReasonCode]) {
    let broker = TestBroker::start().await;
    let mut client = broker.client(version, "c").await;
    client
        .send_bytes(&raw_subscribe(version, filter, 0x01))
        .await;
    let packets = client.expect_closed().await;
    if version.is_v5() {
        match packets.as_slice() {
            [Packet::Disconnect(Disconnect { reason_code, .. })] => {
                assert!(reasons.contains(reason_code), "{filter}: {reason_code:?}");
            }
            other => panic!("{version} {filter}: expected one DISCONNECT, got {other:?}"),
        }
    } else {
        assert!(packets.is_empty(), "{version} {filter}: {packets:?}");
    }
    assert_eq!(broker.broker.subscription_count(), 0, "{filter}");
}

/// Subscribes one client per filter (plus `$end`), publishes every topic (payload = topic)
/// then `$end`, and checks that each client received exactly its expected topics, in order.
async fn assert_routing(version: ProtocolVersion, topics: &[&str], expected: &[(&str, &[&str])]) {
    let broker = TestBroker::start().await;
    let mut subscribers = Vec::new();
    for (n, (filter, _)) in expected.iter().enumerate() {
        let mut client = broker.client(version, &format!("sub{n}")).await;
        // `$end` is matched by no wildcard filter at the first level [MQTT-4.7.2-1].
        let suback = client
            .send_subscribe(subscribe_packet(
                1,
                &[(filter, QoS::AtMostOnce), ("$end", QoS::AtMostOnce)],
                None,
            ))
            .await;
        assert_eq!(
            suback.reason_codes,
            vec![ReasonCode::GRANTED_QOS_0; 2],
            "{filter}"
        );
        subscribers.push(client);
    }
    let mut publisher = broker.client(version, "pub").await;
    for topic in topics.iter().chain(&["$end"]) {
        publisher
            .send(publish(topic, topic.to_string(), QoS::AtMostOnce, 0))
            .await;
    }
    publisher.ping().await;
    for ((filter, wanted), client) in expected.iter().zip(&mut subscribers) {
        let mut got = Vec::new();
        loop {
            let publish = client.recv_publish().await;
            assert_eq!(publish.payload, publish.topic.as_bytes(), "{filter}");
            assert_eq!((publish.qos, publish.retain), (QoS::AtMostOnce, false));
            if publish.topic == "$end" {
                break;
            }
            got.push(publish.topic.to_string());
        }
        assert_eq!(got, *wanted, "{version}: filter {filter:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// SUBACK

#[tokio::test]
async fn mqtt_3_9_3_1_suback_codes_follow_the_order_of_the_filters() {
    // covers: [MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.8.4-5] [MQTT-3.8.4-6]
    // covers: [v311:MQTT-3.8.4-1] [v311:MQTT-3.8.4-2] [v311:MQTT-3.8.4-4] [v311:MQTT-3.8.4-5]
    // covers: [v311:MQTT-3.9.3-1]
    // v311: MQTT-2.3.1-7
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        let filters = [
            ("q/two", QoS::ExactlyOnce),
            ("q/zero", QoS::AtMostOnce),
            ("q/one", QoS::AtLeastOnce),
        ];
        let suback = subscriber
            .send_subscribe(subscribe_packet(0x1234, &filters, None))
            .await;
        assert_eq!(
            suback,
            SubAck::new(
                pid(0x1234),
                vec![
                    ReasonCode::GRANTED_QOS_2,
                    ReasonCode::GRANTED_QOS_0,
                    ReasonCode::GRANTED_QOS_1
                ]
            ),
            "{version}"
        );
        // Each filter is a subscription of its own, at its granted QoS.
        let mut publisher = broker.client(version, "pub").await;
        for (n, (topic, granted)) in filters.iter().enumerate() {
            publisher
                .send(publish(topic, "x", QoS::ExactlyOnce, n as u16 + 1))
                .await;
            assert!(matches!(publisher.recv().await, Packet::PubRec(_)));
            let got = subscriber.recv_and_ack().await;
            assert_eq!(
                (got.topic.as_ref(), got.qos),
                (*topic, *granted),
                "{version}"
            );
        }
    }
}

#[tokio::test]
async fn mqtt_3_2_2_10_qos_above_maximum_qos_is_granted_at_the_maximum() {
    // covers: [MQTT-3.8.4-7]
    for maximum in [0u8, 1] {
        for version in [V311, V5] {
            let broker = TestBroker::with_config(|c| c.mqtt.maximum_qos = maximum).await;
            let mut subscriber = broker.client(version, "sub").await;
            let filters = [
                ("a", QoS::AtMostOnce),
                ("b", QoS::AtLeastOnce),
                ("c", QoS::ExactlyOnce),
            ];
            let suback = subscriber
                .send_subscribe(subscribe_packet(9, &filters, None))
                .await;
            let expected: Vec<ReasonCode> = filters
                .iter()
                .map(|(_, qos)| ReasonCode((*qos as u8).min(maximum)))
                .collect();
            assert_eq!(
                suback,
                SubAck::new(pid(9), expected),
                "{version} maximum {maximum}"
            );

            // Delivered at the granted QoS, not the requested one.
            let mut publisher = broker.client(version, "pub").await;
            let qos = if maximum == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
            publisher.send(publish("c", "capped", qos, 1)).await;
            if qos == QoS::AtLeastOnce {
                assert_eq!(
                    publisher.recv().await,
                    Packet::PubAck(PubResponse::new(pid(1)))
                );
            }
            let got = subscriber.recv_and_ack().await;
            assert_eq!(got.qos, qos, "{version} maximum {maximum}");
        }
    }
}

#[tokio::test]
async fn mqtt_3_8_4_7_refused_filters_get_a_failure_code_in_their_place() {
    // 3.1.1 has the single failure code 0x80; a server without wildcard support refuses
    // every filter with a wildcard.
    // covers: [v311:MQTT-3.8.4-5] [v311:MQTT-3.9.3-1] [v311:MQTT-3.9.3-2] [v311:MQTT-3.8.3-2]
    let broker = TestBroker::with_config(|c| {
        c.mqtt.wildcard_subscription_available = false;
        c.mqtt.shared_subscription_available = false;
        c.limits.max_topic_length = 16;
    })
    .await;
    for version in [V311, V5] {
        let mut subscriber = broker.client(version, "sub").await;
        let mut filters = vec![
            ("ok/1", QoS::AtLeastOnce),
            ("w/+", QoS::AtLeastOnce),
            ("this/is/far/too/long", QoS::AtMostOnce),
            ("ok/2", QoS::ExactlyOnce),
        ];
        let mut expected = if version.is_v5() {
            vec![
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                ReasonCode::TOPIC_FILTER_INVALID,
                ReasonCode::GRANTED_QOS_2,
            ]
        } else {
            vec![
                ReasonCode(1),
                ReasonCode(0x80),
                ReasonCode(0x80),
                ReasonCode(2),
            ]
        };
        if version.is_v5() {
            filters.push(("$share/g/ok/3", QoS::AtMostOnce));
            expected.push(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
        }
        let suback = subscriber
            .send_subscribe(subscribe_packet(3, &filters, None))
            .await;
        assert_eq!(suback, SubAck::new(pid(3), expected), "{version}");

        // A refused filter delivers nothing; the granted ones around it do.
        let mut publisher = broker.client(version, "pub").await;
        for topic in ["w/1", "this/is/far/too/long", "ok/3", "ok/2"] {
            publisher
                .send(publish(topic, "x", QoS::AtMostOnce, 0))
                .await;
        }
        assert_eq!(subscriber.recv_publish().await.topic, "ok/2", "{version}");
        subscriber.ping().await;
        publisher
            .send(Packet::Disconnect(Disconnect::default()))
            .await;
        subscriber
            .send(Packet::Disconnect(Disconnect::default()))
            .await;
        subscriber.expect_closed().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Matching

#[tokio::test]
async fn mqtt_3_3_2_3_each_subscriber_gets_exactly_the_topics_its_filter_matches() {
    // covers: [v311:MQTT-4.7.1-2] [v311:MQTT-4.7.1-3]
    // v311: MQTT-3.3.2-3
    let topics = [
        "sport",
        "sport/",
        "sport/tennis",
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/tennis/player2",
        "sport/badminton/player1",
        "/finance",
        "finance",
    ];
    let all: &[&str] = &topics;
    let expected: &[(&str, &[&str])] = &[
        (
            "sport/tennis/player1/#",
            &["sport/tennis/player1", "sport/tennis/player1/ranking"],
        ),
        (
            "sport/#",
            &[
                "sport",
                "sport/",
                "sport/tennis",
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player2",
                "sport/badminton/player1",
            ],
        ),
        ("sport/+", &["sport/", "sport/tennis"]),
        (
            "+/tennis/#",
            &[
                "sport/tennis",
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player2",
            ],
        ),
        (
            "sport/+/player1",
            &["sport/tennis/player1", "sport/badminton/player1"],
        ),
        ("+", &["sport", "finance"]),
        ("+/+", &["sport/", "sport/tennis", "/finance"]),
        ("/+", &["/finance"]),
        ("#", all),
        ("sport/tennis", &["sport/tennis"]),
        (
            "sport/tennis/#",
            &[
                "sport/tennis",
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
                "sport/tennis/player2",
            ],
        ),
    ];
    for version in [V311, V5] {
        assert_routing(version, &topics, expected).await;
    }
}

#[tokio::test]
async fn mqtt_4_7_3_4_matching_is_byte_exact_without_normalisation() {
    // covers: [v311:MQTT-4.7.3-4]
    let topics = [
        "sport/x",
        "Sport/x",
        "cafe\u{301}",
        "caf\u{e9}",
        "a/b/",
        "A/b",
        "a/b",
        "a /b",
    ];
    let expected: &[(&str, &[&str])] = &[
        ("Sport/#", &["Sport/x"]),
        ("caf\u{e9}", &["caf\u{e9}"]),
        ("cafe\u{301}", &["cafe\u{301}"]),
        ("a/b", &["a/b"]),
        ("a/b/+", &["a/b/"]),
    ];
    for version in [V311, V5] {
        assert_routing(version, &topics, expected).await;
    }
}

#[tokio::test]
async fn mqtt_4_7_2_1_wildcard_filters_do_not_match_dollar_topics() {
    // covers: [v311:MQTT-4.7.2-1]
    let topics = ["$foo/x", "$foo", "a/$x"];
    let expected: &[(&str, &[&str])] = &[
        ("#", &["a/$x"]),
        ("+", &[]),
        ("+/x", &[]),
        ("+/+", &["a/$x"]),
        ("$foo/#", &["$foo/x", "$foo"]),
        ("$foo/+", &["$foo/x"]),
        ("$foo", &["$foo"]),
        ("a/+", &["a/$x"]),
    ];
    for version in [V311, V5] {
        assert_routing(version, &topics, expected).await;
    }
}

#[tokio::test]
async fn mqtt_4_7_2_1_hash_does_not_receive_the_brokers_sys_topics() {
    // covers: [v311:MQTT-4.7.2-1]
    let broker = TestBroker::with_config(|c| c.sys.interval = 60).await;
    let mut everything = broker.client(V311, "all").await;
    everything.subscribe("#", QoS::AtMostOnce).await;
    let mut plus = broker.client(V5, "plus").await;
    plus.subscribe("+/broker/#", QoS::AtMostOnce).await;
    let mut sys = broker.client(V5, "sys").await;
    sys.subscribe("$SYS/#", QoS::AtMostOnce).await;
    // The broker publishes $SYS/broker/... (retained, at startup and every interval); the
    // $SYS/# subscriber sees them, live or as retained messages.
    let got = sys.recv_publish().await;
    assert!(got.topic.starts_with("$SYS/broker/"), "{got:?}");
    everything.expect_nothing(QUIET).await;
    plus.expect_nothing(Duration::from_millis(10)).await;
}

// ---------------------------------------------------------------------------------------------
// UNSUBSCRIBE

#[tokio::test]
async fn mqtt_3_10_4_2_unsubscribe_stops_delivery() {
    // covers: [MQTT-3.10.4-4]
    // covers: [v311:MQTT-3.10.4-2] [v311:MQTT-3.10.4-4]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::AtLeastOnce).await;
        subscriber.subscribe("marker", QoS::AtMostOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publish_qos1(&mut publisher, "t", "before", 1).await;
        assert_eq!(subscriber.recv_and_ack().await.payload, "before");

        let unsuback = unsubscribe(&mut subscriber, 0x0203, &["t"]).await;
        let codes = if version.is_v5() {
            vec![ReasonCode::SUCCESS]
        } else {
            vec![]
        };
        assert_eq!(unsuback, UnsubAck::new(pid(0x0203), codes), "{version}");

        publisher
            .send(publish("t", "after", QoS::AtLeastOnce, 2))
            .await;
        assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
        publisher
            .send(publish("marker", "end", QoS::AtMostOnce, 0))
            .await;
        assert_eq!(subscriber.recv_publish().await.topic, "marker", "{version}");
        subscriber.expect_nothing(QUIET).await;
    }
}

/// A connection that publishes to the same topic again gets no stale match: a subscriber that
/// arrives and a subscription whose QoS changes both take effect on its next message (the
/// broker remembers what a connection's topics matched; `mqtt_3_10_4_2_…` covers removal).
#[tokio::test]
async fn a_repeated_topic_follows_new_and_changed_subscriptions() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    let mut first = broker.client(V5, "first").await;
    first.subscribe("cache/+", QoS::AtMostOnce).await;
    publish_qos1(&mut publisher, "cache/t", "one", 1).await;
    assert_eq!(first.recv_publish().await.payload, "one");

    let mut second = broker.client(V5, "second").await;
    second.subscribe("cache/t", QoS::AtLeastOnce).await;
    publish_qos1(&mut publisher, "cache/t", "two", 2).await;
    let to_first = first.recv_publish().await;
    assert_eq!(
        (to_first.payload, to_first.qos),
        ("two".into(), QoS::AtMostOnce)
    );
    let to_second = second.recv_and_ack().await;
    assert_eq!(
        (to_second.payload, to_second.qos),
        ("two".into(), QoS::AtLeastOnce)
    );

    first.subscribe("cache/+", QoS::AtLeastOnce).await;
    publish_qos1(&mut publisher, "cache/t", "three", 3).await;
    let to_first = first.recv_and_ack().await;
    assert_eq!(
        (to_first.payload, to_first.qos),
        ("three".into(), QoS::AtLeastOnce)
    );
    assert_eq!(second.recv_and_ack().await.payload, "three");
    first.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_3_10_4_3_qos2_delivery_started_before_unsubscribe_is_completed() {
    // covers: [v311:MQTT-3.10.4-3]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::ExactlyOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .send(publish("t", "started", QoS::ExactlyOnce, 1))
            .await;
        assert!(matches!(publisher.recv().await, Packet::PubRec(_)));
        let got = subscriber.recv_publish().await;
        assert_eq!(got.payload, "started");
        let id = got.packet_id.expect("packet id");

        unsubscribe(&mut subscriber, 2, &["t"]).await;
        subscriber.send(Packet::PubRec(PubResponse::new(id))).await;
        assert_eq!(
            subscriber.recv().await,
            Packet::PubRel(PubResponse::new(id)),
            "{version}"
        );
        subscriber.send(Packet::PubComp(PubResponse::new(id))).await;
        subscriber.ping().await;
    }
}

#[tokio::test]
async fn same_filter_twice_in_one_subscribe_is_handled_in_sequence() {
    // covers: [MQTT-3.8.4-5]
    // covers: [v311:MQTT-3.8.4-4]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        let filters = [("t", QoS::AtMostOnce), ("t", QoS::AtLeastOnce)];
        let suback = subscriber
            .send_subscribe(subscribe_packet(4, &filters, None))
            .await;
        assert_eq!(
            suback,
            SubAck::new(
                pid(4),
                vec![ReasonCode::GRANTED_QOS_0, ReasonCode::GRANTED_QOS_1]
            )
        );
        assert_eq!(broker.broker.subscription_count(), 1);
        let mut publisher = broker.client(version, "pub").await;
        publish_qos1(&mut publisher, "t", "x", 1).await;
        // One copy, with the options of the last one.
        let got = subscriber.recv_and_ack().await;
        assert_eq!(got.qos, QoS::AtLeastOnce, "{version}");
        subscriber.ping().await;
    }
}

#[tokio::test]
async fn mqtt_3_11_3_1_unsuback_has_a_code_per_filter_in_order() {
    // covers: [MQTT-3.10.4-6] [MQTT-3.10.4-5]
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber
        .send_subscribe(subscribe_packet(
            1,
            &[("a", QoS::AtMostOnce), ("c/#", QoS::AtMostOnce)],
            None,
        ))
        .await;
    let unsuback = unsubscribe(&mut subscriber, 77, &["a", "b", "c/#", "a"]).await;
    assert_eq!(
        unsuback,
        UnsubAck::new(
            pid(77),
            vec![
                ReasonCode::SUCCESS,
                ReasonCode::NO_SUBSCRIPTION_EXISTED,
                ReasonCode::SUCCESS,
                // Handled in sequence: the first "a" already removed it.
                ReasonCode::NO_SUBSCRIPTION_EXISTED,
            ]
        )
    );
    assert_eq!(broker.broker.subscription_count(), 0);
}

#[tokio::test]
async fn mqtt_3_10_4_5_unsuback_is_sent_even_when_nothing_was_subscribed() {
    // covers: [v311:MQTT-3.10.4-5]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        let unsuback = unsubscribe(&mut client, 0xFFFF, &["never/subscribed"]).await;
        let codes = if version.is_v5() {
            vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]
        } else {
            vec![]
        };
        assert_eq!(unsuback, UnsubAck::new(pid(0xFFFF), codes), "{version}");
    }
}

#[tokio::test]
async fn mqtt_3_10_4_1_unsubscribe_removes_only_the_identical_filter() {
    // covers: [v311:MQTT-3.10.4-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("a/b", QoS::AtMostOnce).await;
        // A filter that matches "a/b" but is not the same text removes nothing.
        for other in ["a/+", "a/#", "#", "A/b", "a/b/"] {
            let unsuback = unsubscribe(&mut subscriber, 5, &[other]).await;
            if version.is_v5() {
                assert_eq!(
                    unsuback.reason_codes,
                    vec![ReasonCode::NO_SUBSCRIPTION_EXISTED]
                );
            }
        }
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .send(publish("a/b", "still", QoS::AtMostOnce, 0))
            .await;
        assert_eq!(
            subscriber.recv_publish().await.payload,
            "still",
            "{version}"
        );
        assert_eq!(broker.broker.subscription_count(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Resubscribe, No Local, Retain As Published

#[tokio::test]
async fn mqtt_3_8_4_3_resubscribe_replaces_the_existing_subscription() {
    // v311: MQTT-3.8.4-3
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        assert_eq!(
            subscriber
                .subscribe("t/+", QoS::ExactlyOnce)
                .await
                .reason_codes,
            vec![ReasonCode::GRANTED_QOS_2]
        );
        assert_eq!(
            subscriber
                .subscribe("t/+", QoS::AtMostOnce)
                .await
                .reason_codes,
            vec![ReasonCode::GRANTED_QOS_0]
        );
        assert_eq!(broker.broker.subscription_count(), 1);
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .send(publish("t/1", "once", QoS::ExactlyOnce, 1))
            .await;
        assert!(matches!(publisher.recv().await, Packet::PubRec(_)));
        // One copy, at the QoS of the replacing subscription.
        let got = subscriber.recv_publish().await;
        assert_eq!(got, publish("t/1", "once", QoS::AtMostOnce, 0), "{version}");
        subscriber.ping().await;
        subscriber.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn resubscribe_replaces_the_subscription_identifier() {
    // covers: [MQTT-3.8.4-3]
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber
        .send_subscribe(subscribe_packet(1, &[("t", QoS::AtMostOnce)], Some(3)))
        .await;
    subscriber
        .send_subscribe(subscribe_packet(2, &[("t", QoS::AtMostOnce)], Some(7)))
        .await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher.send(publish("t", "x", QoS::AtMostOnce, 0)).await;
    let got = subscriber.recv_publish().await;
    assert_eq!(
        got.properties.subscription_identifiers,
        vec![NonZeroU32::new(7).expect("7")]
    );
    // Without an identifier, the replacement has none.
    subscriber
        .send_subscribe(subscribe_packet(3, &[("t", QoS::AtMostOnce)], None))
        .await;
    publisher.send(publish("t", "y", QoS::AtMostOnce, 0)).await;
    assert_eq!(
        subscriber.recv_publish().await,
        publish("t", "y", QoS::AtMostOnce, 0)
    );
    subscriber.ping().await;
}

#[tokio::test]
async fn mqtt_3_8_3_3_no_local_does_not_send_a_client_its_own_messages() {
    let broker = TestBroker::start().await;
    let mut local = broker.client(V5, "local").await;
    subscribe_options(
        &mut local,
        "t",
        SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::qos(QoS::AtLeastOnce)
        },
    )
    .await;
    let mut other = broker.client(V5, "other").await;
    other.subscribe("t", QoS::AtLeastOnce).await;

    // Its own message goes to the other subscriber only.
    publish_qos1(&mut local, "t", "mine", 1).await;
    assert_eq!(other.recv_and_ack().await.payload, "mine");
    local.ping().await;
    // Someone else's message still reaches it (and, without No Local, the sender too).
    other
        .send(publish("t", "theirs", QoS::AtLeastOnce, 1))
        .await;
    let mut other_got = Vec::new();
    for _ in 0..2 {
        match other.recv().await {
            Packet::PubAck(ack) => assert_eq!(ack, PubResponse::new(pid(1))),
            Packet::Publish(got) => {
                other
                    .send(Packet::PubAck(PubResponse::new(got.packet_id.expect("id"))))
                    .await;
                other_got.push(got.payload);
            }
            packet => panic!("unexpected {packet:?}"),
        }
    }
    assert_eq!(other_got, vec![Bytes::from("theirs")]);
    assert_eq!(local.recv_and_ack().await.payload, "theirs");
    local.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn without_no_local_a_client_receives_its_own_messages() {
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "echo").await;
        client.subscribe("t", QoS::AtMostOnce).await;
        client.send(publish("t", "echo", QoS::AtMostOnce, 0)).await;
        assert_eq!(
            client.recv_publish().await,
            publish("t", "echo", QoS::AtMostOnce, 0)
        );
    }
}

#[tokio::test]
async fn mqtt_3_3_1_12_live_messages_have_retain_0() {
    // v311: MQTT-3.3.1-9
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::AtLeastOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .send(publish("t", "kept", QoS::AtLeastOnce, 1).with_retain(true))
            .await;
        assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
        let got = subscriber.recv_and_ack().await;
        assert_eq!(
            got,
            publish("t", "kept", QoS::AtLeastOnce, 1).with_qos(got.qos, got.packet_id)
        );
        assert!(!got.retain, "{version}");
    }
}

#[tokio::test]
async fn mqtt_3_3_1_13_retain_as_published_keeps_the_retain_flag_on_live_messages() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscribe_options(
        &mut subscriber,
        "t",
        SubscriptionOptions {
            retain_as_published: true,
            ..SubscriptionOptions::qos(QoS::AtMostOnce)
        },
    )
    .await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .send(publish("t", "retained", QoS::AtMostOnce, 0).with_retain(true))
        .await;
    publisher
        .send(publish("t", "plain", QoS::AtMostOnce, 0))
        .await;
    assert_eq!(
        subscriber.recv_publish().await,
        publish("t", "retained", QoS::AtMostOnce, 0).with_retain(true)
    );
    assert_eq!(
        subscriber.recv_publish().await,
        publish("t", "plain", QoS::AtMostOnce, 0)
    );
}

// ---------------------------------------------------------------------------------------------
// Subscription Identifier

#[tokio::test]
async fn subscription_identifier_is_sent_with_matching_publishes() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "sub").await;
    let suback = subscriber
        .send_subscribe(subscribe_packet(
            1,
            &[("a/+", QoS::AtLeastOnce), ("b", QoS::AtMostOnce)],
            Some(268_435_455),
        ))
        .await;
    assert_eq!(
        suback.reason_codes,
        vec![ReasonCode::GRANTED_QOS_1, ReasonCode::GRANTED_QOS_0]
    );
    subscriber
        .send_subscribe(subscribe_packet(2, &[("c", QoS::AtMostOnce)], None))
        .await;
    let mut publisher = broker.client(V5, "pub").await;
    publish_qos1(&mut publisher, "a/1", "a", 1).await;
    publisher.send(publish("b", "b", QoS::AtMostOnce, 0)).await;
    publisher.send(publish("c", "c", QoS::AtMostOnce, 0)).await;

    // Both filters of that SUBSCRIBE carry its identifier (the largest allowed, 2^28 - 1).
    let max = NonZeroU32::new(268_435_455).expect("non-zero");
    let got = subscriber.recv_and_ack().await;
    let mut expected = publish("a/1", "a", QoS::AtLeastOnce, 1).with_qos(got.qos, got.packet_id);
    expected.properties.subscription_identifiers = vec![max];
    assert_eq!(got, expected);
    let mut expected = publish("b", "b", QoS::AtMostOnce, 0);
    expected.properties.subscription_identifiers = vec![max];
    assert_eq!(subscriber.recv_publish().await, expected);
    // A subscription made without one delivers without one.
    assert_eq!(
        subscriber.recv_publish().await,
        publish("c", "c", QoS::AtMostOnce, 0)
    );
}

// ---------------------------------------------------------------------------------------------
// Shared subscriptions

/// Two v5 members of `$share/g/t`, and a publisher.
async fn shared_pair(broker: &TestBroker) -> (RawClient, RawClient, RawClient) {
    let mut a = broker.client(V5, "member-a").await;
    a.subscribe("$share/g/t", QoS::AtMostOnce).await;
    let mut b = broker.client(V5, "member-b").await;
    b.subscribe("$share/g/t", QoS::AtMostOnce).await;
    let publisher = broker.client(V5, "pub").await;
    (a, b, publisher)
}

/// Publishes `count` QoS 1 messages to "t" with payloads `0..count`; all are routed when this
/// returns.
async fn publish_numbered(publisher: &mut RawClient, count: u16) {
    for n in 0..count {
        publish_qos1(publisher, "t", &n.to_string(), n + 1).await;
    }
}

fn payloads(publishes: &[Publish]) -> Vec<u16> {
    publishes
        .iter()
        .map(|p| {
            assert_eq!((p.topic.as_ref(), p.qos), ("t", QoS::AtMostOnce));
            std::str::from_utf8(&p.payload)
                .expect("utf-8")
                .parse()
                .expect("a number")
        })
        .collect()
}

#[tokio::test]
async fn shared_subscription_delivers_each_message_to_exactly_one_member() {
    let broker = TestBroker::start().await;
    let (mut a, mut b, mut publisher) = shared_pair(&broker).await;
    publish_numbered(&mut publisher, 20).await;
    let got_a = payloads(&drain(&mut a).await);
    let got_b = payloads(&drain(&mut b).await);
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "a {got_a:?}, b {got_b:?}"
    );
    let mut all: Vec<u16> = got_a.iter().chain(&got_b).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..20).collect::<Vec<u16>>(),
        "a {got_a:?}, b {got_b:?}"
    );
}

#[tokio::test]
async fn shared_subscription_member_that_unsubscribes_gets_nothing_more() {
    let broker = TestBroker::start().await;
    let (mut a, mut b, mut publisher) = shared_pair(&broker).await;
    let unsuback = unsubscribe(&mut a, 4, &["$share/g/t"]).await;
    assert_eq!(unsuback.reason_codes, vec![ReasonCode::SUCCESS]);
    publish_numbered(&mut publisher, 10).await;
    assert_eq!(
        payloads(&drain(&mut b).await),
        (0..10).collect::<Vec<u16>>()
    );
    a.expect_nothing(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn shared_subscription_member_that_disconnects_leaves_the_group() {
    let broker = TestBroker::start().await;
    let (mut a, mut b, mut publisher) = shared_pair(&broker).await;
    a.send(Disconnect::default()).await;
    assert!(a.expect_closed().await.is_empty());
    // Its session (expiry 0) ends with the connection, and its subscription with it.
    for _ in 0..100 {
        if broker.broker.subscription_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(broker.broker.subscription_count(), 1);
    publish_numbered(&mut publisher, 10).await;
    assert_eq!(
        payloads(&drain(&mut b).await),
        (0..10).collect::<Vec<u16>>()
    );
}

#[tokio::test]
async fn shared_subscription_skips_a_member_whose_session_is_offline() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "member-a");
    connect.properties.session_expiry_interval = Some(60);
    let (mut a, _) = RawClient::connect(broker.tcp, connect).await;
    a.subscribe("$share/g/t", QoS::AtLeastOnce).await;
    let mut b = broker.client(V5, "member-b").await;
    b.subscribe("$share/g/t", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    a.send(Disconnect::default()).await;
    assert!(a.expect_closed().await.is_empty());
    // The broker detaches the session right after closing the socket.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        broker.broker.subscription_count(),
        2,
        "the offline session keeps its subscription"
    );
    publish_numbered(&mut publisher, 10).await;
    assert_eq!(
        payloads(&drain(&mut b).await),
        (0..10).collect::<Vec<u16>>()
    );
}

#[tokio::test]
async fn mqtt_4_8_2_3_shared_delivery_uses_the_chosen_members_granted_qos() {
    let broker = TestBroker::start().await;
    let mut a = broker.client(V5, "member-a").await;
    a.subscribe("$share/g/t", QoS::AtMostOnce).await;
    let mut b = broker.client(V5, "member-b").await;
    b.subscribe("$share/g/t", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    publish_numbered(&mut publisher, 6).await;
    let mut seen = BTreeSet::new();
    for (member, granted) in [(&mut a, QoS::AtMostOnce), (&mut b, QoS::AtLeastOnce)] {
        let mut count = 0;
        while let Some(packet) = member.try_recv(QUIET).await {
            let Packet::Publish(got) = packet else {
                panic!("expected PUBLISH, got {packet:?}")
            };
            assert_eq!(got.qos, granted, "{got:?}");
            if let Some(id) = got.packet_id {
                member.send(Packet::PubAck(PubResponse::new(id))).await;
            }
            assert!(seen.insert(got.payload), "delivered twice");
            count += 1;
        }
        assert!(count > 0, "{granted:?} member got nothing");
    }
    assert_eq!(seen.len(), 6);
}

#[tokio::test]
async fn each_share_group_and_each_plain_subscriber_gets_a_copy() {
    let broker = TestBroker::start().await;
    let mut g = broker.client(V5, "in-g").await;
    g.subscribe("$share/g/t", QoS::AtMostOnce).await;
    let mut h = broker.client(V5, "in-h").await;
    h.subscribe("$share/h/+", QoS::AtMostOnce).await;
    let mut plain = broker.client(V5, "plain").await;
    plain.subscribe("t", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    publish_numbered(&mut publisher, 3).await;
    for client in [&mut g, &mut h, &mut plain] {
        assert_eq!(payloads(&drain(client).await), vec![0, 1, 2]);
    }
}

#[tokio::test]
async fn mqtt_3_3_4_5_shared_and_non_shared_copies_each_carry_their_own_identifier() {
    let broker = TestBroker::start().await;
    let mut client = broker.client(V5, "both").await;
    client
        .send_subscribe(subscribe_packet(
            1,
            &[("$share/g/t", QoS::AtMostOnce)],
            Some(1),
        ))
        .await;
    client
        .send_subscribe(subscribe_packet(2, &[("t", QoS::AtMostOnce)], Some(2)))
        .await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher.send(publish("t", "x", QoS::AtMostOnce, 0)).await;
    // Two copies (4.8.2: one for the plain subscription, one via the group), in either order.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let mut got = client.recv_publish().await;
        ids.extend(
            got.properties
                .subscription_identifiers
                .drain(..)
                .map(NonZeroU32::get),
        );
        assert_eq!(got, publish("t", "x", QoS::AtMostOnce, 0));
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
    client.ping().await;
}

// ---------------------------------------------------------------------------------------------
// Invalid SUBSCRIBE

#[tokio::test]
async fn mqtt_4_7_1_1_filter_with_misplaced_hash_closes_the_connection() {
    // covers: [v311:MQTT-4.7.1-2] [v311:MQTT-4.8.0-1] [MQTT-4.13.1-1]
    for version in [V311, V5] {
        for filter in ["a/#/b", "a/b#", "#/", "a#"] {
            let reasons = [
                ReasonCode::TOPIC_FILTER_INVALID,
                ReasonCode::MALFORMED_PACKET,
            ];
            expect_filter_rejected(version, filter, &reasons).await;
        }
    }
}

#[tokio::test]
async fn mqtt_4_7_1_2_filter_with_plus_not_filling_a_level_closes_the_connection() {
    // covers: [v311:MQTT-4.7.1-3] [v311:MQTT-4.8.0-1]
    for version in [V311, V5] {
        for filter in ["a/b+", "+a/b", "a/+b/c", "++"] {
            let reasons = [
                ReasonCode::TOPIC_FILTER_INVALID,
                ReasonCode::MALFORMED_PACKET,
            ];
            expect_filter_rejected(version, filter, &reasons).await;
        }
    }
}

#[tokio::test]
async fn mqtt_4_7_3_1_empty_filter_closes_the_connection() {
    // covers: [v311:MQTT-4.7.3-1]
    let reasons = [
        ReasonCode::TOPIC_FILTER_INVALID,
        ReasonCode::MALFORMED_PACKET,
        ReasonCode::PROTOCOL_ERROR,
    ];
    for version in [V311, V5] {
        expect_filter_rejected(version, "", &reasons).await;
    }
}

#[tokio::test]
async fn mqtt_4_7_3_2_filter_with_a_null_character_closes_the_connection() {
    // covers: [v311:MQTT-4.7.3-2]
    let reasons = [
        ReasonCode::TOPIC_FILTER_INVALID,
        ReasonCode::MALFORMED_PACKET,
    ];
    for version in [V311, V5] {
        expect_filter_rejected(version, "a/\u{0}/b", &reasons).await;
    }
}

#[tokio::test]
async fn mqtt_4_8_2_1_shared_filter_with_an_empty_share_name_closes_the_connection() {
    let reasons = [
        ReasonCode::TOPIC_FILTER_INVALID,
        ReasonCode::MALFORMED_PACKET,
    ];
    expect_filter_rejected(V5, "$share//t", &reasons).await;
}

#[tokio::test]
async fn mqtt_4_8_2_2_shared_filter_with_a_bad_share_name_or_no_filter_closes_the_connection() {
    let reasons = [
        ReasonCode::TOPIC_FILTER_INVALID,
        ReasonCode::MALFORMED_PACKET,
    ];
    for filter in ["$share/g+/t", "$share/g#/t", "$share/g", "$share/g/"] {
        expect_filter_rejected(V5, filter, &reasons).await;
    }
}

#[tokio::test]
async fn mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = TestBroker::start().await;
    let mut client = broker.client(V5, "c").await;
    // Options 0x05: QoS 1 and No Local.
    client
        .send_bytes(&raw_subscribe(V5, "$share/g/t", 0x05))
        .await;
    assert_eq!(
        client.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::PROTOCOL_ERROR
        ))]
    );
    assert_eq!(broker.broker.subscription_count(), 0);
}

#[tokio::test]
async fn mqtt_3_8_3_2_subscribe_without_filters_closes_the_connection() {
    // covers: [v311:MQTT-3.8.3-3]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        // SUBSCRIBE, packet id 1, (v5: no properties), no payload.
        let wire: &[u8] = if version.is_v5() {
            &[0x82, 0x03, 0x00, 0x01, 0x00]
        } else {
            &[0x82, 0x02, 0x00, 0x01]
        };
        client.send_bytes(wire).await;
        let expected = if version.is_v5() {
            vec![Packet::Disconnect(Disconnect::new(
                ReasonCode::PROTOCOL_ERROR,
            ))]
        } else {
            vec![]
        };
        assert_eq!(client.expect_closed().await, expected, "{version}");
    }
}

#[tokio::test]
async fn mqtt_3_10_3_2_unsubscribe_without_filters_closes_the_connection() {
    // covers: [v311:MQTT-3.10.3-2]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        client.subscribe("t", QoS::AtMostOnce).await;
        let wire: &[u8] = if version.is_v5() {
            &[0xA2, 0x03, 0x00, 0x02, 0x00]
        } else {
            &[0xA2, 0x02, 0x00, 0x02]
        };
        client.send_bytes(wire).await;
        let expected = if version.is_v5() {
            vec![Packet::Disconnect(Disconnect::new(
                ReasonCode::PROTOCOL_ERROR,
            ))]
        } else {
            vec![]
        };
        assert_eq!(client.expect_closed().await, expected, "{version}");
    }
}

#[tokio::test]
async fn mqtt_3_8_1_1_subscribe_with_wrong_header_flags_closes_the_connection() {
    // covers: [v311:MQTT-3.8.1-1] [MQTT-4.13.1-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        let mut wire = raw_subscribe(version, "t", 0x00);
        wire[0] = 0x80;
        client.send_bytes(&wire).await;
        let expected = if version.is_v5() {
            vec![Packet::Disconnect(Disconnect::new(
                ReasonCode::MALFORMED_PACKET,
            ))]
        } else {
            vec![]
        };
        assert_eq!(client.expect_closed().await, expected, "{version}");
        assert_eq!(broker.broker.subscription_count(), 0);
    }
}

#[tokio::test]
async fn mqtt_3_8_3_5_reserved_subscription_option_bits_close_the_connection() {
    // In 3.1.1 bits 2-7 are reserved.
    // covers: [v311:MQTT-3.8.3-4]
    for (version, options) in [(V311, 0x04), (V311, 0x80), (V5, 0x40), (V5, 0x80)] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        client
            .send_bytes(&raw_subscribe(version, "t", options))
            .await;
        let expected = if version.is_v5() {
            vec![Packet::Disconnect(Disconnect::new(
                ReasonCode::MALFORMED_PACKET,
            ))]
        } else {
            vec![]
        };
        assert_eq!(
            client.expect_closed().await,
            expected,
            "{version} options {options:#04x}"
        );
        assert_eq!(broker.broker.subscription_count(), 0);
    }
}

#[tokio::test]
async fn subscription_qos_3_closes_the_connection() {
    // In 5.0, Maximum QoS 3 is a Protocol Error (3.8.3.1).
    // covers: [v311:MQTT-3.8.3-4]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        client.send_bytes(&raw_subscribe(version, "t", 0x03)).await;
        let expected = if version.is_v5() {
            vec![Packet::Disconnect(Disconnect::new(
                ReasonCode::PROTOCOL_ERROR,
            ))]
        } else {
            vec![]
        };
        assert_eq!(client.expect_closed().await, expected, "{version}");
        assert_eq!(broker.broker.subscription_count(), 0);
    }
}

#[tokio::test]
async fn unsubscribe_with_an_invalid_filter_closes_the_connection() {
    // covers: [v311:MQTT-4.7.1-2] [v311:MQTT-4.8.0-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        client.subscribe("a/b", QoS::AtMostOnce).await;
        // UNSUBSCRIBE, packet id 2, (v5: no properties), filter "a/#/b".
        let mut wire = vec![0xA2, 0x00, 0x00, 0x02];
        if version.is_v5() {
            wire.push(0x00);
        }
        wire.extend_from_slice(&[0x00, 0x05, b'a', b'/', b'#', b'/', b'b']);
        wire[1] = u8::try_from(wire.len() - 2).expect("short");
        client.send_bytes(&wire).await;
        let packets = client.expect_closed().await;
        if version.is_v5() {
            match packets.as_slice() {
                [Packet::Disconnect(Disconnect { reason_code, .. })] => assert!(
                    [
                        ReasonCode::TOPIC_FILTER_INVALID,
                        ReasonCode::MALFORMED_PACKET
                    ]
                    .contains(reason_code),
                    "{reason_code:?}"
                ),
                other => panic!("expected one DISCONNECT, got {other:?}"),
            }
        } else {
            assert!(packets.is_empty(), "{packets:?}");
        }
    }
}

#[tokio::test]
async fn mqtt_3_8_3_1_subscribe_filter_that_is_not_utf8_closes_the_connection() {
    // covers: [v311:MQTT-3.8.3-1]
    // An invalid two-byte sequence, and an encoded surrogate U+D800.
    for filter in [&[b'a', 0xC3, 0x28][..], &[b'a', b'/', 0xED, 0xA0, 0x80][..]] {
        for version in [V311, V5] {
            let broker = TestBroker::start().await;
            let mut client = broker.client(version, "c").await;
            client
                .send_bytes(&raw_subscribe_bytes(version, filter, 0x01))
                .await;
            assert_eq!(
                client.expect_closed().await,
                goodbye(version, ReasonCode::MALFORMED_PACKET),
                "{version} {filter:02x?}"
            );
            assert_eq!(broker.broker.subscription_count(), 0);
        }
    }
}

#[tokio::test]
async fn mqtt_3_10_1_1_unsubscribe_with_wrong_header_flags_closes_the_connection() {
    // covers: [v311:MQTT-3.10.1-1]
    for version in [V311, V5] {
        for first in [0xA0, 0xA3, 0xAA] {
            let broker = TestBroker::start().await;
            let mut client = broker.client(version, "c").await;
            client.subscribe("t", QoS::AtMostOnce).await;
            client
                .send_bytes(&raw_unsubscribe(version, first, 2, &[b"t"]))
                .await;
            assert_eq!(
                client.expect_closed().await,
                goodbye(version, ReasonCode::MALFORMED_PACKET),
                "{version} {first:#04x}"
            );
        }
    }
}

#[tokio::test]
async fn mqtt_3_10_3_1_unsubscribe_filters_are_utf8_strings_one_after_another() {
    // covers: [v311:MQTT-3.10.3-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        let filters = [
            ("a", QoS::AtMostOnce),
            ("b/+", QoS::AtMostOnce),
            ("c/#", QoS::AtMostOnce),
            ("d", QoS::AtMostOnce),
        ];
        client
            .send_subscribe(subscribe_packet(1, &filters, None))
            .await;
        // Three length-prefixed filters packed back to back, the middle one with a multi-byte
        // character: each is read as one string and removed.
        client
            .send_bytes(&raw_unsubscribe(
                version,
                0xA2,
                0x0102,
                &[b"a", "b/+".as_bytes(), b"c/#"],
            ))
            .await;
        let codes = if version.is_v5() {
            vec![ReasonCode::SUCCESS; 3]
        } else {
            vec![]
        };
        assert_eq!(
            client.recv().await,
            Packet::UnsubAck(UnsubAck::new(pid(0x0102), codes)),
            "{version}"
        );
        assert_eq!(broker.broker.subscription_count(), 1, "{version}");
        // A filter that is not UTF-8 is malformed.
        client
            .send_bytes(&raw_unsubscribe(
                version,
                0xA2,
                3,
                &[b"d", &[b'd', 0xC3, 0x28]],
            ))
            .await;
        assert_eq!(
            client.expect_closed().await,
            goodbye(version, ReasonCode::MALFORMED_PACKET),
            "{version}"
        );
    }
}

#[tokio::test]
async fn mqtt311_3_10_4_6_unsubscribe_with_several_filters_gets_one_unsuback() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V311, "sub").await;
    subscriber
        .send_subscribe(subscribe_packet(
            1,
            &[
                ("a", QoS::AtMostOnce),
                ("b/#", QoS::AtMostOnce),
                ("keep", QoS::AtMostOnce),
            ],
            None,
        ))
        .await;
    // One UNSUBSCRIBE, handled filter by filter (the second "a" finds nothing left), answered
    // by one UNSUBACK.
    let unsuback = unsubscribe(&mut subscriber, 0x4242, &["a", "never", "b/#", "a"]).await;
    assert_eq!(unsuback, UnsubAck::new(pid(0x4242), vec![]));
    subscriber.ping().await;
    assert_eq!(broker.broker.subscription_count(), 1);
    let mut publisher = broker.client(V311, "pub").await;
    for topic in ["a", "b/c", "keep"] {
        publisher
            .send(publish(topic, topic.to_owned(), QoS::AtMostOnce, 0))
            .await;
    }
    assert_eq!(
        subscriber.recv_publish().await,
        publish("keep", "keep", QoS::AtMostOnce, 0)
    );
    subscriber.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt311_3_8_4_6_delivery_qos_is_the_lower_of_published_and_granted() {
    let broker = TestBroker::start().await;
    let levels = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
    let mut subscribers = Vec::new();
    for granted in levels {
        let mut subscriber = broker
            .client(V311, &format!("granted-{}", granted as u8))
            .await;
        assert_eq!(
            subscriber.subscribe("t", granted).await.reason_codes,
            vec![ReasonCode(granted as u8)]
        );
        subscribers.push((granted, subscriber));
    }
    let mut publisher = broker.client(V311, "pub").await;
    for (n, published) in levels.into_iter().enumerate() {
        let id = n as u16 + 1;
        publisher
            .send(publish("t", format!("{}", published as u8), published, id))
            .await;
        match published {
            QoS::AtMostOnce => publisher.ping().await,
            QoS::AtLeastOnce => assert_eq!(
                publisher.recv().await,
                Packet::PubAck(PubResponse::new(pid(id)))
            ),
            QoS::ExactlyOnce => {
                assert_eq!(
                    publisher.recv().await,
                    Packet::PubRec(PubResponse::new(pid(id)))
                );
                publisher
                    .send(Packet::PubRel(PubResponse::new(pid(id))))
                    .await;
                assert_eq!(
                    publisher.recv().await,
                    Packet::PubComp(PubResponse::new(pid(id)))
                );
            }
        }
        for (granted, subscriber) in &mut subscribers {
            let got = subscriber.recv_and_ack().await;
            let expected = published.min(*granted);
            assert_eq!(
                got,
                Publish::new("t", format!("{}", published as u8)).with_qos(expected, got.packet_id),
                "granted {granted:?}, published {published:?}"
            );
        }
    }
}

#[tokio::test]
async fn mqtt_4_7_0_1_wildcards_are_allowed_in_filters_but_not_in_topic_names() {
    // covers: [v311:MQTT-4.7.1-1]
    for version in [V311, V5] {
        for topic in ["a/+", "a/#", "#", "+/b"] {
            let broker = TestBroker::start().await;
            let mut subscriber = broker.client(version, "sub").await;
            // The same text is a valid filter...
            let suback = subscriber
                .send_subscribe(subscribe_packet(
                    1,
                    &[(topic, QoS::AtMostOnce), ("a/b", QoS::AtMostOnce)],
                    None,
                ))
                .await;
            assert_eq!(
                suback.reason_codes,
                vec![ReasonCode::GRANTED_QOS_0; 2],
                "{version} {topic}"
            );
            // ...but not a topic name: PUBLISH to it ends the publisher's connection.
            let mut publisher = broker.client(version, "pub").await;
            let mut wire = vec![0x30, 0x00];
            wire.extend_from_slice(&u16::try_from(topic.len()).expect("short").to_be_bytes());
            wire.extend_from_slice(topic.as_bytes());
            if version.is_v5() {
                wire.push(0x00); // no properties
            }
            wire.extend_from_slice(b"x");
            wire[1] = u8::try_from(wire.len() - 2).expect("short");
            publisher.send_bytes(&wire).await;
            assert_eq!(
                publisher.expect_closed().await,
                goodbye(version, ReasonCode::TOPIC_NAME_INVALID),
                "{version} {topic}"
            );
            subscriber.ping().await;
            subscriber.expect_nothing(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn mqtt311_4_7_3_3_topic_names_and_filters_of_65535_bytes_are_the_limit() {
    // 65535 bytes is the most a two-byte length prefix can announce, so a longer name cannot
    // be written at all; the longest possible name and filter work end to end.
    let longest = "x".repeat(usize::from(u16::MAX));
    assert!(TopicName::new(longest.clone()).is_ok());
    assert!(TopicName::new(format!("{longest}x")).is_err());
    assert!(TopicFilter::new(format!("{longest}x")).is_err());
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        assert_eq!(
            subscriber
                .subscribe(&longest, QoS::AtLeastOnce)
                .await
                .reason_codes,
            vec![ReasonCode::GRANTED_QOS_1]
        );
        let mut publisher = broker.client(version, "pub").await;
        publish_qos1(&mut publisher, &longest, "long", 1).await;
        let got = subscriber.recv_and_ack().await;
        assert_eq!(got.topic.len(), 65_535, "{version}");
        assert_eq!(
            got,
            publish(&longest, "long", QoS::AtLeastOnce, 1).with_qos(got.qos, got.packet_id),
            "{version}"
        );
    }
}

#[tokio::test]
async fn mqtt_3_9_2_1_suback_and_unsuback_fit_a_tight_maximum_packet_size() {
    // Linnet never adds a Reason String or User Property to SUBACK or UNSUBACK; with a
    // Maximum Packet Size that leaves next to no room, refusals still arrive, complete,
    // within the limit and without either property.
    // covers: [MQTT-3.9.2-2] [MQTT-3.11.2-1] [MQTT-3.11.2-2]
    let broker = TestBroker::with_config(|c| {
        c.mqtt.wildcard_subscription_available = false;
        c.limits.max_topic_length = 8;
    })
    .await;
    // The tightest limit the broker can honour: the size of its own CONNACK.
    let (_probe, connack) = RawClient::connect(broker.tcp, Connect::new(V5, "probe")).await;
    let max = wire_size(&Packet::ConnAck(connack));
    let mut connect = Connect::new(V5, "tight");
    connect.properties.maximum_packet_size =
        std::num::NonZeroU32::new(u32::try_from(max).expect("small"));
    let (mut client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);

    let filters = [
        ("ok", QoS::AtLeastOnce),
        ("w/+", QoS::AtMostOnce),
        ("far/too/long", QoS::AtMostOnce),
    ];
    client.send(subscribe_packet(6, &filters, None)).await;
    let suback = client.recv().await;
    assert_eq!(
        suback,
        Packet::SubAck(SubAck::new(
            pid(6),
            vec![
                ReasonCode::GRANTED_QOS_1,
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,
                ReasonCode::TOPIC_FILTER_INVALID,
            ]
        ))
    );
    assert!(wire_size(&suback) <= max);

    client
        .send(Unsubscribe::new(
            pid(7),
            vec![topic_filter("ok"), topic_filter("never")],
        ))
        .await;
    let unsuback = client.recv().await;
    assert_eq!(
        unsuback,
        Packet::UnsubAck(UnsubAck::new(
            pid(7),
            vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
        ))
    );
    assert!(wire_size(&unsuback) <= max);
}

#[tokio::test]
async fn mqtt311_4_6_0_6_messages_of_one_topic_and_qos_arrive_in_the_order_published() {
    // No topic is configured in any way: every topic is ordered by default.
    // covers: [v311:MQTT-4.6.0-5]
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V311, "sub").await;
    subscriber.subscribe("ord/#", QoS::ExactlyOnce).await;
    let mut publisher = broker.client(V311, "pub").await;
    // 30 rounds over two topics and three QoS levels, all in one write.
    let streams: Vec<(String, QoS)> = ["ord/a", "ord/b"]
        .iter()
        .flat_map(|t| {
            [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce].map(|q| (t.to_string(), q))
        })
        .collect();
    let mut wire = BytesMut::new();
    let mut next_id = 0u16;
    for round in 0..30 {
        for (topic, qos) in &streams {
            next_id += 1;
            Packet::Publish(publish(
                topic,
                format!("{}:{round}", *qos as u8),
                *qos,
                next_id,
            ))
            .encode(V311, &mut wire)
            .expect("encodes");
        }
    }
    publisher.send_bytes(&wire).await;
    // The publisher's side: 60 PUBACK, 60 PUBREC (answered with PUBREL), 60 PUBCOMP.
    let (mut acked, mut completed) = (0, 0);
    while acked < 60 || completed < 60 {
        match publisher.recv().await {
            Packet::PubAck(_) => acked += 1,
            Packet::PubRec(rec) => {
                publisher
                    .send(Packet::PubRel(PubResponse::new(rec.packet_id)))
                    .await
            }
            Packet::PubComp(_) => completed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut received: Vec<Vec<String>> = vec![Vec::new(); streams.len()];
    let mut released = 0;
    let mut count = 0;
    while count < 180 || released < 60 {
        match subscriber.recv().await {
            Packet::Publish(got) => {
                count += 1;
                match (got.qos, got.packet_id) {
                    (QoS::AtMostOnce, None) => {}
                    (QoS::AtLeastOnce, Some(id)) => {
                        subscriber.send(Packet::PubAck(PubResponse::new(id))).await
                    }
                    (QoS::ExactlyOnce, Some(id)) => {
                        subscriber.send(Packet::PubRec(PubResponse::new(id))).await
                    }
                    other => panic!("QoS and packet id disagree: {other:?}"),
                }
                let stream = streams
                    .iter()
                    .position(|(t, q)| t.as_str() == &*got.topic && *q == got.qos)
                    .expect("a stream that was published");
                let text = std::str::from_utf8(&got.payload).expect("utf-8");
                received[stream].push(text.to_owned());
            }
            Packet::PubRel(rel) => {
                released += 1;
                subscriber
                    .send(Packet::PubComp(PubResponse::new(rel.packet_id)))
                    .await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    for ((topic, qos), got) in streams.iter().zip(&received) {
        let wanted: Vec<String> = (0..30).map(|r| format!("{}:{r}", *qos as u8)).collect();
        assert_eq!(got, &wanted, "{topic} at {qos:?}");
    }
    subscriber.ping().await;
}

#[tokio::test]
async fn mqtt_4_3_1_1_qos0_delivery_is_a_qos0_publish_with_dup_0() {
    // covers: [v311:MQTT-4.3.1-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut zero = broker.client(version, "zero").await;
        zero.subscribe("t", QoS::AtMostOnce).await;
        let mut two = broker.client(version, "two").await;
        two.subscribe("t", QoS::ExactlyOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        // Re-sent (DUP 1) QoS 1 and QoS 2 messages, and a QoS 0 one.
        for (n, qos) in [QoS::AtLeastOnce, QoS::ExactlyOnce].into_iter().enumerate() {
            let mut resent = publish("t", format!("{}", qos as u8), qos, n as u16 + 1);
            resent.dup = true;
            publisher.send(resent).await;
            assert!(matches!(
                publisher.recv().await,
                Packet::PubAck(_) | Packet::PubRec(_)
            ));
            assert_eq!(
                zero.recv_publish().await,
                publish("t", format!("{}", qos as u8), QoS::AtMostOnce, 0),
                "{version} {qos:?}"
            );
            two.recv_and_ack().await;
        }
        publisher.send(publish("t", "0", QoS::AtMostOnce, 0)).await;
        // Both subscribers, whatever their granted QoS, get it as QoS 0, DUP 0, no packet id.
        for client in [&mut zero, &mut two] {
            let got = client.recv_publish().await;
            assert_eq!(got, publish("t", "0", QoS::AtMostOnce, 0), "{version}");
            assert_eq!(
                (got.qos, got.dup, got.packet_id),
                (QoS::AtMostOnce, false, None)
            );
        }
    }
}
