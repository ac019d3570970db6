//! The persistence seam: the broker reports every durable state change (sessions,
//! subscriptions, retained messages) to its `Store`, which a durable store builds on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use linnet_broker::store::Store;
use linnet_broker::Message;
use linnet_proto::{Connect, ProtocolVersion, QoS, SubscriptionOptions, TopicFilter};
use linnet_testkit::{RawClient, TestBroker};

/// Records each call as a line of text.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn push(&self, event: String) {
        self.0.lock().expect("recorder lock").push(event);
    }

    fn events(&self) -> Vec<String> {
        self.0.lock().expect("recorder lock").clone()
    }
}

impl Store for Recorder {
    fn session_started(&self, client_id: &str, expiry_interval: u32) {
        self.push(format!("start {client_id} {expiry_interval}"));
    }
    fn session_ended(&self, client_id: &str) {
        self.push(format!("end {client_id}"));
    }
    fn subscribed(
        &self,
        client_id: &str,
        filter: &TopicFilter,
        options: SubscriptionOptions,
        _identifier: Option<std::num::NonZeroU32>,
    ) {
        self.push(format!("sub {client_id} {filter} {}", options.qos as u8));
    }
    fn unsubscribed(&self, client_id: &str, filter: &TopicFilter) {
        self.push(format!("unsub {client_id} {filter}"));
    }
    fn retained_set(&self, message: &Message) {
        self.push(format!("retain {} {:?}", message.topic, message.payload));
    }
    fn retained_cleared(&self, topic: &str) {
        self.push(format!("clear {topic}"));
    }
}

#[tokio::test]
async fn broker_reports_durable_changes_to_its_store() {
    let recorder = Arc::new(Recorder::default());
    let broker = TestBroker::with_store(|_| {}, recorder.clone()).await;
    let mut connect = Connect::new(ProtocolVersion::V5, "durable");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(30);
    let (mut client, _) = RawClient::connect(broker.tcp, connect).await;
    client.subscribe("a/+", QoS::AtLeastOnce).await;
    client
        .send(linnet_proto::Publish::new("a/b", &b"kept"[..]).with_retain(true))
        .await;
    client
        .send(linnet_proto::Publish::new("a/b", &b""[..]).with_retain(true))
        .await;
    let filter = TopicFilter::new("a/+").expect("filter");
    client
        .send(linnet_proto::Unsubscribe::new(
            linnet_testkit::pid(2),
            vec![filter],
        ))
        .await;
    client.recv_publish().await; // the retained message, live, to its own subscription
    let _unsuback = client.recv().await;
    drop(client);

    let (mut clean, _) =
        RawClient::connect(broker.tcp, Connect::new(ProtocolVersion::V5, "durable")).await;
    clean.send(linnet_proto::Packet::PingReq).await;
    let _ = clean.recv().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        recorder.events(),
        vec![
            "start durable 30".to_string(),
            "sub durable a/+ 1".into(),
            "retain a/b b\"kept\"".into(),
            "clear a/b".into(),
            "unsub durable a/+".into(),
            "end durable".into(),
            "start durable 0".into(),
        ]
    );
}
