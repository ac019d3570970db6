//! PUBLISH over real sockets: the QoS 0/1/2 flows in both directions, QoS downgrade, QoS 2
//! duplicate suppression, ordering, overlapping subscriptions, v5 PUBACK reason codes,
//! `$SYS` and wildcard topics, and byte-exact payloads.

use std::collections::{HashMap, HashSet};
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use linnet_proto::{
    Bytes, BytesMut, Connect, Disconnect, Packet, PacketId, ProtocolVersion, PubResponse, Publish,
    QoS, ReasonCode, SubAck, Subscribe, SubscribeProperties, UnsubAck, Unsubscribe,
};
use linnet_testkit::{pid, publish, topic_filter, RawClient, TestBroker};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
const QUIET: Duration = Duration::from_millis(200);

/// The PUBLISH the broker should send for `topic`/`payload` at `qos` with packet id `id`.
fn delivered(topic: &str, payload: impl Into<Bytes>, qos: QoS, id: Option<PacketId>) -> Publish {
    Publish::new(topic, payload).with_qos(qos, id)
}

/// Subscribes with a v5 Subscription Identifier and returns the SUBACK.
async fn subscribe_with_id(client: &mut RawClient, filter: &str, qos: QoS, id: u32) -> SubAck {
    let mut subscribe = Subscribe::new(pid(2), topic_filter(filter), qos);
    subscribe.properties = SubscribeProperties {
        subscription_identifier: NonZeroU32::new(id),
        ..Default::default()
    };
    client.send_subscribe(subscribe).await
}

/// A v5 client whose Receive Maximum is `receive_maximum`.
async fn v5_client_with_receive_maximum(
    broker: &TestBroker,
    client_id: &str,
    receive_maximum: u16,
) -> RawClient {
    let mut connect = Connect::new(V5, client_id);
    connect.properties.receive_maximum = NonZeroU16::new(receive_maximum);
    let (client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    client
}

// ---------------------------------------------------------------------------------------------
// Client -> broker

#[tokio::test]
async fn mqtt_3_3_4_1_qos0_publish_gets_no_response() {
    // covers: [v311:MQTT-3.3.4-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::AtMostOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .send(publish("t", "zero", QoS::AtMostOnce, 0))
            .await;
        // The next packet after a QoS 0 PUBLISH is the answer to the PINGREQ: no PUBACK.
        publisher.ping().await;
        assert_eq!(
            subscriber.recv_publish().await,
            delivered("t", "zero", QoS::AtMostOnce, None),
            "{version}"
        );
    }
}

#[tokio::test]
async fn mqtt_4_3_2_4_qos1_publish_gets_puback_with_its_packet_id() {
    // covers: [MQTT-2.2.1-5] [v311:MQTT-2.3.1-6] [v311:MQTT-3.3.4-1]
    // covers: [MQTT-3.3.4-1]
    // v311: MQTT-4.3.2-2, MQTT-3.3.4-1, MQTT-2.3.1-6
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::AtLeastOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .send(publish("t", "one", QoS::AtLeastOnce, 0x1234))
            .await;
        assert_eq!(
            publisher.recv().await,
            Packet::PubAck(PubResponse::new(pid(0x1234)))
        );
        let got = subscriber.recv_publish().await;
        assert_eq!(
            got,
            delivered("t", "one", QoS::AtLeastOnce, got.packet_id),
            "{version}"
        );
        assert!(got.packet_id.is_some());
        publisher.ping().await;
    }
}

#[tokio::test]
async fn mqtt_4_3_3_8_qos2_publish_gets_pubrec_and_pubrel_gets_pubcomp() {
    // covers: [MQTT-2.2.1-5] [v311:MQTT-2.3.1-6] [v311:MQTT-3.3.4-1]
    // covers: [MQTT-4.3.3-11] [MQTT-3.3.4-1]
    // v311: MQTT-4.3.3-2, MQTT-3.3.4-1, MQTT-2.3.1-6
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::ExactlyOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .send(publish("t", "two", QoS::ExactlyOnce, 0xBEEF))
            .await;
        assert_eq!(
            publisher.recv().await,
            Packet::PubRec(PubResponse::new(pid(0xBEEF)))
        );
        publisher
            .send(Packet::PubRel(PubResponse::new(pid(0xBEEF))))
            .await;
        assert_eq!(
            publisher.recv().await,
            Packet::PubComp(PubResponse::new(pid(0xBEEF)))
        );
        let got = subscriber.recv_and_ack().await;
        assert_eq!(
            got,
            delivered("t", "two", QoS::ExactlyOnce, got.packet_id),
            "{version}"
        );
        publisher.ping().await;
        subscriber.ping().await;
    }
}

#[tokio::test]
async fn mqtt_4_3_3_10_qos2_publish_resent_before_pubrel_is_delivered_once() {
    // v311: MQTT-4.3.3-2 (no duplicate onward delivery)
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::ExactlyOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .send(publish("t", "once", QoS::ExactlyOnce, 5))
            .await;
        assert_eq!(
            publisher.recv().await,
            Packet::PubRec(PubResponse::new(pid(5)))
        );
        // Re-sent with DUP before PUBREL (the client did not see the PUBREC, say): PUBREC again,
        // nothing routed a second time.
        for _ in 0..2 {
            let mut again = publish("t", "once", QoS::ExactlyOnce, 5);
            again.dup = true;
            publisher.send(again).await;
            assert_eq!(
                publisher.recv().await,
                Packet::PubRec(PubResponse::new(pid(5)))
            );
        }
        publisher
            .send(Packet::PubRel(PubResponse::new(pid(5))))
            .await;
        assert_eq!(
            publisher.recv().await,
            Packet::PubComp(PubResponse::new(pid(5)))
        );

        let got = subscriber.recv_and_ack().await;
        assert_eq!(got.payload, "once");
        // PINGRESP is the next packet: no second copy was queued ahead of it.
        subscriber.ping().await;
        subscriber.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt_4_3_3_12_after_pubcomp_the_same_packet_id_is_a_new_message() {
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::AtMostOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .publish_and_complete(publish("t", "first", QoS::ExactlyOnce, 7))
            .await;
        publisher
            .publish_and_complete(publish("t", "second", QoS::ExactlyOnce, 7))
            .await;
        assert_eq!(subscriber.recv_publish().await.payload, "first");
        assert_eq!(
            subscriber.recv_publish().await.payload,
            "second",
            "{version}"
        );
    }
}

#[tokio::test]
async fn mqtt_4_3_3_9_after_an_error_pubrec_the_same_packet_id_is_a_new_message() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("t", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    // Clients may not publish into $SYS: refused with PUBREC 0x87, which ends that flow.
    publisher
        .send(publish("$SYS/fake", "refused", QoS::ExactlyOnce, 3))
        .await;
    assert_eq!(
        publisher.recv().await,
        Packet::PubRec(PubResponse::with_reason(pid(3), ReasonCode::NOT_AUTHORIZED))
    );
    // The same id without PUBREL: a new message, routed and answered with a fresh PUBREC.
    publisher
        .publish_and_complete(publish("t", "new", QoS::ExactlyOnce, 3))
        .await;
    assert_eq!(
        subscriber.recv_publish().await,
        delivered("t", "new", QoS::AtMostOnce, None)
    );
}

#[tokio::test]
async fn mqtt_4_3_2_5_after_puback_the_same_packet_id_is_a_new_message() {
    // v311: MQTT-4.3.2-2
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::AtMostOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .publish_and_complete(publish("t", "first", QoS::AtLeastOnce, 9))
            .await;
        // Even with DUP set, after the PUBACK this is a new publication.
        let mut second = publish("t", "second", QoS::AtLeastOnce, 9);
        second.dup = true;
        publisher.publish_and_complete(second).await;
        assert_eq!(subscriber.recv_publish().await.payload, "first");
        assert_eq!(
            subscriber.recv_publish().await.payload,
            "second",
            "{version}"
        );
    }
}

#[tokio::test]
async fn mqtt_4_3_3_11_pubrel_for_an_unknown_packet_id_gets_pubcomp() {
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        client.send(Packet::PubRel(PubResponse::new(pid(42)))).await;
        let expected = if version.is_v5() {
            PubResponse::with_reason(pid(42), ReasonCode::PACKET_IDENTIFIER_NOT_FOUND)
        } else {
            PubResponse::new(pid(42))
        };
        assert_eq!(client.recv().await, Packet::PubComp(expected), "{version}");
        client.ping().await;
    }
}

#[tokio::test]
async fn mqtt_3_3_1_3_forwarded_publish_has_dup_0_even_if_received_with_dup_1() {
    // covers: [v311:MQTT-3.3.1-3]
    // v311: MQTT-3.3.1-3
    for version in [V311, V5] {
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let broker = TestBroker::start().await;
            let mut subscriber = broker.client(version, "sub").await;
            subscriber.subscribe("t", QoS::ExactlyOnce).await;
            let mut publisher = broker.client(version, "pub").await;
            let mut resent = publish("t", "dup", qos, 11);
            resent.dup = true;
            publisher.publish_and_complete(resent).await;
            let got = subscriber.recv_and_ack().await;
            assert_eq!(
                got,
                delivered("t", "dup", qos, got.packet_id),
                "{version} {qos:?}"
            );
            assert!(!got.dup);
        }
    }
}

#[tokio::test]
async fn v5_puback_reports_no_matching_subscribers_with_0x10() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .send(publish("nobody/home", "x", QoS::AtLeastOnce, 1))
        .await;
    assert_eq!(
        publisher.recv().await,
        Packet::PubAck(PubResponse::with_reason(
            pid(1),
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        ))
    );
    // QoS 2: PUBREC 0x10 is below 0x80, so the flow goes on to PUBCOMP Success.
    publisher
        .send(publish("nobody/home", "x", QoS::ExactlyOnce, 2))
        .await;
    assert_eq!(
        publisher.recv().await,
        Packet::PubRec(PubResponse::with_reason(
            pid(2),
            ReasonCode::NO_MATCHING_SUBSCRIBERS
        ))
    );
    publisher
        .send(Packet::PubRel(PubResponse::new(pid(2))))
        .await;
    assert_eq!(
        publisher.recv().await,
        Packet::PubComp(PubResponse::new(pid(2)))
    );

    // Once someone subscribes, the same PUBLISH is acknowledged with Success.
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("nobody/+", QoS::AtMostOnce).await;
    publisher
        .send(publish("nobody/home", "x", QoS::AtLeastOnce, 3))
        .await;
    assert_eq!(
        publisher.recv().await,
        Packet::PubAck(PubResponse::new(pid(3)))
    );
    assert_eq!(subscriber.recv_publish().await.topic, "nobody/home");
}

#[tokio::test]
async fn v311_puback_has_no_reason_code_when_nobody_subscribes() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "pub").await;
    publisher
        .publish_and_complete(publish("nobody", "x", QoS::AtLeastOnce, 1))
        .await;
    publisher
        .publish_and_complete(publish("nobody", "x", QoS::ExactlyOnce, 2))
        .await;
}

#[tokio::test]
async fn client_publish_to_sys_is_not_delivered() {
    // covers: [v311:MQTT-3.3.5-2]
    // v311: MQTT-3.3.5-2 (an unauthorised PUBLISH is acknowledged normally, or the connection
    // is closed); v5 says Not authorized in the PUBACK.
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("$SYS/#", QoS::AtLeastOnce).await;
        subscriber.subscribe("marker", QoS::AtMostOnce).await;
        let mut publisher = broker.client(version, "pub").await;

        publisher
            .send(publish(
                "$SYS/broker/uptime",
                "0 seconds",
                QoS::AtMostOnce,
                0,
            ))
            .await;
        publisher
            .send(publish(
                "$SYS/broker/uptime",
                "1 seconds",
                QoS::AtLeastOnce,
                1,
            ))
            .await;
        let expected = if version.is_v5() {
            PubResponse::with_reason(pid(1), ReasonCode::NOT_AUTHORIZED)
        } else {
            PubResponse::new(pid(1))
        };
        assert_eq!(
            publisher.recv().await,
            Packet::PubAck(expected),
            "{version}"
        );
        publisher
            .send(publish("marker", "end", QoS::AtMostOnce, 0))
            .await;

        // The marker, sent last, is the first thing the $SYS/# subscriber sees.
        assert_eq!(
            subscriber.recv_publish().await,
            delivered("marker", "end", QoS::AtMostOnce, None),
            "{version}"
        );
        subscriber.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt_3_3_2_2_wildcard_in_publish_topic_closes_the_connection() {
    // covers: [v311:MQTT-3.3.2-2]
    // v311: MQTT-3.3.2-2, MQTT-4.8.0-1
    for version in [V311, V5] {
        for topic in ["a/+", "a/#", "+", "a/b+c"] {
            let broker = TestBroker::start().await;
            let mut subscriber = broker.client(version, "sub").await;
            subscriber.subscribe("#", QoS::AtMostOnce).await;
            let mut publisher = broker.client(version, "pub").await;
            publisher
                .send(publish(topic, "x", QoS::AtLeastOnce, 1))
                .await;
            let packets = publisher.expect_closed().await;
            if version.is_v5() {
                // Topic Name invalid, or Malformed Packet: either says why.
                let reason = match packets.as_slice() {
                    [Packet::Disconnect(Disconnect { reason_code, .. })] => *reason_code,
                    other => panic!("{topic}: expected one DISCONNECT, got {other:?}"),
                };
                assert!(
                    [ReasonCode::TOPIC_NAME_INVALID, ReasonCode::MALFORMED_PACKET]
                        .contains(&reason),
                    "{topic}: {reason:?}"
                );
            } else {
                assert!(packets.is_empty(), "{topic}: {packets:?}");
            }
            subscriber.ping().await;
            subscriber.expect_nothing(QUIET).await;
        }
    }
}

#[tokio::test]
async fn v5_publish_above_maximum_qos_is_disconnected_with_0x9b() {
    let broker = TestBroker::with_config(|c| c.mqtt.maximum_qos = 1).await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("t", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .send(publish("t", "too much", QoS::ExactlyOnce, 1))
        .await;
    assert_eq!(
        publisher.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::QOS_NOT_SUPPORTED
        ))]
    );
    subscriber.ping().await;
    subscriber.expect_nothing(QUIET).await;
}

// ---------------------------------------------------------------------------------------------
// Broker -> client

#[tokio::test]
async fn mqtt_4_3_2_2_broker_sends_qos1_with_a_packet_id_and_dup_0() {
    // v311: MQTT-4.3.2-1, MQTT-2.3.1-4
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::AtLeastOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .publish_and_complete(publish("t", "m", QoS::AtLeastOnce, 1))
            .await;
        let got = subscriber.recv_publish().await;
        let id = got.packet_id.expect("QoS 1 PUBLISH has a packet id");
        assert_eq!(
            got,
            delivered("t", "m", QoS::AtLeastOnce, Some(id)),
            "{version}"
        );
        subscriber.send(Packet::PubAck(PubResponse::new(id))).await;
        subscriber.ping().await;
    }
}

#[tokio::test]
async fn mqtt_4_3_2_1_broker_uses_a_distinct_packet_id_per_unacknowledged_message() {
    // covers: [MQTT-2.2.1-4] [v311:MQTT-2.3.1-4]
    // covers: [MQTT-4.3.3-1]
    // v311: MQTT-2.3.1-4
    for version in [V311, V5] {
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let broker = TestBroker::start().await;
            let mut subscriber = broker.client(version, "sub").await;
            subscriber.subscribe("t", qos).await;
            let mut publisher = broker.client(version, "pub").await;
            for n in 1..=5u16 {
                publisher
                    .publish_and_complete(publish("t", n.to_string(), qos, n))
                    .await;
            }
            let mut ids = HashSet::new();
            for n in 1..=5u16 {
                let got = subscriber.recv_publish().await;
                assert_eq!(got.payload, n.to_string());
                assert_eq!(got.qos, qos);
                assert!(
                    ids.insert(got.packet_id.expect("packet id")),
                    "{version} {qos:?}: reused"
                );
            }
        }
    }
}

#[tokio::test]
async fn mqtt_4_3_3_4_broker_qos2_flow_pubrec_pubrel_pubcomp_with_one_packet_id() {
    // covers: [MQTT-2.2.1-5] [v311:MQTT-2.3.1-6]
    // covers: [MQTT-4.3.3-2]
    // v311: MQTT-4.3.3-1
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::ExactlyOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .publish_and_complete(publish("t", "exactly", QoS::ExactlyOnce, 1))
            .await;

        let got = subscriber.recv_publish().await;
        let id = got.packet_id.expect("QoS 2 PUBLISH has a packet id");
        assert_eq!(
            got,
            delivered("t", "exactly", QoS::ExactlyOnce, Some(id)),
            "{version}"
        );
        subscriber.send(Packet::PubRec(PubResponse::new(id))).await;
        assert_eq!(
            subscriber.recv().await,
            Packet::PubRel(PubResponse::new(id)),
            "{version}"
        );
        subscriber.send(Packet::PubComp(PubResponse::new(id))).await;
        subscriber.ping().await;
        subscriber.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn broker_qos2_slot_is_freed_by_pubcomp_not_by_pubrec() {
    let broker = TestBroker::start().await;
    let mut subscriber = v5_client_with_receive_maximum(&broker, "sub", 1).await;
    subscriber.subscribe("t", QoS::ExactlyOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(publish("t", "1", QoS::ExactlyOnce, 1))
        .await;
    publisher
        .publish_and_complete(publish("t", "2", QoS::ExactlyOnce, 2))
        .await;

    let first = subscriber.recv_publish().await;
    assert_eq!(first.payload, "1");
    let id = first.packet_id.expect("packet id");
    subscriber.send(Packet::PubRec(PubResponse::new(id))).await;
    assert_eq!(
        subscriber.recv().await,
        Packet::PubRel(PubResponse::new(id))
    );
    // Still in flight until PUBCOMP: the second message waits.
    subscriber.ping().await;
    subscriber.send(Packet::PubComp(PubResponse::new(id))).await;
    let second = subscriber.recv_and_ack().await;
    assert_eq!(
        second,
        delivered("t", "2", QoS::ExactlyOnce, second.packet_id)
    );
}

#[tokio::test]
async fn mqtt_4_4_0_2_error_puback_or_pubrec_from_the_client_completes_the_message() {
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let broker = TestBroker::start().await;
        let mut subscriber = v5_client_with_receive_maximum(&broker, "sub", 1).await;
        subscriber.subscribe("t", qos).await;
        let mut publisher = broker.client(V5, "pub").await;
        publisher
            .publish_and_complete(publish("t", "1", qos, 1))
            .await;
        publisher
            .publish_and_complete(publish("t", "2", qos, 2))
            .await;

        let first = subscriber.recv_publish().await;
        assert_eq!(first.payload, "1");
        let refusal =
            PubResponse::with_reason(first.packet_id.expect("id"), ReasonCode::UNSPECIFIED_ERROR);
        subscriber
            .send(if qos == QoS::AtLeastOnce {
                Packet::PubAck(refusal)
            } else {
                Packet::PubRec(refusal)
            })
            .await;
        // No PUBREL for a refused QoS 2 message, no re-send: the next packet is message 2.
        let second = subscriber.recv_and_ack().await;
        assert_eq!(
            second,
            delivered("t", "2", qos, second.packet_id),
            "{qos:?}"
        );
        subscriber.ping().await;
    }
}

#[tokio::test]
async fn v5_pubrec_for_an_unknown_packet_id_gets_pubrel_0x92() {
    let broker = TestBroker::start().await;
    let mut client = broker.client(V5, "c").await;
    client.send(Packet::PubRec(PubResponse::new(pid(77)))).await;
    assert_eq!(
        client.recv().await,
        Packet::PubRel(PubResponse::with_reason(
            pid(77),
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        ))
    );
    client.ping().await;
}

#[tokio::test]
async fn puback_and_pubcomp_for_unknown_packet_ids_are_ignored() {
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        client.send(Packet::PubAck(PubResponse::new(pid(5)))).await;
        client.send(Packet::PubComp(PubResponse::new(pid(6)))).await;
        // No answer and no disconnect.
        client.ping().await;
        client.expect_nothing(QUIET).await;
    }
}

// ---------------------------------------------------------------------------------------------
// QoS downgrade, ordering, overlapping subscriptions

#[tokio::test]
async fn mqtt_3_8_4_8_delivery_qos_is_the_lower_of_published_and_granted() {
    // v311: MQTT-3.8.4-6
    let cases = [
        // (granted, published, delivered)
        (QoS::AtMostOnce, QoS::ExactlyOnce, QoS::AtMostOnce),
        (QoS::AtMostOnce, QoS::AtLeastOnce, QoS::AtMostOnce),
        (QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce),
        (QoS::ExactlyOnce, QoS::AtLeastOnce, QoS::AtLeastOnce),
        (QoS::ExactlyOnce, QoS::AtMostOnce, QoS::AtMostOnce),
        (QoS::ExactlyOnce, QoS::ExactlyOnce, QoS::ExactlyOnce),
    ];
    for version in [V311, V5] {
        for (granted, published, expected) in cases {
            let broker = TestBroker::start().await;
            let mut subscriber = broker.client(version, "sub").await;
            let suback = subscriber.subscribe("t", granted).await;
            assert_eq!(suback.reason_codes, vec![ReasonCode(granted as u8)]);
            let mut publisher = broker.client(version, "pub").await;
            publisher
                .publish_and_complete(publish("t", "q", published, 1))
                .await;
            let got = subscriber.recv_and_ack().await;
            assert_eq!(
                got,
                delivered("t", "q", expected, got.packet_id),
                "{version}: granted {granted:?}, published {published:?}"
            );
        }
    }
}

#[tokio::test]
async fn mqtt_4_6_0_5_burst_of_200_qos1_messages_arrives_in_order() {
    // covers: [v311:MQTT-7.1.1-1]
    // covers: [MQTT-4.6.0-6]
    // v311: MQTT-4.6.0-5, MQTT-4.6.0-6
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("burst", QoS::AtLeastOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        // All 200 in one write, so the broker handles them as one batch.
        let mut wire = BytesMut::new();
        for n in 1..=200u16 {
            Packet::Publish(publish("burst", n.to_string(), QoS::AtLeastOnce, n))
                .encode(version, &mut wire)
                .expect("encodes");
        }
        publisher.send_bytes(&wire).await;
        for n in 1..=200u16 {
            assert_eq!(
                publisher.recv().await,
                Packet::PubAck(PubResponse::new(pid(n)))
            );
        }
        for n in 1..=200u16 {
            let got = subscriber.recv_and_ack().await;
            assert_eq!(
                got,
                delivered("burst", n.to_string(), QoS::AtLeastOnce, got.packet_id),
                "{version}"
            );
        }
        subscriber.ping().await;
    }
}

#[tokio::test]
async fn order_is_kept_when_messages_queue_behind_a_small_receive_maximum() {
    // covers: [MQTT-4.6.0-5]
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let broker = TestBroker::start().await;
        let mut subscriber = v5_client_with_receive_maximum(&broker, "sub", 3).await;
        subscriber.subscribe("burst", QoS::ExactlyOnce).await;
        let mut publisher = broker.client(V5, "pub").await;
        let mut wire = BytesMut::new();
        for n in 1..=50u16 {
            Packet::Publish(publish("burst", n.to_string(), qos, n))
                .encode(V5, &mut wire)
                .expect("encodes");
        }
        publisher.send_bytes(&wire).await;
        // Answer packets as they come: with a window of 3, PUBLISH and PUBREL interleave.
        let mut payloads = Vec::new();
        let mut released = 0;
        while payloads.len() < 50 || (qos == QoS::ExactlyOnce && released < 50) {
            match subscriber.recv().await {
                Packet::Publish(got) => {
                    assert_eq!(got.qos, qos);
                    let id = got.packet_id.expect("packet id");
                    payloads.push(got.payload);
                    subscriber
                        .send(if qos == QoS::AtLeastOnce {
                            Packet::PubAck(PubResponse::new(id))
                        } else {
                            Packet::PubRec(PubResponse::new(id))
                        })
                        .await;
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
        let expected: Vec<Bytes> = (1..=50u16).map(|n| Bytes::from(n.to_string())).collect();
        assert_eq!(payloads, expected, "{qos:?}");
        subscriber.ping().await;
    }
}

#[tokio::test]
async fn mqtt_3_3_4_2_overlapping_subscriptions_deliver_one_copy_at_the_highest_qos() {
    // covers: [v311:MQTT-3.3.5-1]
    // v311: MQTT-3.3.5-1 (3.1.1 also allows one copy per subscription; Linnet sends one).
    let qos_pairs = [
        (QoS::AtMostOnce, QoS::ExactlyOnce),
        (QoS::ExactlyOnce, QoS::AtMostOnce),
        (QoS::AtLeastOnce, QoS::AtMostOnce),
    ];
    // Two wildcard filters, and an exact filter with a wildcard one (indexed apart).
    let filter_pairs = [("a/#", "a/+"), ("a/b", "+/#")];
    for version in [V311, V5] {
        for (first, second) in filter_pairs {
            for (first_qos, second_qos) in qos_pairs {
                let broker = TestBroker::start().await;
                let mut subscriber = broker.client(version, "sub").await;
                subscriber.subscribe(first, first_qos).await;
                subscriber.subscribe(second, second_qos).await;
                let mut publisher = broker.client(version, "pub").await;
                let both = publish("a/b", "both", QoS::ExactlyOnce, 1);
                publisher.publish_and_complete(both).await;
                let got = subscriber.recv_and_ack().await;
                let highest = first_qos.max(second_qos);
                assert_eq!(
                    got,
                    delivered("a/b", "both", highest, got.packet_id),
                    "{version}: {first} {first_qos:?}, {second} {second_qos:?}"
                );
                // The PINGRESP comes next: no second copy was queued.
                subscriber.ping().await;
            }
        }
    }
}

#[tokio::test]
async fn mqtt_3_3_4_4_one_copy_for_overlapping_subscriptions_carries_every_identifier() {
    // covers: [MQTT-3.3.4-3]
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscribe_with_id(&mut subscriber, "a/#", QoS::AtLeastOnce, 1).await;
    subscribe_with_id(&mut subscriber, "a/+", QoS::AtMostOnce, 2).await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(publish("a/b", "both", QoS::AtLeastOnce, 1))
        .await;
    publisher
        .publish_and_complete(publish("a/b/c", "hash only", QoS::AtLeastOnce, 2))
        .await;

    let mut got = subscriber.recv_and_ack().await;
    let mut ids: Vec<u32> = got
        .properties
        .subscription_identifiers
        .iter()
        .map(|id| id.get())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
    got.properties.subscription_identifiers.clear();
    assert_eq!(
        got,
        delivered("a/b", "both", QoS::AtLeastOnce, got.packet_id)
    );

    let got = subscriber.recv_and_ack().await;
    let mut expected = delivered("a/b/c", "hash only", QoS::AtLeastOnce, got.packet_id);
    expected.properties.subscription_identifiers = vec![NonZeroU32::new(1).expect("non-zero")];
    assert_eq!(got, expected);
    subscriber.ping().await;
}

// ---------------------------------------------------------------------------------------------
// Payloads

#[tokio::test]
async fn binary_payload_with_zero_bytes_is_forwarded_byte_exact() {
    let mut payload: Vec<u8> = vec![0, 0, 0];
    payload.extend(0..=255u8);
    payload.extend([0xFF, 0x00, 0xEF, 0xBB, 0xBF, 0x00, 0x00]);
    let payload = Bytes::from(payload);
    for version in [V311, V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let broker = TestBroker::start().await;
            let mut subscriber = broker.client(version, "sub").await;
            subscriber.subscribe("bin", QoS::ExactlyOnce).await;
            let mut publisher = broker.client(version, "pub").await;
            publisher
                .publish_and_complete(publish("bin", payload.clone(), qos, 1))
                .await;
            let got = subscriber.recv_and_ack().await;
            assert_eq!(
                got,
                delivered("bin", payload.clone(), qos, got.packet_id),
                "{version}"
            );
        }
    }
}

#[tokio::test]
async fn payload_of_64_kib_is_forwarded_byte_exact() {
    let payload: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect();
    assert!(payload.contains(&0));
    let payload = Bytes::from(payload);
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("big", QoS::AtLeastOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .publish_and_complete(publish("big", payload.clone(), QoS::AtLeastOnce, 1))
            .await;
        let got = subscriber.recv_and_ack().await;
        assert_eq!(got.payload.len(), 65_536);
        assert_eq!(
            got,
            delivered("big", payload.clone(), QoS::AtLeastOnce, got.packet_id)
        );
    }
}

#[tokio::test]
async fn empty_payload_is_forwarded() {
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("empty", QoS::AtLeastOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher
            .publish_and_complete(publish("empty", Bytes::new(), QoS::AtLeastOnce, 1))
            .await;
        let got = subscriber.recv_and_ack().await;
        assert_eq!(
            got,
            delivered("empty", Bytes::new(), QoS::AtLeastOnce, got.packet_id)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Packet identifiers

/// The next `count` packets, each of which must be a PUBLISH.
async fn recv_publishes(client: &mut RawClient, count: usize) -> Vec<Publish> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        got.push(client.recv_publish().await);
    }
    got
}

#[tokio::test]
async fn mqtt_2_2_1_4_server_packet_ids_are_non_zero_and_not_in_use() {
    // covers: [v311:MQTT-2.3.1-4]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::ExactlyOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        // Ids of messages the subscriber has not completed: QoS, and PUBREL received.
        let mut in_use: HashMap<PacketId, (QoS, bool)> = HashMap::new();
        let mut sent = 0u16;
        for round in 0..3 {
            for _ in 0..6 {
                sent += 1;
                let qos = if sent % 2 == 0 {
                    QoS::ExactlyOnce
                } else {
                    QoS::AtLeastOnce
                };
                publisher
                    .publish_and_complete(publish("t", sent.to_string(), qos, 1))
                    .await;
            }
            for got in recv_publishes(&mut subscriber, 6).await {
                // Non-zero by type (and the decoder refuses 0); not one still in use.
                let id = got.packet_id.expect("QoS 1 and 2 carry a packet id");
                assert!(
                    in_use.insert(id, (got.qos, false)).is_none(),
                    "{version} round {round}: {id} is still in use"
                );
            }
            // QoS 1: PUBACK frees the id. QoS 2: PUBREC now, so the id stays in use (PUBREL
            // sent) until the PUBCOMP of the next round.
            let mut ids: Vec<_> = in_use.iter().map(|(id, state)| (*id, *state)).collect();
            ids.sort();
            for (id, state) in ids {
                match state {
                    (QoS::AtLeastOnce, _) => {
                        subscriber.send(Packet::PubAck(PubResponse::new(id))).await;
                        in_use.remove(&id);
                    }
                    (_, false) => {
                        subscriber.send(Packet::PubRec(PubResponse::new(id))).await;
                        let pubrel = Packet::PubRel(PubResponse::new(id));
                        assert_eq!(subscriber.recv().await, pubrel);
                        in_use.insert(id, (QoS::ExactlyOnce, true));
                    }
                    (_, true) => {
                        subscriber.send(Packet::PubComp(PubResponse::new(id))).await;
                        in_use.remove(&id);
                    }
                }
            }
            subscriber.ping().await;
        }
    }
}

#[tokio::test]
async fn mqtt_2_2_1_4_packet_ids_skip_one_still_in_use_when_they_wrap_around() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("t", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(publish("t", "held", QoS::AtLeastOnce, 1))
        .await;
    let held = subscriber
        .recv_publish()
        .await
        .packet_id
        .expect("packet id");
    // Enough further messages, each acknowledged, for the ids to wrap around past `held`.
    const TOTAL: usize = 66_000;
    const CHUNK: usize = 2_000;
    let mut seen = 0;
    while seen < TOTAL {
        let mut wire = BytesMut::new();
        for n in 0..CHUNK {
            let id = u16::try_from(n + 1).expect("chunk fits the id space");
            Packet::Publish(publish("t", Bytes::new(), QoS::AtLeastOnce, id))
                .encode(V5, &mut wire)
                .expect("encodes");
        }
        publisher.send_bytes(&wire).await;
        for _ in 0..CHUNK {
            assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
        }
        for _ in 0..CHUNK {
            let got = subscriber.recv_publish().await;
            let id = got.packet_id.expect("packet id");
            assert_ne!(id, held, "packet id {held} reused while unacknowledged");
            subscriber.send(Packet::PubAck(PubResponse::new(id))).await;
        }
        seen += CHUNK;
    }
    subscriber
        .send(Packet::PubAck(PubResponse::new(held)))
        .await;
    subscriber.ping().await;
}

#[tokio::test]
async fn mqtt_2_2_1_6_suback_and_unsuback_carry_the_request_packet_id() {
    // covers: [v311:MQTT-2.3.1-7]
    let ids = [1, 0x00FF, 0x1234, 0xFFFF];
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut client = broker.client(version, "c").await;
        // All in one write: the answers come in order, each with its request's id.
        let mut wire = BytesMut::new();
        for id in ids {
            let mut subscribe =
                Subscribe::new(pid(id), topic_filter(&format!("a/{id}")), QoS::AtLeastOnce);
            subscribe.subscriptions.push(linnet_proto::Subscription {
                filter: topic_filter("b/+"),
                options: linnet_proto::SubscriptionOptions::qos(QoS::AtMostOnce),
            });
            Packet::from(subscribe).encode(version, &mut wire).unwrap();
        }
        for id in ids {
            let filters = vec![topic_filter(&format!("a/{id}")), topic_filter("never")];
            Packet::from(Unsubscribe::new(pid(id), filters))
                .encode(version, &mut wire)
                .unwrap();
        }
        client.send_bytes(&wire).await;
        for id in ids {
            let granted = vec![ReasonCode::GRANTED_QOS_1, ReasonCode::GRANTED_QOS_0];
            assert_eq!(
                client.recv().await,
                Packet::SubAck(SubAck::new(pid(id), granted)),
                "{version}"
            );
        }
        for id in ids {
            let codes = if version.is_v5() {
                vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
            } else {
                Vec::new()
            };
            assert_eq!(
                client.recv().await,
                Packet::UnsubAck(UnsubAck::new(pid(id), codes)),
                "{version}"
            );
        }
        client.ping().await;
    }
}

// ---------------------------------------------------------------------------------------------
// 3.1.1 receivers close the connection on malformed input

/// Sends each wire from a fresh 3.1.1 client and checks that the broker closes the connection
/// without answering, and that a subscriber to everything saw nothing.
async fn assert_v311_closes(cases: &[(&str, Vec<u8>)]) {
    let broker = TestBroker::start().await;
    let mut everything = broker.client(V311, "everything").await;
    everything.subscribe("#", QoS::AtMostOnce).await;
    for (case, wire) in cases {
        let mut client = broker.client(V311, "hostile").await;
        client.send_bytes(wire).await;
        assert_eq!(client.expect_closed().await, Vec::new(), "{case}");
    }
    everything.ping().await;
    everything.expect_nothing(QUIET).await;
}

/// A 3.1.1 packet: `first`, a one-byte remaining length, `body`.
fn v311_packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut wire = vec![first, u8::try_from(body.len()).expect("short test packet")];
    wire.extend_from_slice(body);
    wire
}

#[tokio::test]
async fn mqtt311_1_5_3_1_ill_formed_utf8_closes_the_connection() {
    let mut cases = Vec::new();
    for (name, bad) in [
        ("invalid byte", &[b'a', 0xFF][..]),
        ("encoded surrogate U+D800", &[0xED, 0xA0, 0x80][..]),
        ("overlong '/'", &[0xC0, 0xAF][..]),
    ] {
        let string = [&[0x00, bad.len() as u8][..], bad].concat();
        cases.push((name, v311_packet(0x30, &[&string[..], b"x"].concat())));
        let subscribe = [&[0x00, 0x01][..], &string, &[0x00]].concat();
        cases.push((name, v311_packet(0x82, &subscribe)));
        let unsubscribe = [&[0x00, 0x01][..], &string].concat();
        cases.push((name, v311_packet(0xA2, &unsubscribe)));
    }
    assert_v311_closes(&cases).await;
}

#[tokio::test]
async fn mqtt311_1_5_3_2_encoded_u0000_closes_the_connection() {
    let string = [0x00, 0x03, b'a', 0x00, b'b'];
    assert_v311_closes(&[
        ("PUBLISH", v311_packet(0x30, &[&string[..], b"x"].concat())),
        (
            "SUBSCRIBE",
            v311_packet(0x82, &[&[0x00, 0x01][..], &string, &[0x00]].concat()),
        ),
        (
            "UNSUBSCRIBE",
            v311_packet(0xA2, &[&[0x00, 0x01][..], &string].concat()),
        ),
    ])
    .await;
}

#[tokio::test]
async fn mqtt311_2_2_2_2_invalid_fixed_header_flags_close_the_connection() {
    // covers: [v311:MQTT-2.2.2-1]
    let id = [0x00, 0x01];
    let filter = [0x00, 0x01, 0x00, 0x01, b'a', 0x00];
    assert_v311_closes(&[
        ("PUBACK 0001", v311_packet(0x41, &id)),
        ("PUBREC 1000", v311_packet(0x58, &id)),
        ("PUBREL 0000", v311_packet(0x60, &id)),
        ("PUBREL 0011", v311_packet(0x63, &id)),
        ("PUBCOMP 0010", v311_packet(0x72, &id)),
        ("SUBSCRIBE 0000", v311_packet(0x80, &filter)),
        ("UNSUBSCRIBE 0011", v311_packet(0xA3, &filter[..5])),
        ("PINGREQ 0100", v311_packet(0xC4, &[])),
        ("DISCONNECT 0001", v311_packet(0xE1, &[])),
    ])
    .await;
}

#[tokio::test]
async fn mqtt311_2_3_1_1_zero_packet_identifier_closes_the_connection() {
    assert_v311_closes(&[
        (
            "PUBLISH QoS 1",
            v311_packet(0x32, &[0x00, 0x01, b't', 0x00, 0x00, b'x']),
        ),
        (
            "PUBLISH QoS 2",
            v311_packet(0x34, &[0x00, 0x01, b't', 0x00, 0x00, b'x']),
        ),
        (
            "SUBSCRIBE",
            v311_packet(0x82, &[0x00, 0x00, 0x00, 0x01, b't', 0x00]),
        ),
        (
            "UNSUBSCRIBE",
            v311_packet(0xA2, &[0x00, 0x00, 0x00, 0x01, b't']),
        ),
    ])
    .await;
}

#[tokio::test]
async fn mqtt311_3_3_1_4_publish_with_both_qos_bits_set_closes_the_connection() {
    assert_v311_closes(&[
        (
            "QoS 3",
            v311_packet(0x36, &[0x00, 0x01, b't', 0x00, 0x01, b'x']),
        ),
        (
            "QoS 3 retained",
            v311_packet(0x37, &[0x00, 0x01, b't', 0x00, 0x01, b'x']),
        ),
    ])
    .await;
}

// ---------------------------------------------------------------------------------------------
// Topic names and flags of forwarded messages

#[tokio::test]
async fn mqtt311_1_5_3_3_a_bom_in_a_topic_is_kept() {
    let bom_topic = "\u{FEFF}bom/t";
    assert_eq!(&bom_topic.as_bytes()[..3], [0xEF, 0xBB, 0xBF]);
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut with_bom = broker.client(version, "with").await;
        with_bom.subscribe(bom_topic, QoS::AtMostOnce).await;
        let mut without = broker.client(version, "without").await;
        without.subscribe("bom/t", QoS::AtMostOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        publisher.publish(bom_topic, b"1").await;
        publisher.publish("bom/t", b"2").await;
        // U+FEFF is part of the name: neither stripped nor skipped.
        assert_eq!(with_bom.recv_publish().await, Publish::new(bom_topic, "1"));
        assert_eq!(without.recv_publish().await, Publish::new("bom/t", "2"));
        with_bom.ping().await;
        without.ping().await;
    }
}

#[tokio::test]
async fn mqtt311_3_3_1_2_qos0_deliveries_have_dup_0() {
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        subscriber.subscribe("t", QoS::AtMostOnce).await;
        let mut publisher = broker.client(version, "pub").await;
        for (qos, id) in [(QoS::AtLeastOnce, 1), (QoS::ExactlyOnce, 2)] {
            let mut resent = publish("t", "dup", qos, id);
            resent.dup = true;
            publisher.publish_and_complete(resent).await;
            // Downgraded to QoS 0: DUP 0 (a QoS 0 PUBLISH with DUP 1 would not even decode).
            let got = subscriber.recv_publish().await;
            assert_eq!(
                got,
                delivered("t", "dup", QoS::AtMostOnce, None),
                "{version}"
            );
            assert!(!got.dup);
        }
    }
}

#[tokio::test]
async fn mqtt311_3_3_2_3_delivered_topic_names_match_the_subscription() {
    // covers: [MQTT-3.3.2-3]
    let filters = ["sport/+/score", "news/#", "exact/topic"];
    let topics = [
        ("sport/tennis/score", true),
        ("sport/tennis/player", false),
        ("sport/score", false),
        ("news", true),
        ("news/uk/today", true),
        ("newsy", false),
        ("exact/topic", true),
        ("exact/topic/x", false),
        ("Exact/topic", false),
    ];
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut subscriber = broker.client(version, "sub").await;
        for filter in filters {
            subscriber.subscribe(filter, QoS::AtMostOnce).await;
        }
        let mut publisher = broker.client(version, "pub").await;
        for (topic, _) in topics {
            publisher.send(Publish::new(topic, topic.to_string())).await;
        }
        publisher.ping().await;
        for (topic, _) in topics.iter().filter(|(_, matches)| *matches) {
            let got = subscriber.recv_publish().await;
            assert_eq!(
                got,
                delivered(topic, topic.to_string(), QoS::AtMostOnce, None)
            );
            assert!(
                filters.iter().any(|f| topic_filter(f).matches(&got.topic)),
                "{version}: {} matches none of {filters:?}",
                got.topic
            );
        }
        subscriber.ping().await;
    }
}
