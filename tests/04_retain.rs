//! Retained messages over real sockets: storing, replacing and deleting them, the RETAIN flag
//! on delivery (new subscription, live, Retain As Published), wildcards, Retain Handling, the
//! QoS of retained delivery, shared subscriptions and Message Expiry.

use std::time::Duration;

use linnet_proto::{
    Disconnect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, SubAck,
    Subscribe, SubscriptionOptions, Unsubscribe,
};
use linnet_testkit::{pid, topic_filter, RawClient, TestBroker};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// How long a negative check waits for a packet that must not come.
const QUIET: Duration = Duration::from_millis(200);

/// A retained QoS 0 PUBLISH.
fn retained(topic: &str, payload: &'static [u8]) -> Publish {
    Publish::new(topic, payload).with_retain(true)
}

/// SUBSCRIBE to one filter with `options`; returns the SUBACK.
async fn subscribe_with(
    client: &mut RawClient,
    filter: &str,
    options: SubscriptionOptions,
) -> SubAck {
    let mut subscribe = Subscribe::new(pid(1), topic_filter(filter), options.qos);
    subscribe.subscriptions[0].options = options;
    client.send_subscribe(subscribe).await
}

fn granted(qos: QoS) -> SubAck {
    SubAck::new(pid(1), vec![ReasonCode(qos as u8)])
}

fn retain_handling(handling: RetainHandling) -> SubscriptionOptions {
    SubscriptionOptions {
        retain_handling: handling,
        ..SubscriptionOptions::qos(QoS::AtMostOnce)
    }
}

#[tokio::test]
async fn mqtt_3_3_1_5_retained_message_is_stored_and_sent_on_subscribe_with_retain_1() {
    // covers: [v311:MQTT-3.3.1-5] [v311:MQTT-3.3.1-6] [v311:MQTT-3.3.1-8]
    let broker = TestBroker::start().await;
    for version in [ProtocolVersion::V3_1, V311, V5] {
        let topic = format!("retain/{version}");
        let mut publisher = broker.client(version, &format!("pub-{version}")).await;
        publisher
            .publish_and_complete(Publish::new(topic.clone(), "kept").with_retain(true))
            .await;
        let mut subscriber = broker.client(version, &format!("sub-{version}")).await;
        assert_eq!(
            subscriber.subscribe(&topic, QoS::AtMostOnce).await,
            granted(QoS::AtMostOnce)
        );
        assert_eq!(
            subscriber.recv_publish().await,
            Publish::new(topic, "kept").with_retain(true),
            "{version}"
        );
        subscriber.expect_nothing(QUIET).await;
    }
}

// A retained QoS 0 message replaces a retained QoS 1 one.
#[tokio::test]
async fn mqtt_3_3_1_5_newer_retained_message_replaces_the_old_one() {
    // covers: [v311:MQTT-3.3.1-7]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "pub").await;
    let first = retained("r/t", b"one").with_qos(QoS::AtLeastOnce, Some(pid(3)));
    publisher.publish_and_complete(first).await;
    publisher
        .publish_and_complete(retained("r/t", b"two"))
        .await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("r/t", QoS::AtLeastOnce).await;
    assert_eq!(subscriber.recv_publish().await, retained("r/t", b"two"));
    subscriber.expect_nothing(QUIET).await;
}

// The empty retained message is delivered to current subscribers as a normal message and
// clears the retained one.
#[tokio::test]
async fn mqtt_3_3_1_6_empty_retained_payload_deletes_the_retained_message() {
    // covers: [v311:MQTT-3.3.1-10]
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let topic = format!("del/{version}");
        let mut publisher = broker.client(version, &format!("pub-{version}")).await;
        let mut current = broker.client(version, &format!("current-{version}")).await;
        current.subscribe(&topic, QoS::AtMostOnce).await;
        publisher
            .publish_and_complete(Publish::new(topic.clone(), "x").with_retain(true))
            .await;
        assert_eq!(
            current.recv_publish().await,
            Publish::new(topic.clone(), "x")
        );
        publisher
            .publish_and_complete(Publish::new(topic.clone(), "").with_retain(true))
            .await;
        assert_eq!(
            current.recv_publish().await,
            Publish::new(topic.clone(), "")
        );

        let mut late = broker.client(version, &format!("late-{version}")).await;
        late.subscribe(&topic, QoS::AtMostOnce).await;
        late.expect_nothing(QUIET).await;
    }
    assert_eq!(broker.broker.retained_count(), 0);
}

#[tokio::test]
async fn mqtt_3_3_1_7_empty_retained_message_is_not_stored() {
    // covers: [v311:MQTT-3.3.1-11]
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let mut publisher = broker.client(version, &format!("pub-{version}")).await;
        let empty = format!("e/{version}/empty");
        let full = format!("e/{version}/full");
        publisher
            .publish_and_complete(Publish::new(empty, "").with_retain(true))
            .await;
        publisher
            .publish_and_complete(Publish::new(full.clone(), "f").with_retain(true))
            .await;
        let mut subscriber = broker.client(version, &format!("sub-{version}")).await;
        subscriber
            .subscribe(&format!("e/{version}/#"), QoS::AtMostOnce)
            .await;
        // Only the non-empty one: an empty retained message would arrive as an empty PUBLISH.
        assert_eq!(
            subscriber.recv_publish().await,
            Publish::new(full, "f").with_retain(true)
        );
        subscriber.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt_3_3_1_8_non_retained_publish_leaves_the_retained_message_alone() {
    // covers: [v311:MQTT-3.3.1-12]
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let topic = format!("keep/{version}");
        let mut publisher = broker.client(version, &format!("pub-{version}")).await;
        publisher
            .publish_and_complete(Publish::new(topic.clone(), "kept").with_retain(true))
            .await;
        publisher
            .publish_and_complete(Publish::new(topic.clone(), "live"))
            .await;
        // Not even an empty non-retained payload deletes it.
        publisher
            .publish_and_complete(Publish::new(topic.clone(), ""))
            .await;
        let mut subscriber = broker.client(version, &format!("sub-{version}")).await;
        subscriber.subscribe(&topic, QoS::AtMostOnce).await;
        assert_eq!(
            subscriber.recv_publish().await,
            Publish::new(topic, "kept").with_retain(true)
        );
        subscriber.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt_3_3_1_12_live_delivery_clears_retain_without_retain_as_published() {
    // covers: [v311:MQTT-3.3.1-9]
    let broker = TestBroker::start().await;
    let mut v311 = broker.client(V311, "old").await;
    v311.subscribe("live/t", QoS::AtMostOnce).await;
    let mut v5 = broker.client(V5, "new").await;
    subscribe_with(&mut v5, "live/t", SubscriptionOptions::qos(QoS::AtMostOnce)).await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(retained("live/t", b"r"))
        .await;
    assert_eq!(v311.recv_publish().await, Publish::new("live/t", "r"));
    assert_eq!(v5.recv_publish().await, Publish::new("live/t", "r"));
}

#[tokio::test]
async fn mqtt_3_3_1_13_retain_as_published_keeps_retain_on_live_delivery() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "rap").await;
    let options = SubscriptionOptions {
        retain_as_published: true,
        ..SubscriptionOptions::qos(QoS::AtMostOnce)
    };
    subscribe_with(&mut subscriber, "rap/t", options).await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(retained("rap/t", b"r"))
        .await;
    assert_eq!(subscriber.recv_publish().await, retained("rap/t", b"r"));
    publisher
        .publish_and_complete(Publish::new("rap/t", "plain"))
        .await;
    assert_eq!(
        subscriber.recv_publish().await,
        Publish::new("rap/t", "plain")
    );
}

// The latest retained message of each matching topic.
#[tokio::test]
async fn wildcard_subscription_gets_the_retained_message_of_every_matching_topic() {
    // covers: [v311:MQTT-3.3.1-6]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "pub").await;
    for topic in ["w/a", "w/b", "w/b/deeper", "x/a", "w"] {
        publisher
            .publish_and_complete(Publish::new(topic, topic.as_bytes().to_vec()).with_retain(true))
            .await;
    }
    let mut plus = broker.client(V311, "plus").await;
    plus.subscribe("w/+", QoS::AtMostOnce).await;
    let mut got = vec![plus.recv_publish().await, plus.recv_publish().await];
    plus.expect_nothing(QUIET).await;
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(got, vec![retained("w/a", b"w/a"), retained("w/b", b"w/b")]);

    let mut hash = broker.client(V5, "hash").await;
    hash.subscribe("w/#", QoS::AtMostOnce).await;
    let mut topics = Vec::new();
    for _ in 0..4 {
        let publish = hash.recv_publish().await;
        assert!(publish.retain, "{publish:?}");
        assert_eq!(publish.payload, publish.topic.as_bytes());
        topics.push(publish.topic.to_string());
    }
    hash.expect_nothing(QUIET).await;
    topics.sort();
    assert_eq!(topics, ["w", "w/a", "w/b", "w/b/deeper"]);
}

#[tokio::test]
async fn mqtt_4_7_2_1_wildcard_subscription_gets_no_retained_dollar_topics() {
    // covers: [v311:MQTT-4.7.2-1]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(retained("$app/t", b"dollar"))
        .await;
    publisher
        .publish_and_complete(retained("app/t", b"plain"))
        .await;
    for version in [V311, V5] {
        let mut hash = broker.client(version, "hash").await;
        hash.subscribe("#", QoS::AtMostOnce).await;
        assert_eq!(hash.recv_publish().await, retained("app/t", b"plain"));
        hash.expect_nothing(QUIET).await;
        let mut plus = broker.client(version, "plus").await;
        plus.subscribe("+/t", QoS::AtMostOnce).await;
        assert_eq!(plus.recv_publish().await, retained("app/t", b"plain"));
        plus.expect_nothing(QUIET).await;
        let mut dollar = broker.client(version, "dollar").await;
        dollar.subscribe("$app/+", QoS::AtMostOnce).await;
        assert_eq!(
            dollar.recv_publish().await,
            retained("$app/t", b"dollar"),
            "{version}"
        );
    }
}

// The replaced subscription gets the retained messages again.
#[tokio::test]
async fn mqtt_3_8_4_4_resubscribing_with_retain_handling_0_resends_retained() {
    // covers: [v311:MQTT-3.8.4-3]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(retained("again/t", b"r"))
        .await;
    for version in [V311, V5] {
        let mut subscriber = broker.client(version, &format!("sub-{version}")).await;
        for _ in 0..2 {
            subscriber.subscribe("again/t", QoS::AtMostOnce).await;
            assert_eq!(
                subscriber.recv_publish().await,
                retained("again/t", b"r"),
                "{version}"
            );
        }
        subscriber.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt_3_3_1_9_retain_handling_0_sends_retained_on_subscribe() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(retained("rh0/t", b"r"))
        .await;
    let mut subscriber = broker.client(V5, "sub").await;
    let suback = subscribe_with(
        &mut subscriber,
        "rh0/+",
        retain_handling(RetainHandling::SendAtSubscribe),
    )
    .await;
    assert_eq!(suback, granted(QoS::AtMostOnce));
    assert_eq!(subscriber.recv_publish().await, retained("rh0/t", b"r"));
}

#[tokio::test]
async fn mqtt_3_3_1_10_retain_handling_1_sends_retained_only_for_a_new_subscription() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(retained("rh1/t", b"r"))
        .await;
    let mut subscriber = broker.client(V5, "sub").await;
    let options = retain_handling(RetainHandling::SendIfNew);
    subscribe_with(&mut subscriber, "rh1/t", options).await;
    assert_eq!(subscriber.recv_publish().await, retained("rh1/t", b"r"));
    // The same filter again replaces an existing subscription: no retained message.
    assert_eq!(
        subscribe_with(&mut subscriber, "rh1/t", options).await,
        granted(QoS::AtMostOnce)
    );
    subscriber.expect_nothing(QUIET).await;
    // After UNSUBSCRIBE it is new again.
    subscriber
        .send(Unsubscribe::new(pid(2), vec![topic_filter("rh1/t")]))
        .await;
    assert!(matches!(subscriber.recv().await, Packet::UnsubAck(_)));
    subscribe_with(&mut subscriber, "rh1/t", options).await;
    assert_eq!(subscriber.recv_publish().await, retained("rh1/t", b"r"));
}

#[tokio::test]
async fn mqtt_3_3_1_11_retain_handling_2_sends_no_retained_messages() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher
        .publish_and_complete(retained("rh2/t", b"r"))
        .await;
    let mut subscriber = broker.client(V5, "sub").await;
    let suback = subscribe_with(
        &mut subscriber,
        "rh2/#",
        retain_handling(RetainHandling::DoNotSend),
    )
    .await;
    assert_eq!(suback, granted(QoS::AtMostOnce));
    subscriber.expect_nothing(QUIET).await;
    // The subscription itself works.
    publisher
        .publish_and_complete(Publish::new("rh2/t", "live"))
        .await;
    assert_eq!(
        subscriber.recv_publish().await,
        Publish::new("rh2/t", "live")
    );
}

#[tokio::test]
async fn mqtt_3_8_4_8_retained_delivery_qos_is_the_lower_of_stored_and_granted() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "pub").await;
    publisher.publish_and_complete(retained("q/0", b"0")).await;
    publisher
        .publish_and_complete(retained("q/1", b"1").with_qos(QoS::AtLeastOnce, Some(pid(1))))
        .await;
    publisher
        .publish_and_complete(retained("q/2", b"2").with_qos(QoS::ExactlyOnce, Some(pid(2))))
        .await;
    // (topic, granted, expected delivery QoS)
    let cases = [
        ("q/0", QoS::ExactlyOnce, QoS::AtMostOnce),
        ("q/1", QoS::ExactlyOnce, QoS::AtLeastOnce),
        ("q/2", QoS::ExactlyOnce, QoS::ExactlyOnce),
        ("q/2", QoS::AtLeastOnce, QoS::AtLeastOnce),
        ("q/2", QoS::AtMostOnce, QoS::AtMostOnce),
        ("q/1", QoS::AtMostOnce, QoS::AtMostOnce),
    ];
    for (index, (topic, granted_qos, expected)) in cases.into_iter().enumerate() {
        let mut subscriber = broker.client(V5, &format!("sub-{index}")).await;
        assert_eq!(
            subscriber.subscribe(topic, granted_qos).await,
            granted(granted_qos)
        );
        let got = subscriber.recv_publish().await;
        assert_eq!(
            got.qos, expected,
            "{topic} granted {granted_qos:?}: {got:?}"
        );
        assert_eq!(
            got.packet_id.is_some(),
            expected != QoS::AtMostOnce,
            "{got:?}"
        );
        let payload = topic.as_bytes()[2..].to_vec();
        let wanted = Publish::new(topic, payload)
            .with_retain(true)
            .with_qos(expected, got.packet_id);
        assert_eq!(got, wanted);
    }
}

// MQTT 5.0 4.8.2: retained messages are not sent to a shared subscription.
#[tokio::test]
async fn shared_subscription_gets_no_retained_messages() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher.publish_and_complete(retained("sh/t", b"r")).await;
    let mut member = broker.client(V5, "member").await;
    assert_eq!(
        member.subscribe("$share/g/sh/t", QoS::AtMostOnce).await,
        granted(QoS::AtMostOnce)
    );
    member.expect_nothing(QUIET).await;
    // The same client's non-shared subscription does get it.
    member.subscribe("sh/+", QoS::AtMostOnce).await;
    assert_eq!(member.recv_publish().await, retained("sh/t", b"r"));
}

#[tokio::test]
async fn mqtt_3_3_2_5_expired_retained_message_is_not_sent_on_subscribe() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    let mut message = retained("exp/t", b"soon gone");
    message.properties.message_expiry_interval = Some(1);
    publisher.publish_and_complete(message.clone()).await;
    // Before it expires it is sent, with what is left of its lifetime (rounded up).
    let mut early = broker.client(V5, "early").await;
    early.subscribe("exp/t", QoS::AtMostOnce).await;
    assert_eq!(early.recv_publish().await, message);

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut late = broker.client(V5, "late").await;
    late.subscribe("exp/t", QoS::AtMostOnce).await;
    late.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_3_3_2_6_retained_message_expiry_interval_counts_down() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    let mut message = retained("left/t", b"m");
    message.properties.message_expiry_interval = Some(10);
    publisher.publish_and_complete(message.clone()).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("left/t", QoS::AtMostOnce).await;
    // 10 s less the 1.1 s held, rounded up.
    message.properties.message_expiry_interval = Some(9);
    assert_eq!(subscriber.recv_publish().await, message);
}

// Retained messages are not part of the publisher's session.
#[tokio::test]
async fn retained_message_outlives_the_publishers_session() {
    // covers: [v311:MQTT-3.1.2-7]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V311, "pub").await;
    publisher
        .publish_and_complete(retained("gone/t", b"still here"))
        .await;
    publisher.send(Disconnect::default()).await;
    publisher.expect_closed().await;
    let mut subscriber = broker.client(V311, "sub").await;
    subscriber.subscribe("gone/t", QoS::AtMostOnce).await;
    assert_eq!(
        subscriber.recv_publish().await,
        retained("gone/t", b"still here")
    );
}

#[tokio::test]
async fn retained_publish_is_refused_with_0x9a_when_retain_is_unavailable() {
    let broker = TestBroker::with_config(|c| c.mqtt.retain_available = false).await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher.send(retained("no/t", b"r")).await;
    let packets = publisher.expect_closed().await;
    assert_eq!(
        packets,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::RETAIN_NOT_SUPPORTED
        ))]
    );
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("no/t", QoS::AtMostOnce).await;
    subscriber.expect_nothing(QUIET).await;
    assert_eq!(broker.broker.retained_count(), 0);
}
