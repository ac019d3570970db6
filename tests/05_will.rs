//! Will messages over real sockets: when the broker publishes them (socket closed, keep alive,
//! protocol error, takeover, DISCONNECT 0x04) and when not (DISCONNECT), Will Retain, Will
//! QoS, v5 Will Delay Interval and its cancellation, and v5 will properties.

use std::time::Duration;

use linnet_proto::{
    Bytes, Connect, Disconnect, DisconnectProperties, Packet, ProtocolVersion, PubResponse,
    Publish, PublishProperties, QoS, ReasonCode, Subscribe, SubscriptionOptions, TopicName, Will,
};
use linnet_testkit::{connect_ok, pid, topic_filter, RawClient, TestBroker};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// How long a negative check waits for a packet that must not come.
const QUIET: Duration = Duration::from_millis(200);

/// A QoS 0, non-retained will on `topic`.
fn will(topic: &str, payload: &'static [u8]) -> Will {
    Will::new(TopicName::new(topic).expect("valid will topic"), payload)
}

/// A CONNECT carrying `will`; for v5, `session_expiry` is the Session Expiry Interval.
fn connect_with_will(
    version: ProtocolVersion,
    client_id: &str,
    will: Will,
    session_expiry: Option<u32>,
) -> Connect {
    let mut connect = Connect::new(version, client_id);
    connect.will = Some(will);
    connect.properties.session_expiry_interval = session_expiry;
    connect
}

/// A client subscribed to `filter` at `qos`.
async fn watcher(broker: &TestBroker, client_id: &str, filter: &str, qos: QoS) -> RawClient {
    let mut client = broker.client(V5, client_id).await;
    client.subscribe(filter, qos).await;
    client
}

/// A will with Will Delay Interval `delay`.
fn delayed_will(topic: &str, payload: &'static [u8], delay: u32) -> Will {
    let mut will = will(topic, payload);
    will.properties.will_delay_interval = Some(delay);
    will
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_is_published_when_the_socket_closes_without_disconnect() {
    // covers: [v311:MQTT-3.1.2-8] [MQTT-3.1.2-7]
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    for version in [ProtocolVersion::V3_1, V311, V5] {
        let topic = format!("will/{version}");
        let last = Will::new(TopicName::new(topic.clone()).unwrap(), "gone");
        let (client, _) = connect_ok(
            &broker,
            connect_with_will(version, &format!("w-{version}"), last, None),
        )
        .await;
        drop(client);
        assert_eq!(watcher.recv_publish().await, Publish::new(topic, "gone"));
    }
    watcher.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_3_14_4_3_v5_disconnect_0x00_discards_the_will() {
    // covers: [MQTT-3.1.2-10]
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (mut client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "polite", will("will/polite", b"x"), None),
    )
    .await;
    client
        .send(Disconnect::new(ReasonCode::NORMAL_DISCONNECTION))
        .await;
    assert!(client.expect_closed().await.is_empty());
    watcher.expect_nothing(QUIET).await;
}

// DISCONNECT removes the will unpublished.
#[tokio::test]
async fn v311_disconnect_discards_the_will() {
    // covers: [v311:MQTT-3.14.4-3] [v311:MQTT-3.1.2-10]
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (mut client, _) = connect_ok(
        &broker,
        connect_with_will(V311, "polite", will("will/polite", b"x"), None),
    )
    .await;
    client.send(Disconnect::default()).await;
    assert!(client.expect_closed().await.is_empty());
    watcher.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn v5_disconnect_with_will_message_0x04_publishes_the_will() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (mut client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "leaver", will("will/leaver", b"bye"), None),
    )
    .await;
    client
        .send(Disconnect::new(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE))
        .await;
    assert!(client.expect_closed().await.is_empty());
    assert_eq!(
        watcher.recv_publish().await,
        Publish::new("will/leaver", "bye")
    );
}

// Keep alive expiry closes the connection as if the network failed: the will goes out.
#[tokio::test]
async fn will_is_published_when_keep_alive_expires() {
    // covers: [MQTT-3.1.2-22] [v311:MQTT-3.1.2-24]
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let mut clients = Vec::new();
    for version in [V311, V5] {
        let topic = format!("will/{version}");
        let last = Will::new(TopicName::new(topic).unwrap(), "timed out");
        let mut connect_packet = connect_with_will(version, &format!("idle-{version}"), last, None);
        connect_packet.keep_alive = 1;
        clients.push(connect_ok(&broker, connect_packet).await.0);
    }
    let started = tokio::time::Instant::now();
    let mut topics = Vec::new();
    for _ in 0..2 {
        let publish = watcher.recv_publish().await;
        assert_eq!(publish.payload, "timed out");
        topics.push(publish.topic.to_string());
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    topics.sort();
    assert_eq!(topics, ["will/3.1.1", "will/5.0"]);
    for mut client in clients {
        client.expect_closed().await;
    }
}

#[tokio::test]
async fn will_is_published_when_the_server_closes_the_connection_for_a_protocol_error() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (mut client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "rude", will("will/rude", b"err"), None),
    )
    .await;
    client.send(Connect::new(V5, "rude")).await;
    assert_eq!(
        client.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::PROTOCOL_ERROR
        ))]
    );
    assert_eq!(
        watcher.recv_publish().await,
        Publish::new("will/rude", "err")
    );
}

#[tokio::test]
async fn mqtt_3_1_2_15_will_retain_publishes_the_will_as_retained() {
    // covers: [v311:MQTT-3.1.2-17]
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let topic = format!("will/kept/{version}");
        let mut current = watcher(
            &broker,
            &format!("current-{version}"),
            &topic,
            QoS::AtMostOnce,
        )
        .await;
        let mut last = Will::new(TopicName::new(topic.clone()).unwrap(), "last words");
        last.retain = true;
        let (client, _) = connect_ok(
            &broker,
            connect_with_will(version, &format!("w-{version}"), last, None),
        )
        .await;
        drop(client);
        // Live delivery without Retain As Published: RETAIN 0 [MQTT-3.3.1-12].
        assert_eq!(
            current.recv_publish().await,
            Publish::new(topic.clone(), "last words")
        );
        let mut late = broker.client(version, &format!("late-{version}")).await;
        late.subscribe(&topic, QoS::AtMostOnce).await;
        assert_eq!(
            late.recv_publish().await,
            Publish::new(topic, "last words").with_retain(true)
        );
    }
}

#[tokio::test]
async fn mqtt_3_1_2_14_will_without_retain_is_published_as_non_retained() {
    // covers: [v311:MQTT-3.1.2-16]
    let broker = TestBroker::start().await;
    let mut current = broker.client(V5, "current").await;
    let mut subscribe = Subscribe::new(pid(1), topic_filter("will/plain/+"), QoS::AtMostOnce);
    subscribe.subscriptions[0].options = SubscriptionOptions {
        retain_as_published: true,
        ..SubscriptionOptions::qos(QoS::AtMostOnce)
    };
    current.send(subscribe).await;
    assert!(matches!(current.recv().await, Packet::SubAck(_)));
    for version in [V311, V5] {
        let topic = format!("will/plain/{version}");
        let last = Will::new(TopicName::new(topic.clone()).unwrap(), "w");
        let (client, _) = connect_ok(
            &broker,
            connect_with_will(version, &format!("plain-{version}"), last, None),
        )
        .await;
        drop(client);
        // Retain As Published shows the will's RETAIN 0.
        assert_eq!(current.recv_publish().await, Publish::new(topic, "w"));
    }
    let mut late = broker.client(V5, "late").await;
    late.subscribe("will/plain/+", QoS::AtMostOnce).await;
    late.expect_nothing(QUIET).await;
}

// The will is delivered like any message: QoS = min(Will QoS, granted QoS).
#[tokio::test]
async fn will_is_delivered_at_the_lower_of_will_qos_and_granted_qos() {
    // covers: [MQTT-3.8.4-8]
    let broker = TestBroker::start().await;
    let mut at_1 = watcher(&broker, "at-1", "will/q", QoS::AtLeastOnce).await;
    let mut at_2 = watcher(&broker, "at-2", "will/q", QoS::ExactlyOnce).await;
    for (index, will_qos) in [QoS::ExactlyOnce, QoS::AtLeastOnce, QoS::AtMostOnce]
        .into_iter()
        .enumerate()
    {
        let mut last = will("will/q", b"q");
        last.qos = will_qos;
        let (client, _) = connect_ok(
            &broker,
            connect_with_will(V5, &format!("w-{index}"), last, None),
        )
        .await;
        drop(client);
        for (watcher, granted) in [(&mut at_1, QoS::AtLeastOnce), (&mut at_2, QoS::ExactlyOnce)] {
            let got = watcher.recv_publish().await;
            let qos = will_qos.min(granted);
            assert_eq!(
                got,
                Publish::new("will/q", "q").with_qos(qos, got.packet_id),
                "will {will_qos:?} granted {granted:?}"
            );
            assert_eq!(got.packet_id.is_some(), qos != QoS::AtMostOnce);
            match (qos, got.packet_id) {
                (QoS::AtLeastOnce, Some(id)) => {
                    watcher.send(Packet::PubAck(PubResponse::new(id))).await;
                }
                (QoS::ExactlyOnce, Some(id)) => {
                    watcher.send(Packet::PubRec(PubResponse::new(id))).await;
                    assert_eq!(watcher.recv().await, Packet::PubRel(PubResponse::new(id)));
                    watcher.send(Packet::PubComp(PubResponse::new(id))).await;
                }
                _ => {}
            }
        }
    }
    at_1.expect_nothing(QUIET).await;
    at_2.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_3_1_2_8_will_delay_interval_delays_the_will() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "late", delayed_will("will/late", b"d", 1), Some(10)),
    )
    .await;
    drop(client);
    let started = tokio::time::Instant::now();
    watcher.expect_nothing(Duration::from_millis(500)).await;
    assert_eq!(watcher.recv_publish().await, Publish::new("will/late", "d"));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "will after {waited:?}"
    );
}

// The will goes out when the delay passes or the session ends, whichever is first.
#[tokio::test]
async fn mqtt_3_1_2_8_will_is_published_when_the_session_ends_before_the_will_delay() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    // Session Expiry 1 s, Will Delay 60 s: the will comes with the end of the session.
    let (client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "short", delayed_will("will/short", b"s", 60), Some(1)),
    )
    .await;
    drop(client);
    let started = tokio::time::Instant::now();
    assert_eq!(
        watcher.recv_publish().await,
        Publish::new("will/short", "s")
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "will after {waited:?}"
    );
    // Session Expiry 0 (absent): the session ends with the connection, so does the delay.
    let (client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "none", delayed_will("will/none", b"n", 60), None),
    )
    .await;
    drop(client);
    let started = tokio::time::Instant::now();
    assert_eq!(watcher.recv_publish().await, Publish::new("will/none", "n"));
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(900), "will after {waited:?}");
}

#[tokio::test]
async fn mqtt_3_1_3_9_reconnecting_before_the_will_delay_cancels_the_will() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "flaky", delayed_will("will/flaky", b"f", 1), Some(10)),
    )
    .await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut resume = Connect::new(V5, "flaky");
    resume.clean_start = false;
    resume.properties.session_expiry_interval = Some(10);
    let (_back, connack) = connect_ok(&broker, resume).await;
    assert!(connack.session_present);
    // Past the will delay: still nothing.
    watcher.expect_nothing(Duration::from_millis(1500)).await;
}

#[tokio::test]

async fn mqtt_3_1_3_9_cancelled_will_stays_cancelled_after_the_next_disconnect() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "flaky", delayed_will("will/flaky", b"f", 1), Some(10)),
    )
    .await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Back within the delay (this cancels the will), without a will this time, then gone
    // again with a normal DISCONNECT, which publishes no will either.
    let mut resume = Connect::new(V5, "flaky");
    resume.clean_start = false;
    resume.properties.session_expiry_interval = Some(10);
    let (mut back, connack) = connect_ok(&broker, resume).await;
    assert!(connack.session_present);
    back.send(Disconnect::default()).await;
    back.expect_closed().await;
    // Past the first connection's will delay: nothing.
    watcher.expect_nothing(Duration::from_millis(1500)).await;
}

// MQTT-3.1.3-10: the will's user properties keep their order; the other will properties are
// forwarded as PUBLISH properties.
#[tokio::test]
async fn mqtt_3_1_3_10_will_properties_are_forwarded_with_user_properties_in_order() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let mut last = will("will/props", b"{}");
    last.properties.user_properties = vec![
        ("b".into(), "1".into()),
        ("a".into(), "2".into()),
        ("b".into(), "3".into()),
    ];
    last.properties.content_type = Some("application/json".into());
    last.properties.payload_format_indicator = Some(true);
    last.properties.response_topic = Some(TopicName::new("reply/here").unwrap());
    last.properties.correlation_data = Some(Bytes::from_static(b"\x01\x02"));
    let (client, _) = connect_ok(&broker, connect_with_will(V5, "props", last, None)).await;
    drop(client);
    let mut expected = Publish::new("will/props", "{}");
    expected.properties = PublishProperties {
        user_properties: vec![
            ("b".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "3".into()),
        ],
        content_type: Some("application/json".into()),
        payload_format_indicator: Some(true),
        response_topic: Some(TopicName::new("reply/here").unwrap()),
        correlation_data: Some(Bytes::from_static(b"\x01\x02")),
        ..PublishProperties::default()
    };
    assert_eq!(watcher.recv_publish().await, expected);
}

// MQTT 5.0 3.1.4: the existing client's will is published as in 3.1.2.5 on takeover.
#[tokio::test]
async fn session_takeover_publishes_the_old_connections_will() {
    // covers: [v311:MQTT-3.1.4-2]
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    for version in [V311, V5] {
        let topic = format!("will/{version}");
        let last = Will::new(TopicName::new(topic.clone()).unwrap(), "taken");
        let id = format!("twin-{version}");
        let (mut first, _) = connect_ok(&broker, connect_with_will(version, &id, last, None)).await;
        let (_second, connack) = connect_ok(&broker, Connect::new(version, id.as_str())).await;
        assert!(!connack.session_present);
        let packets = first.expect_closed().await;
        if version == V5 {
            assert_eq!(
                packets,
                vec![Packet::Disconnect(Disconnect::new(
                    ReasonCode::SESSION_TAKEN_OVER
                ))]
            );
        }
        assert_eq!(watcher.recv_publish().await, Publish::new(topic, "taken"));
    }
}

#[tokio::test]
async fn mqtt_3_1_3_9_takeover_that_resumes_the_session_cancels_a_delayed_will() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (mut first, _) = connect_ok(
        &broker,
        connect_with_will(V5, "twin", delayed_will("will/twin", b"t", 1), Some(10)),
    )
    .await;
    let mut resume = Connect::new(V5, "twin");
    resume.clean_start = false;
    resume.properties.session_expiry_interval = Some(10);
    let (_second, connack) = connect_ok(&broker, resume).await;
    assert!(connack.session_present);
    assert_eq!(
        first.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::SESSION_TAKEN_OVER
        ))]
    );
    watcher.expect_nothing(Duration::from_millis(1500)).await;
}

// A DISCONNECT that keeps the session (Session Expiry > 0) still discards the will.
#[tokio::test]
async fn v5_disconnect_0x00_with_a_kept_session_discards_a_delayed_will() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (mut client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "keeper", delayed_will("will/keeper", b"k", 1), Some(10)),
    )
    .await;
    let disconnect = Disconnect {
        reason_code: ReasonCode::NORMAL_DISCONNECTION,
        properties: DisconnectProperties {
            session_expiry_interval: Some(5),
            ..DisconnectProperties::default()
        },
    };
    client.send(disconnect).await;
    assert!(client.expect_closed().await.is_empty());
    watcher.expect_nothing(Duration::from_millis(1500)).await;
}

// MQTT 5.0 3.1.3.2.4: the will's Message Expiry Interval is its lifetime from when the
// server publishes it, so a Will Delay longer than the expiry does not make it expire.
#[tokio::test]

async fn will_message_expiry_counts_from_when_the_delayed_will_is_published() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let mut last = delayed_will("will/brief", b"b", 1);
    last.properties.message_expiry_interval = Some(1);
    let (client, _) = connect_ok(&broker, connect_with_will(V5, "brief", last, Some(10))).await;
    drop(client);
    let mut expected = Publish::new("will/brief", "b");
    expected.properties.message_expiry_interval = Some(1);
    assert_eq!(watcher.recv_publish().await, expected);
}

#[tokio::test]
async fn mqtt_3_1_2_10_a_published_will_is_removed_from_the_session() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    // v5: a delayed will, published while the session lives on.
    let (client, _) = connect_ok(
        &broker,
        connect_with_will(V5, "once", delayed_will("will/once", b"5", 1), Some(10)),
    )
    .await;
    drop(client);
    assert_eq!(watcher.recv_publish().await, Publish::new("will/once", "5"));
    // 3.1.1: an immediate will, with a session kept (CleanSession 0).
    let mut kept = connect_with_will(V311, "once311", will("will/once311", b"3"), None);
    kept.clean_start = false;
    let (client, _) = connect_ok(&broker, kept).await;
    drop(client);
    assert_eq!(
        watcher.recv_publish().await,
        Publish::new("will/once311", "3")
    );
    // Each session resumed without a will, then lost again: the will is not published twice.
    for (version, id) in [(V5, "once"), (V311, "once311")] {
        let mut resume = Connect::new(version, id);
        resume.clean_start = false;
        if version.is_v5() {
            resume.properties.session_expiry_interval = Some(10);
        }
        let (client, connack) = connect_ok(&broker, resume).await;
        assert!(connack.session_present, "{version}");
        drop(client);
    }
    // Longer than the first will's delay.
    watcher.expect_nothing(Duration::from_millis(1300)).await;
}

#[tokio::test]
async fn mqtt311_3_1_2_12_without_the_will_flag_no_will_is_published() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "#", QoS::AtMostOnce).await;
    // Ended by the socket closing, by a protocol violation (a second CONNECT) and by keep
    // alive expiry: no will is published in any case.
    let (client, _) = connect_ok(&broker, Connect::new(V311, "closed")).await;
    drop(client);
    let (mut violator, _) = connect_ok(&broker, Connect::new(V311, "violator")).await;
    violator.send(Connect::new(V311, "violator")).await;
    assert!(violator.expect_closed().await.is_empty());
    let mut idle = Connect::new(V311, "idle");
    idle.keep_alive = 1;
    let (mut idle, _) = connect_ok(&broker, idle).await;
    assert!(idle.expect_closed().await.is_empty());
    watcher.send(Packet::PingReq).await;
    assert_eq!(watcher.recv().await, Packet::PingResp);
    watcher.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn delayed_will_is_published_at_once_when_a_clean_start_ends_the_session() {
    let broker = TestBroker::start().await;
    let mut watcher = watcher(&broker, "watcher", "will/#", QoS::AtMostOnce).await;
    let (_old, _) = connect_ok(
        &broker,
        connect_with_will(
            V5,
            "replaced",
            delayed_will("will/replaced", b"gone", 60),
            Some(60),
        ),
    )
    .await;
    // The same client id with Clean Start ends the old session, and the session's end
    // publishes the will without waiting for its 60 s delay (MQTT 5.0 3.1.3.2.2).
    let (_new, connack) = connect_ok(&broker, Connect::new(V5, "replaced")).await;
    assert!(!connack.session_present);
    let will = watcher.recv_publish().await;
    assert_eq!(
        (&*will.topic, &will.payload[..]),
        ("will/replaced", &b"gone"[..])
    );
}
