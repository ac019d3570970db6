//! `$SYS/broker/...` topics with Mosquitto's names, published as retained messages every
//! `sys.interval` seconds (0 turns them off), including the 1, 5 and 15 minute load averages
//! (events per minute, exponentially smoothed, as Mosquitto computes them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use bytestring::ByteString;
use linnet_proto::QoS;

use crate::message::Message;
use crate::Broker;

/// Smoothing windows of the load averages, in minutes.
const WINDOWS: [(u64, &str); 3] = [(1, "1min"), (5, "5min"), (15, "15min")];

/// One counter's load averages.
#[derive(Debug, Clone, Copy, Default)]
struct Load {
    last_total: u64,
    averages: [f64; 3],
}

impl Load {
    /// Folds in the counter's new total after `elapsed`.
    fn update(&mut self, total: u64, elapsed: Duration) {
        let per_minute =
            total.saturating_sub(self.last_total) as f64 * 60.0 / elapsed.as_secs_f64().max(0.001);
        self.last_total = total;
        for (average, (minutes, _)) in self.averages.iter_mut().zip(WINDOWS) {
            let decay = (-elapsed.as_secs_f64() / (60.0 * minutes as f64)).exp();
            *average = per_minute + decay * (*average - per_minute);
        }
    }
}

/// Publishes the `$SYS` tree until the task is aborted.
pub(crate) async fn run(broker: Broker) {
    let interval = broker.config().sys.interval;
    if interval == 0 {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(interval));
    let mut loads = [Load::default(); 6];
    let mut last = Instant::now();
    let mut max_connected = 0;
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let stats = broker.stats();
        let counters: [(&str, &AtomicU64); 6] = [
            ("messages/received", &stats.messages_received),
            ("messages/sent", &stats.messages_sent),
            ("publish/received", &stats.publish_received),
            ("publish/sent", &stats.publish_sent),
            ("bytes/received", &stats.bytes_received),
            ("bytes/sent", &stats.bytes_sent),
        ];
        let mut topics = snapshot(&broker);
        let connected = stats.clients_connected.load(Ordering::Relaxed);
        max_connected = max_connected.max(connected);
        topics.push((
            "$SYS/broker/clients/maximum".into(),
            max_connected.to_string(),
        ));
        for ((name, counter), load) in counters.iter().zip(loads.iter_mut()) {
            load.update(counter.load(Ordering::Relaxed), now.duration_since(last));
            for (average, (_, window)) in load.averages.iter().zip(WINDOWS) {
                topics.push((
                    format!("$SYS/broker/load/{name}/{window}"),
                    format!("{average:.2}"),
                ));
            }
        }
        last = now;
        for (topic, value) in topics {
            broker.publish(Arc::new(Message {
                topic: ByteString::from(topic),
                payload: Bytes::from(value),
                qos: QoS::AtMostOnce,
                retain: true,
                properties: None,
                expires_at: None,
                origin: 0,
            }));
        }
    }
}

/// The current value of every counter-backed `$SYS` topic.
pub(crate) fn snapshot(broker: &Broker) -> Vec<(String, String)> {
    let stats = broker.stats();
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
    let uptime = Instant::now()
        .duration_since(broker.inner.started)
        .as_secs();
    let connected = stats.clients_connected.load(Ordering::Relaxed);
    let sessions = broker.session_count();
    vec![
        (
            "$SYS/broker/version".into(),
            format!("linnet {}", env!("CARGO_PKG_VERSION")),
        ),
        ("$SYS/broker/uptime".into(), format!("{uptime} seconds")),
        (
            "$SYS/broker/clients/connected".into(),
            connected.to_string(),
        ),
        ("$SYS/broker/clients/active".into(), connected.to_string()),
        ("$SYS/broker/clients/total".into(), sessions.to_string()),
        (
            "$SYS/broker/clients/disconnected".into(),
            sessions.saturating_sub(connected).to_string(),
        ),
        (
            "$SYS/broker/clients/inactive".into(),
            sessions.saturating_sub(connected).to_string(),
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
            "$SYS/broker/publish/messages/dropped".into(),
            get(&stats.messages_dropped),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_average_converges_to_the_rate_per_minute() {
        let mut load = Load::default();
        // 10 events per second for 30 minutes in 10 s steps: 600 per minute.
        for step in 1..=180 {
            load.update(step * 100, Duration::from_secs(10));
        }
        assert!(
            (load.averages[0] - 600.0).abs() < 1.0,
            "{:?}",
            load.averages
        );
        assert!(
            (load.averages[1] - 600.0).abs() < 20.0,
            "{:?}",
            load.averages
        );
        assert!(
            load.averages[2] > 400.0 && load.averages[2] < 600.0,
            "{:?}",
            load.averages
        );
    }
}
