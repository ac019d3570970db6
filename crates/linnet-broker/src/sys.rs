//! `$SYS/broker/...` topics with Mosquitto's names, published as retained messages every
//! `sys.interval` seconds (0 turns them off).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use linnet_proto::QoS;

use crate::message::Message;
use crate::Broker;

/// Publishes the `$SYS` tree until the task is aborted.
pub(crate) async fn run(broker: Broker) {
    let interval = broker.config().sys.interval;
    if interval == 0 {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(interval));
    loop {
        ticker.tick().await;
        for (topic, value) in snapshot(&broker) {
            broker.publish(Arc::new(Message {
                topic: ByteString::from(topic),
                payload: Bytes::from(value),
                qos: QoS::AtMostOnce,
                retain: true,
                properties: Default::default(),
                expires_at: None,
                origin: 0,
            }));
        }
    }
}

/// The current value of every `$SYS` topic.
pub(crate) fn snapshot(broker: &Broker) -> Vec<(String, String)> {
    let stats = broker.stats();
    let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed).to_string();
    let uptime = Instant::now()
        .duration_since(broker.inner.started)
        .as_secs();
    vec![
        (
            "$SYS/broker/version".into(),
            format!("linnet {}", env!("CARGO_PKG_VERSION")),
        ),
        ("$SYS/broker/uptime".into(), format!("{uptime} seconds")),
        (
            "$SYS/broker/clients/connected".into(),
            stats.clients_connected.load(Ordering::Relaxed).to_string(),
        ),
        (
            "$SYS/broker/clients/total".into(),
            broker.session_count().to_string(),
        ),
        (
            "$SYS/broker/messages/received".into(),
            get(&stats.messages_received),
        ),
        (
            "$SYS/broker/messages/sent".into(),
            get(&stats.messages_sent),
        ),
        (
            "$SYS/broker/messages/dropped".into(),
            get(&stats.messages_dropped),
        ),
        (
            "$SYS/broker/publish/messages/received".into(),
            get(&stats.publish_received),
        ),
        (
            "$SYS/broker/publish/messages/sent".into(),
            get(&stats.publish_sent),
        ),
        (
            "$SYS/broker/bytes/received".into(),
            get(&stats.bytes_received),
        ),
        ("$SYS/broker/bytes/sent".into(), get(&stats.bytes_sent)),
        (
            "$SYS/broker/subscriptions/count".into(),
            broker.subscription_count().to_string(),
        ),
        (
            "$SYS/broker/retained messages/count".into(),
            broker.retained_count().to_string(),
        ),
    ]
}
