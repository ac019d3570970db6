//! Shared subscriptions across member departures: messages a member received but never
//! acknowledged go to another member when the departing member's session ends (MQTT 5.0
//! 4.8.2), and a group keeps delivering while it has members.

use std::time::Duration;

use linnet_proto::{Connect, Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode};
use linnet_testkit::{pid, qos1, RawClient, TestBroker};

const V5: ProtocolVersion = ProtocolVersion::V5;

#[tokio::test]
async fn unacknowledged_message_goes_to_another_member_when_a_session_ends() {
    let broker = TestBroker::start().await;
    let mut first = broker.client(V5, "member-1").await;
    first.subscribe("$share/g/jobs", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "producer").await;
    // Only one member yet: it gets the job and never acknowledges it.
    publisher.send(qos1("jobs", b"job-1", 1)).await;
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
    publisher.send(qos1("jobs", b"done", 1)).await;
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
    publisher.send(qos1("jobs", b"mine", 1)).await;
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

fn qos2(topic: &str, id: u16, payload: &'static [u8]) -> Publish {
    Publish::new(topic, payload).with_qos(QoS::ExactlyOnce, Some(pid(id)))
}

/// Publishes at QoS 2 and completes the handshake with the broker.
async fn publish_qos2(publisher: &mut RawClient, id: u16, payload: &'static [u8]) {
    publisher
        .publish_and_complete(qos2("jobs", id, payload))
        .await;
}

/// A v5 CONNECT for `client_id` that keeps its session for `expiry` seconds.
fn member(client_id: &str, expiry: u32) -> Connect {
    let mut connect = Connect::new(V5, client_id);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(expiry);
    connect
}

#[tokio::test]
async fn mqtt_4_8_2_4_shared_qos2_delivery_is_completed_to_the_same_member_on_reconnect() {
    let broker = TestBroker::start().await;
    let (mut chosen, _) = RawClient::connect(broker.tcp, member("chosen", 60)).await;
    chosen.subscribe("$share/g/jobs", QoS::ExactlyOnce).await;
    let mut publisher = broker.client(V5, "producer").await;
    publish_qos2(&mut publisher, 1, b"two").await;
    let first = chosen.recv_publish().await;
    let id = first.packet_id.expect("QoS 2 has an id");
    assert_eq!(
        first,
        Publish::new("jobs", "two").with_qos(QoS::ExactlyOnce, Some(id))
    );

    let mut other = broker.client(V5, "other").await;
    other.subscribe("$share/g/jobs", QoS::ExactlyOnce).await;
    // The connection breaks before PUBREC: on reconnect the same member gets the PUBLISH again.
    drop(chosen);
    other.expect_nothing(Duration::from_millis(200)).await;
    let (mut chosen, connack) = RawClient::connect(broker.tcp, member("chosen", 60)).await;
    assert!(connack.session_present);
    assert_eq!(
        chosen.recv_publish().await,
        Publish {
            dup: true,
            ..first.clone()
        }
    );
    chosen.send(Packet::PubRec(PubResponse::new(id))).await;
    assert_eq!(chosen.recv().await, Packet::PubRel(PubResponse::new(id)));
    // It breaks again before PUBCOMP: the PUBREL is what is completed next time.
    drop(chosen);
    let (mut chosen, connack) = RawClient::connect(broker.tcp, member("chosen", 60)).await;
    assert!(connack.session_present);
    assert_eq!(chosen.recv().await, Packet::PubRel(PubResponse::new(id)));
    chosen.send(Packet::PubComp(PubResponse::new(id))).await;
    chosen.send(Packet::PingReq).await;
    assert_eq!(chosen.recv().await, Packet::PingResp);
    other.expect_nothing(Duration::from_millis(100)).await;
}

/// One member of `$share/g/jobs` with Session Expiry 0 gets a QoS 2 message and, when
/// `pubrec` is set, answers it with PUBREC (and gets PUBREL); then a second member joins and
/// the first one's connection, and with it its session, ends. The second member must not get
/// the message [MQTT-4.8.2-5].
async fn assert_shared_qos2_message_dies_with_its_session(pubrec: bool) {
    let broker = TestBroker::start().await;
    let mut chosen = broker.client(V5, "chosen").await;
    chosen.subscribe("$share/g/jobs", QoS::ExactlyOnce).await;
    let mut publisher = broker.client(V5, "producer").await;
    publish_qos2(&mut publisher, 1, b"two").await;
    let first = chosen.recv_publish().await;
    let id = first.packet_id.expect("QoS 2 has an id");
    assert_eq!(
        first,
        Publish::new("jobs", "two").with_qos(QoS::ExactlyOnce, Some(id))
    );
    if pubrec {
        chosen.send(Packet::PubRec(PubResponse::new(id))).await;
        assert_eq!(chosen.recv().await, Packet::PubRel(PubResponse::new(id)));
    }
    let mut other = broker.client(V5, "other").await;
    other.subscribe("$share/g/jobs", QoS::ExactlyOnce).await;
    drop(chosen);
    other.expect_nothing(Duration::from_millis(300)).await;
}

#[tokio::test]

async fn mqtt_4_8_2_5_unacknowledged_shared_qos2_message_goes_to_no_other_member() {
    assert_shared_qos2_message_dies_with_its_session(false).await;
}

#[tokio::test]
async fn shared_qos2_message_at_the_pubrel_stage_goes_to_no_other_member() {
    // covers: [MQTT-4.8.2-5]
    assert_shared_qos2_message_dies_with_its_session(true).await;
}

#[tokio::test]
async fn mqtt_4_8_2_6_shared_message_refused_by_its_member_goes_to_no_other_member() {
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let broker = TestBroker::start().await;
        let mut refuser = broker.client(V5, "refuser").await;
        refuser.subscribe("$share/g/jobs", qos).await;
        let mut publisher = broker.client(V5, "producer").await;
        if qos == QoS::AtLeastOnce {
            publisher.send(qos1("jobs", b"job", 1)).await;
            assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
        } else {
            publish_qos2(&mut publisher, 1, b"job").await;
        }
        let job = refuser.recv_publish().await;
        let id = job.packet_id.expect("QoS 1/2 has an id");
        let mut other = broker.client(V5, "other").await;
        other.subscribe("$share/g/jobs", qos).await;
        let refusal = PubResponse::with_reason(id, ReasonCode::UNSPECIFIED_ERROR);
        refuser
            .send(if qos == QoS::AtLeastOnce {
                Packet::PubAck(refusal)
            } else {
                Packet::PubRec(refusal)
            })
            .await;
        // The flow ends there: no PUBREL, and the message is discarded, not handed on.
        refuser.send(Packet::PingReq).await;
        assert_eq!(refuser.recv().await, Packet::PingResp, "{qos:?}");
        other.expect_nothing(Duration::from_millis(100)).await;
        // Not when the refusing member's session ends either.
        drop(refuser);
        other.expect_nothing(Duration::from_millis(200)).await;
    }
}
