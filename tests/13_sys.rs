//! `$SYS/broker/...` topics: published with Mosquitto's names at the configured interval, as
//! retained messages a late subscriber still gets, and counting what happened.

use std::collections::HashMap;
use std::time::Duration;

use linnet_proto::{ProtocolVersion, QoS};
use linnet_testkit::TestBroker;

#[tokio::test]
async fn sys_topics_report_version_clients_messages_and_load() {
    let broker = TestBroker::with_config(|c| c.sys.interval = 1).await;
    let mut publisher = broker.client(ProtocolVersion::V3_1_1, "counter").await;
    for _ in 0..5 {
        publisher.publish("plain/topic", b"x").await;
    }
    // Wait for at least one tick after the publishes, then subscribe late: values are retained.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut watcher = broker.client(ProtocolVersion::V3_1_1, "watcher").await;
    watcher.subscribe("$SYS/#", QoS::AtMostOnce).await;
    let mut values = HashMap::new();
    while let Some(packet) = watcher.try_recv(Duration::from_millis(300)).await {
        if let linnet_proto::Packet::Publish(publish) = packet {
            assert!(publish.retain, "{} is retained", publish.topic);
            let value = String::from_utf8(publish.payload.to_vec()).expect("text");
            values.insert(publish.topic.to_string(), value);
        }
    }
    let get = |topic: &str| {
        values
            .get(topic)
            .cloned()
            .unwrap_or_else(|| panic!("no {topic}"))
    };
    assert!(get("$SYS/broker/version").starts_with("linnet "));
    assert!(get("$SYS/broker/uptime").ends_with(" seconds"));
    assert_eq!(get("$SYS/broker/clients/connected"), "1");
    assert!(
        get("$SYS/broker/messages/received")
            .parse::<u64>()
            .expect("number")
            >= 5
    );
    assert!(
        get("$SYS/broker/load/messages/received/1min")
            .parse::<f64>()
            .expect("number")
            > 0.0
    );
    assert!(values.contains_key("$SYS/broker/load/bytes/sent/15min"));
    assert!(values.contains_key("$SYS/broker/subscriptions/count"));
    assert!(values.contains_key("$SYS/broker/retained messages/count"));
}

#[tokio::test]
async fn sys_topics_are_off_with_interval_0() {
    let broker = TestBroker::start().await;
    let mut watcher = broker.client(ProtocolVersion::V5, "watcher").await;
    watcher.subscribe("$SYS/#", QoS::AtMostOnce).await;
    watcher.expect_nothing(Duration::from_millis(300)).await;
}
