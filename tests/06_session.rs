//! Sessions over real sockets: persistent sessions (3.1.1 clean session 0, v5 clean start 0
//! with a Session Expiry Interval), what they keep across a reconnect (subscriptions, queued
//! and in-flight QoS 1/2 messages, incoming QoS 2 state), clean start, session expiry, the
//! offline queue limit and the v5 Receive Maximum window.

use std::time::Duration;

use linnet_proto::{
    Connect, Disconnect, Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode,
};
use linnet_testkit::{connect_ok, persistent, pid, wire_size, RawClient, TestBroker};

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// How long a negative check waits for a packet that must not come.
const QUIET: Duration = Duration::from_millis(200);

/// Lets the broker notice that a connection closed and detach it from its session, so that
/// what is published next is queued rather than written to the dying connection.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Ends `client`'s connection with DISCONNECT (normal) and waits until the broker let go.
async fn disconnect(mut client: RawClient) {
    client.hang_up().await;
    settle().await;
}

/// Closes `client`'s socket without DISCONNECT and waits until the broker let go.
async fn drop_connection(client: RawClient) {
    drop(client);
    settle().await;
}

/// A v5 DISCONNECT (normal) that sets the Session Expiry Interval to `seconds`.
fn disconnect_with_expiry(seconds: u32) -> Disconnect {
    let mut disconnect = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    disconnect.properties.session_expiry_interval = Some(seconds);
    disconnect
}

/// Publishes at QoS 1 or 2 with packet id `id` and completes the handshake.
async fn publish_acked(client: &mut RawClient, topic: &str, payload: &str, qos: QoS, id: u16) {
    assert_ne!(qos, QoS::AtMostOnce, "QoS 0 needs no handshake");
    client
        .publish_and_complete(
            Publish::new(topic, payload.as_bytes().to_vec()).with_qos(qos, Some(pid(id))),
        )
        .await;
}

/// Publishes at QoS 0 and waits until the broker has handled it (PINGREQ round trip).
async fn publish_qos0(client: &mut RawClient, topic: &str, payload: &'static [u8]) {
    client.publish(topic, payload).await;
    client.ping().await;
}

/// Acknowledges a PUBLISH received from the broker (PUBACK, or PUBREC / PUBREL / PUBCOMP).
async fn ack(client: &mut RawClient, publish: &Publish) {
    let id = publish.packet_id.expect("QoS 1/2 PUBLISH has a packet id");
    match publish.qos {
        QoS::AtLeastOnce => client.send(Packet::PubAck(PubResponse::new(id))).await,
        QoS::ExactlyOnce => {
            client.send(Packet::PubRec(PubResponse::new(id))).await;
            assert_eq!(client.recv().await, Packet::PubRel(PubResponse::new(id)));
            client.send(Packet::PubComp(PubResponse::new(id))).await;
        }
        QoS::AtMostOnce => panic!("QoS 0 PUBLISH is not acknowledged"),
    }
}

/// The PUBLISH expected from the broker: `payload` on `topic` at `qos`, with `packet_id`.
fn expected(topic: &str, payload: &str, qos: QoS, packet_id: Option<u16>) -> Publish {
    Publish::new(topic, payload.as_bytes().to_vec()).with_qos(qos, packet_id.map(pid))
}

#[tokio::test]
async fn mqtt_3_1_2_6_clean_start_0_without_a_session_creates_one() {
    // covers: [v311:MQTT-3.1.2-4] [v311:MQTT-3.2.2-3]
    let broker = TestBroker::start().await;
    for version in [V311, V5] {
        let id = format!("new-{version}");
        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(!connack.session_present, "{version}");
        client.subscribe("s/new", QoS::AtLeastOnce).await;
        disconnect(client).await;
        let (_client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(
            connack.session_present,
            "{version}: the session was created and kept"
        );
    }
}

#[tokio::test]
async fn mqtt_3_2_2_3_resumed_session_keeps_subscriptions_and_reports_session_present() {
    // covers: [MQTT-3.1.2-5] [v311:MQTT-3.1.2-4] [v311:MQTT-3.2.2-2]
    // covers: [v311:MQTT-4.1.0-1]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    for version in [V311, V5] {
        let id = format!("sub-{version}");
        let topic = format!("s/{version}");
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.subscribe(&topic, QoS::AtMostOnce).await;
        disconnect(client).await;
        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present, "{version}");
        // No SUBSCRIBE on this connection: the old subscription delivers.
        publish_qos0(&mut publisher, &topic, b"live").await;
        assert_eq!(client.recv_publish().await, Publish::new(topic, "live"));
    }
}

// The session is kept while disconnected and QoS 1/2 messages are queued for it.
#[tokio::test]
async fn mqtt_3_1_2_23_qos1_and_qos2_messages_published_while_offline_arrive_in_order() {
    // covers: [v311:MQTT-3.1.2-5] [v311:MQTT-4.1.0-1]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    for version in [V311, V5] {
        let id = format!("off-{version}");
        let topic = format!("o/{version}");
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.subscribe(&topic, QoS::ExactlyOnce).await;
        disconnect(client).await;
        let sent = [
            ("1", QoS::AtLeastOnce),
            ("2", QoS::ExactlyOnce),
            ("3", QoS::AtLeastOnce),
            ("4", QoS::ExactlyOnce),
        ];
        for (index, (payload, qos)) in sent.into_iter().enumerate() {
            publish_acked(&mut publisher, &topic, payload, qos, index as u16 + 1).await;
        }
        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present);
        let mut ids = Vec::new();
        for (payload, qos) in sent {
            let got = client.recv_publish().await;
            let packet_id = got.packet_id.map(|id| id.get());
            assert_eq!(got, expected(&topic, payload, qos, packet_id), "{version}");
            ids.push(packet_id);
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), sent.len(), "distinct packet ids");
        client.expect_nothing(QUIET).await;
    }
}

// The broker does not keep QoS 0 messages for an offline client (the spec allows either).
#[tokio::test]
async fn qos0_messages_published_while_offline_are_not_queued() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "offline")).await;
    client.subscribe("o/t", QoS::ExactlyOnce).await;
    disconnect(client).await;
    publish_qos0(&mut publisher, "o/t", b"zero").await;
    publish_acked(&mut publisher, "o/t", "one", QoS::AtLeastOnce, 1).await;
    let (mut client, connack) = connect_ok(&broker, persistent(V5, "offline")).await;
    assert!(connack.session_present);
    let got = client.recv_publish().await;
    assert_eq!(
        got,
        expected(
            "o/t",
            "one",
            QoS::AtLeastOnce,
            got.packet_id.map(|id| id.get())
        )
    );
    client.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_4_4_0_1_unacknowledged_qos1_publish_is_resent_with_dup_and_the_same_id() {
    // covers: [v311:MQTT-4.4.0-1] [MQTT-3.3.1-1] [v311:MQTT-3.3.1-1]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    for version in [V311, V5] {
        let id = format!("unacked-{version}");
        let topic = format!("u/{version}");
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.subscribe(&topic, QoS::AtLeastOnce).await;
        publish_acked(&mut publisher, &topic, "m", QoS::AtLeastOnce, 1).await;
        let first = client.recv_publish().await;
        let packet_id = first.packet_id.map(|id| id.get());
        assert_eq!(first, expected(&topic, "m", QoS::AtLeastOnce, packet_id));
        // No PUBACK: the socket just closes.
        drop_connection(client).await;

        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present);
        let again = client.recv_publish().await;
        let dup = Publish {
            dup: true,
            ..first.clone()
        };
        assert_eq!(again, dup, "{version}");
        client.expect_nothing(QUIET).await;
        ack(&mut client, &again).await;
        disconnect(client).await;

        // Acknowledged now: the next resumption re-sends nothing.
        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present);
        client.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt_4_4_0_1_qos2_publish_without_pubrec_is_resent_with_dup_and_the_same_id() {
    // covers: [MQTT-4.3.3-3]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "unrec")).await;
    client.subscribe("u/t", QoS::ExactlyOnce).await;
    publish_acked(&mut publisher, "u/t", "m", QoS::ExactlyOnce, 1).await;
    let first = client.recv_publish().await;
    assert_eq!(
        first,
        expected(
            "u/t",
            "m",
            QoS::ExactlyOnce,
            first.packet_id.map(|id| id.get())
        )
    );
    drop_connection(client).await;

    let (mut client, connack) = connect_ok(&broker, persistent(V5, "unrec")).await;
    assert!(connack.session_present);
    let again = client.recv_publish().await;
    assert_eq!(again, Publish { dup: true, ..first });
    ack(&mut client, &again).await;
    client.expect_nothing(QUIET).await;
}

// After PUBREL the PUBLISH itself is never re-sent.
#[tokio::test]
async fn mqtt_4_4_0_1_qos2_message_at_the_pubrec_stage_gets_pubrel_resent() {
    // covers: [v311:MQTT-4.4.0-1] [MQTT-4.3.3-6] [MQTT-4.3.3-5]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    for version in [V311, V5] {
        let id = format!("rel-{version}");
        let topic = format!("r/{version}");
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.subscribe(&topic, QoS::ExactlyOnce).await;
        publish_acked(&mut publisher, &topic, "m", QoS::ExactlyOnce, 1).await;
        let publish = client.recv_publish().await;
        let packet_id = publish.packet_id.expect("QoS 2 has a packet id");
        client
            .send(Packet::PubRec(PubResponse::new(packet_id)))
            .await;
        assert_eq!(
            client.recv().await,
            Packet::PubRel(PubResponse::new(packet_id))
        );
        // No PUBCOMP: the socket just closes.
        drop_connection(client).await;

        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present);
        assert_eq!(
            client.recv().await,
            Packet::PubRel(PubResponse::new(packet_id)),
            "{version}"
        );
        client.expect_nothing(QUIET).await;
        client
            .send(Packet::PubComp(PubResponse::new(packet_id)))
            .await;
        disconnect(client).await;

        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present);
        client.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn resent_in_flight_messages_come_before_messages_queued_while_offline() {
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "order")).await;
    client.subscribe("ord/t", QoS::AtLeastOnce).await;
    publish_acked(&mut publisher, "ord/t", "first", QoS::AtLeastOnce, 1).await;
    let first = client.recv_publish().await;
    drop_connection(client).await;
    publish_acked(&mut publisher, "ord/t", "second", QoS::AtLeastOnce, 2).await;

    let (mut client, connack) = connect_ok(&broker, persistent(V5, "order")).await;
    assert!(connack.session_present);
    assert_eq!(
        client.recv_publish().await,
        Publish {
            dup: true,
            ..first.clone()
        }
    );
    let second = client.recv_publish().await;
    let second_id = second.packet_id.expect("QoS 1 has a packet id");
    assert_ne!(Some(second_id), first.packet_id);
    assert_eq!(
        second,
        expected("ord/t", "second", QoS::AtLeastOnce, Some(second_id.get()))
    );
}

#[tokio::test]
async fn mqtt_3_1_2_4_clean_start_discards_the_session() {
    // covers: [MQTT-3.2.2-2] [v311:MQTT-3.1.2-6] [v311:MQTT-3.2.2-1]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    for version in [V311, V5] {
        let id = format!("clean-{version}");
        let topic = format!("c/{version}");
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.subscribe(&topic, QoS::AtLeastOnce).await;
        disconnect(client).await;
        // Queued for the old session.
        publish_acked(&mut publisher, &topic, "old", QoS::AtLeastOnce, 1).await;

        let (mut client, connack) = connect_ok(&broker, Connect::new(version, id.as_str())).await;
        assert!(!connack.session_present, "{version}");
        client.expect_nothing(QUIET).await;
        // The old subscription is gone too.
        publish_qos0(&mut publisher, &topic, b"new").await;
        client.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn v311_clean_session_1_session_ends_with_the_connection() {
    // covers: [v311:MQTT-3.1.2-6]
    let broker = TestBroker::start().await;
    let (mut client, _) = connect_ok(&broker, Connect::new(V311, "brief")).await;
    client.subscribe("b/t", QoS::AtLeastOnce).await;
    disconnect(client).await;
    let (mut client, connack) = connect_ok(&broker, persistent(V311, "brief")).await;
    assert!(!connack.session_present);
    let mut publisher = broker.client(V311, "pub").await;
    publish_qos0(&mut publisher, "b/t", b"x").await;
    client.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn v5_session_expiry_0_ends_the_session_at_disconnect() {
    let broker = TestBroker::start().await;
    // Clean start 0 without a Session Expiry Interval: it is 0.
    let mut connect_packet = Connect::new(V5, "zero");
    connect_packet.clean_start = false;
    let (mut client, _) = connect_ok(&broker, connect_packet.clone()).await;
    client.subscribe("z/t", QoS::AtLeastOnce).await;
    disconnect(client).await;
    let (mut client, connack) = connect_ok(&broker, persistent(V5, "zero")).await;
    assert!(!connack.session_present);
    let mut publisher = broker.client(V5, "pub").await;
    publish_qos0(&mut publisher, "z/t", b"x").await;
    client.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_4_1_0_2_session_is_discarded_once_its_expiry_interval_has_passed() {
    let broker = TestBroker::start().await;
    for (id, expiry) in [("short", 1), ("long", 3)] {
        let mut connect_packet = Connect::new(V5, id);
        connect_packet.clean_start = false;
        connect_packet.properties.session_expiry_interval = Some(expiry);
        let (mut client, _) = connect_ok(&broker, connect_packet).await;
        client.subscribe("e/t", QoS::AtLeastOnce).await;
        disconnect(client).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_short, connack) = connect_ok(&broker, persistent(V5, "short")).await;
    assert!(!connack.session_present, "1 s session still there");
    let (_long, connack) = connect_ok(&broker, persistent(V5, "long")).await;
    assert!(connack.session_present, "3 s session already gone");
}

// The interval runs from the latest disconnect, not from an earlier one.
#[tokio::test]

async fn mqtt_3_1_2_23_session_expiry_counts_from_the_latest_disconnect() {
    let broker = TestBroker::start().await;
    let mut connect_packet = Connect::new(V5, "again");
    connect_packet.clean_start = false;
    connect_packet.properties.session_expiry_interval = Some(2);
    let (mut client, _) = connect_ok(&broker, connect_packet.clone()).await;
    client.subscribe("a/t", QoS::AtLeastOnce).await;
    disconnect(client).await;
    // t = 0.1 s: first disconnect done; its timer would end the session at 2.1 s.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let (client, connack) = connect_ok(&broker, connect_packet.clone()).await;
    assert!(connack.session_present);
    disconnect(client).await;
    // t = 1.1 s: second disconnect; the session must last until 3.1 s. Check at 2.6 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_client, connack) = connect_ok(&broker, connect_packet).await;
    assert!(
        connack.session_present,
        "session ended by the first disconnect's timer"
    );
}

// MQTT 5.0 3.14.2.2.2: a DISCONNECT may change the Session Expiry Interval.
#[tokio::test]
async fn v5_disconnect_with_session_expiry_0_ends_a_persistent_session() {
    let broker = TestBroker::start().await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "quit")).await;
    client.subscribe("q/t", QoS::AtLeastOnce).await;
    let disconnect_packet = disconnect_with_expiry(0);
    client.send(disconnect_packet).await;
    assert!(client.expect_closed().await.is_empty());
    settle().await;
    let (_client, connack) = connect_ok(&broker, persistent(V5, "quit")).await;
    assert!(!connack.session_present);
}

// MQTT 5.0 3.14.2.2.2: Session Expiry 0 in CONNECT cannot become non-zero in DISCONNECT.
#[tokio::test]
async fn v5_disconnect_setting_session_expiry_after_connect_had_0_is_a_protocol_error() {
    let broker = TestBroker::start().await;
    let mut connect_packet = Connect::new(V5, "late-expiry");
    connect_packet.clean_start = false;
    let (mut client, _) = connect_ok(&broker, connect_packet).await;
    client.subscribe("l/t", QoS::AtLeastOnce).await;
    let disconnect_packet = disconnect_with_expiry(30);
    client.send(disconnect_packet).await;
    assert_eq!(
        client.expect_closed().await,
        vec![Packet::Disconnect(Disconnect::new(
            ReasonCode::PROTOCOL_ERROR
        ))]
    );
    settle().await;
    // The session kept its expiry of 0 and ended with the connection.
    let (_client, connack) = connect_ok(&broker, persistent(V5, "late-expiry")).await;
    assert!(!connack.session_present);
}

#[tokio::test]
async fn offline_queue_keeps_the_first_max_queued_messages_in_order() {
    let broker = TestBroker::with_config(|c| c.limits.max_queued_messages = 5).await;
    let mut publisher = broker.client(V5, "pub").await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "capped")).await;
    client.subscribe("cap/t", QoS::AtLeastOnce).await;
    disconnect(client).await;
    for n in 1..=8u16 {
        publish_acked(&mut publisher, "cap/t", &n.to_string(), QoS::AtLeastOnce, n).await;
    }
    let (mut client, connack) = connect_ok(&broker, persistent(V5, "capped")).await;
    assert!(connack.session_present);
    for n in 1..=5 {
        let got = client.recv_publish().await;
        let packet_id = got.packet_id.map(|id| id.get());
        assert_eq!(
            got,
            expected("cap/t", &n.to_string(), QoS::AtLeastOnce, packet_id)
        );
        ack(&mut client, &got).await;
    }
    client.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_3_3_4_9_broker_sends_at_most_receive_maximum_unacknowledged_publishes() {
    // The initial send quota is the client's Receive Maximum: two go out at once, not three.
    // covers: [MQTT-4.9.0-2] [MQTT-4.9.0-3] [MQTT-3.3.4-10] [MQTT-4.9.0-1]
    let broker = TestBroker::start().await;
    let mut connect_packet = Connect::new(V5, "narrow");
    connect_packet.properties.receive_maximum = std::num::NonZeroU16::new(2);
    let (mut client, _) = connect_ok(&broker, connect_packet).await;
    client.subscribe("n/t", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    for n in 1..=4u16 {
        publish_acked(&mut publisher, "n/t", &n.to_string(), QoS::AtLeastOnce, n).await;
    }
    let one = client.recv_publish().await;
    let two = client.recv_publish().await;
    assert_eq!((&one.payload[..], &two.payload[..]), (&b"1"[..], &b"2"[..]));
    client.expect_nothing(QUIET).await;
    // A full window does not hold back other packets [MQTT-3.3.4-10].
    client.send(Packet::PingReq).await;
    assert_eq!(client.recv().await, Packet::PingResp);
    ack(&mut client, &one).await;
    let three = client.recv_publish().await;
    assert_eq!(
        three,
        expected(
            "n/t",
            "3",
            QoS::AtLeastOnce,
            three.packet_id.map(|id| id.get())
        )
    );
    client.expect_nothing(QUIET).await;
    ack(&mut client, &two).await;
    let four = client.recv_publish().await;
    assert_eq!(&four.payload[..], b"4");
}

#[tokio::test]
async fn mqtt_4_9_0_2_qos2_message_holds_its_send_quota_until_pubcomp() {
    let broker = TestBroker::start().await;
    let mut connect_packet = Connect::new(V5, "one-at-a-time");
    connect_packet.properties.receive_maximum = std::num::NonZeroU16::new(1);
    let (mut client, _) = connect_ok(&broker, connect_packet).await;
    client.subscribe("one/t", QoS::ExactlyOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    publish_acked(&mut publisher, "one/t", "a", QoS::ExactlyOnce, 1).await;
    publish_acked(&mut publisher, "one/t", "b", QoS::ExactlyOnce, 2).await;
    let first = client.recv_publish().await;
    let id = first.packet_id.expect("QoS 2 has a packet id");
    client.send(Packet::PubRec(PubResponse::new(id))).await;
    assert_eq!(client.recv().await, Packet::PubRel(PubResponse::new(id)));
    client.expect_nothing(QUIET).await;
    client.send(Packet::PubComp(PubResponse::new(id))).await;
    let second = client.recv_publish().await;
    assert_eq!(&second.payload[..], b"b");
}

// The incoming QoS 2 packet id is session state: a re-sent PUBLISH after a reconnect is
// answered with PUBREC and not routed again.
#[tokio::test]
async fn qos2_publish_resent_after_reconnect_is_not_delivered_twice() {
    // covers: [MQTT-4.3.3-10]
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V5, "sub").await;
    subscriber.subscribe("twice/t", QoS::AtMostOnce).await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "sender")).await;
    let publish = Publish::new("twice/t", "once").with_qos(QoS::ExactlyOnce, Some(pid(7)));
    client.send(publish.clone()).await;
    assert_eq!(
        client.recv().await,
        Packet::PubRec(PubResponse::new(pid(7)))
    );
    assert_eq!(
        subscriber.recv_publish().await,
        Publish::new("twice/t", "once")
    );
    drop_connection(client).await;

    let (mut client, connack) = connect_ok(&broker, persistent(V5, "sender")).await;
    assert!(connack.session_present);
    client
        .send(Publish {
            dup: true,
            ..publish
        })
        .await;
    assert_eq!(
        client.recv().await,
        Packet::PubRec(PubResponse::new(pid(7)))
    );
    client.send(Packet::PubRel(PubResponse::new(pid(7)))).await;
    assert_eq!(
        client.recv().await,
        Packet::PubComp(PubResponse::new(pid(7)))
    );
    subscriber.expect_nothing(QUIET).await;
}

// Clean start discards the old session only; the new one is kept for its expiry interval.
#[tokio::test]
async fn mqtt_3_1_2_23_clean_start_session_with_an_expiry_outlives_the_connection() {
    let broker = TestBroker::start().await;
    let mut connect_packet = Connect::new(V5, "fresh");
    connect_packet.properties.session_expiry_interval = Some(60);
    let (mut client, connack) = connect_ok(&broker, connect_packet).await;
    assert!(!connack.session_present);
    client.subscribe("f/t", QoS::AtLeastOnce).await;
    disconnect(client).await;
    let mut publisher = broker.client(V5, "pub").await;
    publish_acked(&mut publisher, "f/t", "kept", QoS::AtLeastOnce, 1).await;
    let (mut client, connack) = connect_ok(&broker, persistent(V5, "fresh")).await;
    assert!(connack.session_present);
    let got = client.recv_publish().await;
    assert_eq!(
        got,
        expected(
            "f/t",
            "kept",
            QoS::AtLeastOnce,
            got.packet_id.map(|id| id.get())
        )
    );
}

#[tokio::test]
async fn mqtt_3_3_2_5_message_that_expires_while_queued_is_not_delivered() {
    // covers: [MQTT-3.3.2-6]
    let broker = TestBroker::start().await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "slow")).await;
    client.subscribe("x/t", QoS::AtLeastOnce).await;
    disconnect(client).await;
    let mut publisher = broker.client(V5, "pub").await;
    for (id, payload, expiry) in [(1, "short", 1), (2, "long", 60)] {
        let mut publish = Publish::new("x/t", payload).with_qos(QoS::AtLeastOnce, Some(pid(id)));
        publish.properties.message_expiry_interval = Some(expiry);
        publisher.send(publish).await;
        assert_eq!(
            publisher.recv().await,
            Packet::PubAck(PubResponse::new(pid(id)))
        );
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (mut client, connack) = connect_ok(&broker, persistent(V5, "slow")).await;
    assert!(connack.session_present);
    let got = client.recv_publish().await;
    let mut wanted = expected(
        "x/t",
        "long",
        QoS::AtLeastOnce,
        got.packet_id.map(|id| id.get()),
    );
    // 60 s less the 1.2 s it was held, rounded up [MQTT-3.3.2-6].
    wanted.properties.message_expiry_interval = Some(59);
    assert_eq!(got, wanted);
    client.expect_nothing(QUIET).await;
}

// Message Expiry applies only until onward delivery starts (MQTT-3.3.2-5); a QoS 2 PUBLISH
// already sent is never expired and is re-sent on resumption (MQTT-4.4.0-1).
#[tokio::test]

async fn mqtt_4_3_3_7_qos2_publish_already_sent_is_resent_after_its_message_expiry() {
    let broker = TestBroker::start().await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "late-rec")).await;
    client.subscribe("lr/t", QoS::ExactlyOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    let mut publish = Publish::new("lr/t", "m").with_qos(QoS::ExactlyOnce, Some(pid(1)));
    publish.properties.message_expiry_interval = Some(1);
    publisher.send(publish).await;
    assert_eq!(
        publisher.recv().await,
        Packet::PubRec(PubResponse::new(pid(1)))
    );
    let first = client.recv_publish().await;
    assert_eq!(first.qos, QoS::ExactlyOnce);
    // No PUBREC: the socket closes, and the message's expiry passes meanwhile.
    drop_connection(client).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let (mut client, connack) = connect_ok(&broker, persistent(V5, "late-rec")).await;
    assert!(connack.session_present);
    let again = client.recv_publish().await;
    assert!(again.dup, "{again:?}");
    assert_eq!(
        (again.packet_id, again.qos, &again.topic, &again.payload),
        (
            first.packet_id,
            QoS::ExactlyOnce,
            &first.topic,
            &first.payload
        )
    );
}

// The window applies to the re-sent messages too: a client that resumes with a smaller
// Receive Maximum gets no more unacknowledged PUBLISH packets than it allows.
#[tokio::test]

async fn mqtt_3_3_4_9_publishes_resent_on_resumption_respect_the_new_receive_maximum() {
    let broker = TestBroker::start().await;
    let (mut client, _) = connect_ok(&broker, persistent(V5, "shrink")).await;
    client.subscribe("sh/t", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    for n in 1..=3u16 {
        publish_acked(&mut publisher, "sh/t", &n.to_string(), QoS::AtLeastOnce, n).await;
    }
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(client.recv_publish().await);
    }
    // None acknowledged; back with Receive Maximum 2.
    drop_connection(client).await;
    let mut resume = persistent(V5, "shrink");
    resume.properties.receive_maximum = std::num::NonZeroU16::new(2);
    let (mut client, connack) = connect_ok(&broker, resume).await;
    assert!(connack.session_present);
    let one = client.recv_publish().await;
    let two = client.recv_publish().await;
    assert_eq!(
        one,
        Publish {
            dup: true,
            ..first[0].clone()
        }
    );
    assert_eq!(
        two,
        Publish {
            dup: true,
            ..first[1].clone()
        }
    );
    client.expect_nothing(QUIET).await;
    ack(&mut client, &one).await;
    let three = client.recv_publish().await;
    assert_eq!(
        (&three.payload[..], three.packet_id),
        (&b"3"[..], first[2].packet_id)
    );
}

/// Receives `count` PUBLISH packets from the broker and checks them: QoS `qos`, DUP 0, each
/// with a packet id that no other of them uses.
async fn recv_fresh(client: &mut RawClient, qos: QoS, count: usize) -> Vec<Publish> {
    let mut got: Vec<Publish> = Vec::new();
    for _ in 0..count {
        let publish = client.recv_publish().await;
        assert_eq!((publish.qos, publish.dup), (qos, false), "{publish:?}");
        let id = publish.packet_id.expect("QoS 1/2 PUBLISH has a packet id");
        assert!(
            got.iter().all(|p| p.packet_id != Some(id)),
            "packet id {id} used twice"
        );
        got.push(publish);
    }
    got
}

// Nothing is taken from a session while its connection is open: a v5 session whose expiry
// interval (1 s) passes while the client is still connected, and a 3.1.1 clean session, keep
// their subscriptions, in-flight messages and incoming QoS 2 state.
#[tokio::test]
async fn mqtt_4_1_0_1_session_state_is_kept_while_the_connection_is_open() {
    // covers: [v311:MQTT-4.1.0-2]
    let broker = TestBroker::start().await;
    let mut watcher = broker.client(V5, "watcher").await;
    watcher.subscribe("in/#", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    let mut holders = Vec::new();
    for version in [V311, V5] {
        let mut packet = Connect::new(version, format!("holder-{version}"));
        if version.is_v5() {
            packet.properties.session_expiry_interval = Some(1);
            packet.properties.receive_maximum = std::num::NonZeroU16::new(1);
        }
        let (mut client, _) = connect_ok(&broker, packet).await;
        let topic = format!("keep/{version}");
        client.subscribe(&topic, QoS::AtLeastOnce).await;
        // An incoming QoS 2 message, PUBREC'd but not released yet.
        let incoming =
            Publish::new(format!("in/{version}"), "once").with_qos(QoS::ExactlyOnce, Some(pid(7)));
        client.send(incoming.clone()).await;
        assert_eq!(
            client.recv().await,
            Packet::PubRec(PubResponse::new(pid(7)))
        );
        assert_eq!(
            watcher.recv_publish().await,
            Publish::new(format!("in/{version}"), "once")
        );
        // An outgoing QoS 1 message, not acknowledged yet.
        publish_acked(&mut publisher, &topic, "first", QoS::AtLeastOnce, 1).await;
        let first = client.recv_publish().await;
        assert_eq!(
            first,
            expected(
                &topic,
                "first",
                QoS::AtLeastOnce,
                first.packet_id.map(|i| i.get())
            )
        );
        holders.push((version, client, topic, incoming, first));
    }
    // Longer than the v5 session's expiry interval, with both connections open.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for (version, mut client, topic, incoming, first) in holders {
        // Still waiting for PUBREL: a re-sent PUBLISH is answered, not routed again.
        client
            .send(Publish {
                dup: true,
                ..incoming
            })
            .await;
        assert_eq!(
            client.recv().await,
            Packet::PubRec(PubResponse::new(pid(7))),
            "{version}"
        );
        client.send(Packet::PubRel(PubResponse::new(pid(7)))).await;
        assert_eq!(
            client.recv().await,
            Packet::PubComp(PubResponse::new(pid(7))),
            "{version}"
        );
        // The subscription still delivers; for v5 (Receive Maximum 1) only once the first
        // message, still in flight, is acknowledged.
        publish_acked(&mut publisher, &topic, "second", QoS::AtLeastOnce, 2).await;
        if version.is_v5() {
            client.expect_nothing(QUIET).await;
        }
        ack(&mut client, &first).await;
        let second = client.recv_publish().await;
        assert_eq!(
            second,
            expected(
                &topic,
                "second",
                QoS::AtLeastOnce,
                second.packet_id.map(|i| i.get())
            ),
            "{version}"
        );
        assert_ne!(second.packet_id, first.packet_id);
    }
    watcher.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_4_3_2_3_qos1_messages_stay_unacknowledged_until_their_puback() {
    // covers: [v311:MQTT-4.3.2-1]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    for version in [V311, V5] {
        let id = format!("q1-{version}");
        let topic = format!("q1/{version}");
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.subscribe(&topic, QoS::AtLeastOnce).await;
        for (n, payload) in ["a", "b", "c"].into_iter().enumerate() {
            publish_acked(
                &mut publisher,
                &topic,
                payload,
                QoS::AtLeastOnce,
                n as u16 + 1,
            )
            .await;
        }
        // Three new messages: QoS 1, DUP 0, three different packet ids.
        let sent = recv_fresh(&mut client, QoS::AtLeastOnce, 3).await;
        let payloads: Vec<&[u8]> = sent.iter().map(|p| &p.payload[..]).collect();
        assert_eq!(payloads, [b"a", b"b", b"c"]);
        // Only "b" is acknowledged before the connection breaks.
        ack(&mut client, &sent[1]).await;
        client.send(Packet::PingReq).await;
        assert_eq!(client.recv().await, Packet::PingResp);
        drop_connection(client).await;

        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present);
        for original in [&sent[0], &sent[2]] {
            let again = client.recv_publish().await;
            assert_eq!(
                again,
                Publish {
                    dup: true,
                    ..original.clone()
                },
                "{version}"
            );
            ack(&mut client, &again).await;
        }
        client.expect_nothing(QUIET).await;
        disconnect(client).await;
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt_4_3_3_3_qos2_publish_is_unacknowledged_until_pubrec_and_pubrel_until_pubcomp() {
    // covers: [MQTT-4.3.3-5] [v311:MQTT-4.3.3-1]
    let broker = TestBroker::start().await;
    let mut publisher = broker.client(V5, "pub").await;
    for version in [V311, V5] {
        let id = format!("q2-{version}");
        let topic = format!("q2/{version}");
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.subscribe(&topic, QoS::ExactlyOnce).await;
        publish_acked(&mut publisher, &topic, "a", QoS::ExactlyOnce, 1).await;
        publish_acked(&mut publisher, &topic, "b", QoS::ExactlyOnce, 2).await;
        let sent = recv_fresh(&mut client, QoS::ExactlyOnce, 2).await;
        let (a, b) = (&sent[0], &sent[1]);
        assert_eq!((&a.payload[..], &b.payload[..]), (&b"a"[..], &b"b"[..]));
        let a_id = a.packet_id.expect("id");
        let b_id = b.packet_id.expect("id");
        // "a" gets its PUBREC (and so its PUBREL); "b" gets nothing before the break.
        client.send(Packet::PubRec(PubResponse::new(a_id))).await;
        assert_eq!(client.recv().await, Packet::PubRel(PubResponse::new(a_id)));
        drop_connection(client).await;

        // In the original order: PUBREL for "a" (never its PUBLISH again), PUBLISH for "b".
        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present);
        assert_eq!(
            client.recv().await,
            Packet::PubRel(PubResponse::new(a_id)),
            "{version}"
        );
        assert_eq!(
            client.recv_publish().await,
            Publish {
                dup: true,
                ..b.clone()
            },
            "{version}"
        );
        client.send(Packet::PubComp(PubResponse::new(a_id))).await;
        client.send(Packet::PubRec(PubResponse::new(b_id))).await;
        assert_eq!(client.recv().await, Packet::PubRel(PubResponse::new(b_id)));
        drop_connection(client).await;

        // "a" is complete; "b" still waits for its PUBCOMP.
        let (mut client, connack) = connect_ok(&broker, persistent(version, &id)).await;
        assert!(connack.session_present);
        assert_eq!(
            client.recv().await,
            Packet::PubRel(PubResponse::new(b_id)),
            "{version}"
        );
        client.expect_nothing(QUIET).await;
        client.send(Packet::PubComp(PubResponse::new(b_id))).await;
        disconnect(client).await;
        let (mut client, _) = connect_ok(&broker, persistent(version, &id)).await;
        client.expect_nothing(QUIET).await;
    }
}

#[tokio::test]
async fn mqtt311_4_3_2_2_broker_as_qos1_receiver_acks_with_the_id_then_treats_it_as_new() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V311, "sub").await;
    subscriber.subscribe("r1/t", QoS::AtMostOnce).await;
    let (mut client, _) = connect_ok(&broker, Connect::new(V311, "sender")).await;
    for (payload, dup) in [("first", false), ("second", false), ("third", true)] {
        let mut publish =
            Publish::new("r1/t", payload).with_qos(QoS::AtLeastOnce, Some(pid(0x0A0B)));
        publish.dup = dup;
        client.send(publish).await;
        assert_eq!(
            client.recv().await,
            Packet::PubAck(PubResponse::new(pid(0x0A0B)))
        );
        // Owned and passed on before the next one with the same id arrives.
        assert_eq!(
            subscriber.recv_publish().await,
            Publish::new("r1/t", payload)
        );
    }
    subscriber.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt311_4_3_3_2_broker_as_qos2_receiver() {
    let broker = TestBroker::start().await;
    let mut subscriber = broker.client(V311, "sub").await;
    subscriber.subscribe("r2/t", QoS::AtMostOnce).await;
    let (mut client, _) = connect_ok(&broker, Connect::new(V311, "sender")).await;
    let publish = Publish::new("r2/t", "a").with_qos(QoS::ExactlyOnce, Some(pid(5)));
    client.send(publish.clone()).await;
    assert_eq!(
        client.recv().await,
        Packet::PubRec(PubResponse::new(pid(5)))
    );
    assert_eq!(subscriber.recv_publish().await, Publish::new("r2/t", "a"));
    // Until PUBREL, the same id gets PUBREC again and nothing is passed on twice.
    client
        .send(Publish {
            dup: true,
            ..publish
        })
        .await;
    assert_eq!(
        client.recv().await,
        Packet::PubRec(PubResponse::new(pid(5)))
    );
    client.send(Packet::PubRel(PubResponse::new(pid(5)))).await;
    assert_eq!(
        client.recv().await,
        Packet::PubComp(PubResponse::new(pid(5)))
    );
    subscriber.send(Packet::PingReq).await;
    assert_eq!(subscriber.recv().await, Packet::PingResp);
    // After PUBCOMP the same id is a new message.
    client
        .send(Publish::new("r2/t", "b").with_qos(QoS::ExactlyOnce, Some(pid(5))))
        .await;
    assert_eq!(
        client.recv().await,
        Packet::PubRec(PubResponse::new(pid(5)))
    );
    client.send(Packet::PubRel(PubResponse::new(pid(5)))).await;
    assert_eq!(
        client.recv().await,
        Packet::PubComp(PubResponse::new(pid(5)))
    );
    assert_eq!(subscriber.recv_publish().await, Publish::new("r2/t", "b"));
    subscriber.expect_nothing(QUIET).await;
}

// The broker, as the receiver of a QoS 2 message, lets the message expire (it never reaches
// the offline subscriber) and still completes PUBREC / PUBREL / PUBCOMP normally.
#[tokio::test]
async fn mqtt_4_3_3_13_qos2_handshake_completes_after_the_message_expired() {
    let broker = TestBroker::start().await;
    let (mut late, _) = connect_ok(&broker, persistent(V5, "late")).await;
    late.subscribe("exp/t", QoS::AtLeastOnce).await;
    disconnect(late).await;
    let mut client = broker.client(V5, "sender").await;
    let mut publish = Publish::new("exp/t", "brief").with_qos(QoS::ExactlyOnce, Some(pid(3)));
    publish.properties.message_expiry_interval = Some(1);
    client.send(publish).await;
    assert_eq!(
        client.recv().await,
        Packet::PubRec(PubResponse::new(pid(3)))
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.send(Packet::PubRel(PubResponse::new(pid(3)))).await;
    assert_eq!(
        client.recv().await,
        Packet::PubComp(PubResponse::new(pid(3)))
    );
    let (mut late, connack) = connect_ok(&broker, persistent(V5, "late")).await;
    assert!(connack.session_present);
    late.expect_nothing(QUIET).await;
}

#[tokio::test]
async fn mqtt_4_5_0_1_an_accepted_message_goes_into_every_matching_session() {
    // covers: [v311:MQTT-4.5.0-1]
    for version in [V311, V5] {
        let broker = TestBroker::start().await;
        let mut online = broker.client(version, "online").await;
        online.subscribe("own/+", QoS::AtLeastOnce).await;
        let mut unrelated = broker.client(version, "unrelated").await;
        unrelated.subscribe("other/#", QoS::AtLeastOnce).await;
        let (mut offline, _) = connect_ok(&broker, persistent(version, "offline")).await;
        offline.subscribe("own/#", QoS::ExactlyOnce).await;
        disconnect(offline).await;

        let mut publisher = broker.client(version, "pub").await;
        publish_acked(&mut publisher, "own/x", "m", QoS::AtLeastOnce, 1).await;
        let got = online.recv_publish().await;
        assert_eq!(
            got,
            expected(
                "own/x",
                "m",
                QoS::AtLeastOnce,
                got.packet_id.map(|i| i.get())
            ),
            "{version}"
        );
        let (mut offline, connack) = connect_ok(&broker, persistent(version, "offline")).await;
        assert!(connack.session_present);
        let got = offline.recv_publish().await;
        assert_eq!(
            got,
            expected(
                "own/x",
                "m",
                QoS::AtLeastOnce,
                got.packet_id.map(|i| i.get())
            ),
            "{version}"
        );
        unrelated.expect_nothing(QUIET).await;
    }
}

/// A v5 client whose Maximum Packet Size leaves the broker no room to spare: the size of the
/// broker's own CONNACK, the largest packet the broker must be able to send it.
async fn tight_client(
    broker: &TestBroker,
    client_id: &str,
    mut connect: Connect,
) -> (RawClient, usize) {
    let (_probe, connack) = RawClient::connect(broker.tcp, Connect::new(V5, "probe")).await;
    let max = wire_size(&Packet::ConnAck(connack));
    connect.client_id = client_id.into();
    connect.properties.maximum_packet_size =
        std::num::NonZeroU32::new(u32::try_from(max).expect("small"));
    let (client, connack) = RawClient::connect(broker.tcp, connect).await;
    assert_eq!(connack.reason_code, ReasonCode::SUCCESS);
    (client, max)
}

// Linnet never adds a Reason String or User Property to PUBACK, PUBREC, PUBREL or PUBCOMP.
// Sent to a client whose Maximum Packet Size leaves next to no room, each of them, with a
// failure reason too, arrives whole, within the limit and without either property.
#[tokio::test]
async fn mqtt_3_4_2_2_publish_acks_fit_a_tight_maximum_packet_size() {
    // covers: [MQTT-3.4.2-3] [MQTT-3.5.2-2] [MQTT-3.5.2-3] [MQTT-3.6.2-2] [MQTT-3.6.2-3]
    // covers: [MQTT-3.7.2-2] [MQTT-3.7.2-3]
    let broker = TestBroker::with_config(|c| c.limits.max_topic_length = 8).await;
    let (mut client, max) = tight_client(&broker, "tight", Connect::new(V5, "")).await;
    let check = |packet: Packet, expected: Packet| {
        assert_eq!(packet, expected);
        assert!(wire_size(&packet) <= max, "{packet:?} exceeds {max}");
    };
    let cases = [
        ("nobody", ReasonCode::NO_MATCHING_SUBSCRIBERS),
        ("$SYS/x", ReasonCode::NOT_AUTHORIZED),
        ("far/too/long", ReasonCode::TOPIC_NAME_INVALID),
    ];
    for (n, (topic, reason)) in cases.into_iter().enumerate() {
        let id = pid(n as u16 + 1);
        client
            .send(Publish::new(topic, "x").with_qos(QoS::AtLeastOnce, Some(id)))
            .await;
        check(
            client.recv().await,
            Packet::PubAck(PubResponse::with_reason(id, reason)),
        );
        let id = pid(n as u16 + 11);
        client
            .send(Publish::new(topic, "x").with_qos(QoS::ExactlyOnce, Some(id)))
            .await;
        check(
            client.recv().await,
            Packet::PubRec(PubResponse::with_reason(id, reason)),
        );
    }
    // PUBREL / PUBCOMP for ids the broker does not know.
    client.send(Packet::PubRel(PubResponse::new(pid(99)))).await;
    check(
        client.recv().await,
        Packet::PubComp(PubResponse::with_reason(
            pid(99),
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        )),
    );
    client.send(Packet::PubRec(PubResponse::new(pid(98)))).await;
    check(
        client.recv().await,
        Packet::PubRel(PubResponse::with_reason(
            pid(98),
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND,
        )),
    );
    // And the whole QoS 2 flow with the broker as sender.
    client.subscribe("t", QoS::ExactlyOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    publish_acked(&mut publisher, "t", "x", QoS::ExactlyOnce, 1).await;
    let got = client.recv_publish().await;
    let id = got.packet_id.expect("QoS 2 has an id");
    client.send(Packet::PubRec(PubResponse::new(id))).await;
    check(client.recv().await, Packet::PubRel(PubResponse::new(id)));
    client.send(Packet::PubComp(PubResponse::new(id))).await;
    client.send(Packet::PingReq).await;
    check(client.recv().await, Packet::PingResp);
}

// A DISCONNECT from the server never carries a Session Expiry Interval, not even to a client
// that set one; and to a client without room to spare it arrives whole, within the limit,
// without a Reason String or User Property (Linnet sends neither).
#[tokio::test]
async fn mqtt_3_14_2_2_server_disconnect_has_no_session_expiry_interval() {
    // covers: [MQTT-3.14.2-3] [MQTT-3.14.2-4]
    let broker = TestBroker::start().await;
    let check = |packets: Vec<Packet>, reason: ReasonCode, max: usize| {
        assert_eq!(packets, vec![Packet::Disconnect(Disconnect::new(reason))]);
        assert!(wire_size(&packets[0]) <= max);
    };
    // A protocol error: a second CONNECT.
    let (mut client, max) = tight_client(&broker, "twice", persistent(V5, "")).await;
    client.send(persistent(V5, "twice")).await;
    check(
        client.expect_closed().await,
        ReasonCode::PROTOCOL_ERROR,
        max,
    );
    // Taken over by another connection for the same client id.
    let (mut client, max) = tight_client(&broker, "taken", persistent(V5, "")).await;
    let _new = connect_ok(&broker, persistent(V5, "taken")).await;
    check(
        client.expect_closed().await,
        ReasonCode::SESSION_TAKEN_OVER,
        max,
    );
    // The broker shuts down.
    let (mut client, max) = tight_client(&broker, "last", persistent(V5, "")).await;
    broker.broker.shutdown();
    check(
        client.expect_closed().await,
        ReasonCode::SERVER_SHUTTING_DOWN,
        max,
    );
}
