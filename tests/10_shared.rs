//! Shared subscriptions across member departures: messages a member received but never
//! acknowledged go to another member when the departing member's session ends (MQTT 5.0
//! 4.8.2), and a group keeps delivering while it has members.

use std::time::Duration;

use linnet_proto::{Connect, Packet, ProtocolVersion, PubResponse, Publish, QoS};
use linnet_testkit::{pid, RawClient, TestBroker};

const V5: ProtocolVersion = ProtocolVersion::V5;

fn qos1(topic: &str, id: u16, payload: &'static [u8]) -> Publish {
    Publish::new(topic, payload).with_qos(QoS::AtLeastOnce, Some(pid(id)))
}

#[tokio::test]
async fn unacknowledged_message_goes_to_another_member_when_a_session_ends() {
    let broker = TestBroker::start().await;
    let mut first = broker.client(V5, "member-1").await;
    first.subscribe("$share/g/jobs", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "producer").await;
    // Only one member yet: it gets the job and never acknowledges it.
    publisher.send(qos1("jobs", 1, b"job-1")).await;
    assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
    let job = first.recv_publish().await;
    assert_eq!(&job.payload[..], b"job-1");

    let mut second = broker.client(V5, "member-2").await;
    second.subscribe("$share/g/jobs", QoS::AtLeastOnce).await;
    // The first member leaves; with session expiry 0 its session ends at once.
    drop(first);
    let redelivered = second.recv_publish().await;
    assert_eq!(&redelivered.payload[..], b"job-1");
    assert_eq!(redelivered.qos, QoS::AtLeastOnce);
    let id = redelivered.packet_id.expect("QoS 1 has an id");
    second.send(Packet::PubAck(PubResponse::new(id))).await;
    second.expect_nothing(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn acknowledged_messages_are_not_redelivered_to_other_members() {
    let broker = TestBroker::start().await;
    let mut first = broker.client(V5, "acker").await;
    first.subscribe("$share/g/jobs", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "producer").await;
    publisher.send(qos1("jobs", 1, b"done")).await;
    assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
    let job = first.recv_publish().await;
    first
        .send(Packet::PubAck(PubResponse::new(job.packet_id.expect("id"))))
        .await;
    // A PINGREQ round trip makes sure the PUBACK was handled before the member leaves.
    first.send(Packet::PingReq).await;
    assert_eq!(first.recv().await, Packet::PingResp);

    let mut second = broker.client(V5, "other").await;
    second.subscribe("$share/g/jobs", QoS::AtLeastOnce).await;
    drop(first);
    second.expect_nothing(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn persistent_member_keeps_its_unacknowledged_message_while_its_session_lives() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "sticky");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(60);
    let (mut first, _) = RawClient::connect(broker.tcp, connect.clone()).await;
    first.subscribe("$share/g/jobs", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "producer").await;
    publisher.send(qos1("jobs", 1, b"mine")).await;
    assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
    first.recv_publish().await;

    let mut second = broker.client(V5, "other").await;
    second.subscribe("$share/g/jobs", QoS::AtLeastOnce).await;
    drop(first);
    // The session lives on (expiry 60 s): the message waits for its own client.
    second.expect_nothing(Duration::from_millis(300)).await;
    let (mut back, connack) = RawClient::connect(broker.tcp, connect).await;
    assert!(connack.session_present);
    let resent = back.recv_publish().await;
    assert!(resent.dup);
    assert_eq!(&resent.payload[..], b"mine");
}
