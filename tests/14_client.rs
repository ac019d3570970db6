//! linnet-client against the in-process broker (and against a raw-packet fake server where
//! the server has to misbehave or be watched byte by byte): QoS flows both ways, subscribe
//! codes, v5 properties, topic aliases, WebSocket, Receive Maximum, manual ack, keep alive,
//! the blocking facade and the one-shot helpers.

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use bytes::Bytes;
use linnet_client::{
    blocking, simple, Backoff, Client, ClientError, ConnectOptions, ConnectProperties, Event,
    Messages, OutgoingMessage, ProtocolVersion, PublishProperties, QoS, ReasonCode,
    SubscribeProperties, SubscriptionOptions, Transport,
};
use linnet_proto::{ConnAck, Packet, PubResponse, Publish, SubAck, TopicName};
use linnet_testkit::client_support::{
    connect, fake_pair, fake_server, next_message, within, Peer, LIMIT,
};
use linnet_testkit::TestBroker;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const VERSIONS: [ProtocolVersion; 2] = [V311, V5];
fn opts(broker: &TestBroker, version: ProtocolVersion) -> ConnectOptions {
    ConnectOptions::new("127.0.0.1", broker.tcp.port()).version(version)
}

/// Options for a fake server's port with only the protocol version set.
fn with_version(version: ProtocolVersion) -> impl FnOnce(u16) -> ConnectOptions {
    move |port| ConnectOptions::new("127.0.0.1", port).version(version)
}

async fn expect_no_message(messages: &mut Messages, quiet: Duration) {
    if let Ok(Some(m)) = tokio::time::timeout(quiet, messages.recv()).await {
        panic!("expected no message, got {m:?}");
    }
}

// ----- QoS both ways -----

#[tokio::test]
async fn every_qos_both_ways() {
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let (sub, mut messages) = connect(opts(&broker, version)).await;
        let (publisher, _) = connect(opts(&broker, version)).await;
        for sub_qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let filter = format!("qos/{version:?}/{}", sub_qos as u8);
            let granted = within("subscribe", sub.subscribe(&filter, sub_qos))
                .await
                .expect("granted");
            assert_eq!(granted.0, sub_qos as u8);
            for pub_qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let payload = format!("{sub_qos:?}-{pub_qos:?}");
                let outcome = within(
                    "publish",
                    publisher.publish(&filter, payload.clone(), pub_qos, false),
                )
                .await
                .expect("published");
                assert!(outcome.reason.is_success());
                let m = next_message(&mut messages).await;
                assert_eq!(m.topic, filter);
                assert_eq!(m.payload, payload.as_bytes());
                assert_eq!(
                    m.qos,
                    sub_qos.min(pub_qos),
                    "delivered at min(sub, pub) QoS"
                );
                assert_eq!(m.packet_id.is_some(), m.qos != QoS::AtMostOnce);
            }
        }
        within("disconnect", publisher.disconnect())
            .await
            .expect("ok");
        within("disconnect", sub.disconnect()).await.expect("ok");
        assert!(
            within("end", messages.recv()).await.is_none(),
            "Messages ends after disconnect"
        );
    }
}

#[tokio::test]
async fn subscribe_returns_codes_and_rejections() {
    let broker = TestBroker::start().await;
    let (client, _m) = connect(opts(&broker, V5)).await;
    let codes = within(
        "subscribe_many",
        client.subscribe_many(
            vec![
                ("a/+".into(), SubscriptionOptions::qos(QoS::AtMostOnce)),
                ("b/#".into(), SubscriptionOptions::qos(QoS::AtLeastOnce)),
                ("c".into(), SubscriptionOptions::qos(QoS::ExactlyOnce)),
            ],
            SubscribeProperties::default(),
        ),
    )
    .await
    .expect("suback");
    assert_eq!(codes, vec![ReasonCode(0), ReasonCode(1), ReasonCode(2)]);
    // A bad filter never leaves the client.
    let err = client
        .subscribe("a/#/b", QoS::AtMostOnce)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Invalid { .. }), "{err:?}");
    let codes = within(
        "unsubscribe",
        client.unsubscribe(vec!["a/+".into(), "zzz".into()]),
    )
    .await
    .expect("unsuback");
    assert_eq!(
        codes,
        vec![ReasonCode::SUCCESS, ReasonCode::NO_SUBSCRIPTION_EXISTED]
    );
}

#[tokio::test]
async fn connect_refused_reports_the_code_in_words() {
    // covers: [MQTT-3.1.0-1] [v311:MQTT-3.1.0-1]
    let (listener, addr) = fake_server().await;
    let server = tokio::spawn(async move {
        for (version_expected, code) in [
            (V5, ReasonCode::NOT_AUTHORIZED),
            (V311, ReasonCode::NOT_AUTHORIZED),
        ] {
            let (mut peer, connect) = Peer::accept(&listener).await;
            assert_eq!(connect.protocol, version_expected);
            peer.send(ConnAck::new(false, code)).await;
        }
    });
    let err = Client::connect(ConnectOptions::new("127.0.0.1", addr.port()).version(V5))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "connection refused: not authorized (0x87)");
    let err = Client::connect(ConnectOptions::new("127.0.0.1", addr.port()).version(V311))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "connection refused: not authorized (0x05)");
    assert_eq!(err.reason_code(), Some(5));
    within("server", server).await.expect("server ok");
}

// ----- QoS flows watched packet by packet -----

#[tokio::test]
async fn mqtt_4_3_3_4_client_sends_pubrel_and_completes_on_pubcomp() {
    // covers: [MQTT-4.3.2-2] [MQTT-4.3.3-2] [MQTT-4.3.1-1] [MQTT-2.2.1-3] [MQTT-4.3.3-5]
    let (listener, addr) = fake_server().await;
    let o = ConnectOptions::new("127.0.0.1", addr.port()).version(V5);
    let client_task = tokio::spawn(async move {
        let (client, _m, _) = Client::connect(o).await.expect("connect");
        let q0 = client.publish("t", "zero", QoS::AtMostOnce, false).await;
        let q1 = client.publish("t", "one", QoS::AtLeastOnce, false).await;
        let q2 = client.publish("t", "two", QoS::ExactlyOnce, false).await;
        (q0, q1, q2, client)
    });
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.connack(false, None).await;
    let p0 = peer.expect_publish().await;
    assert_eq!(
        (p0.qos, p0.dup, p0.packet_id),
        (QoS::AtMostOnce, false, None)
    );
    let p1 = peer.expect_publish().await;
    assert_eq!((p1.qos, p1.dup), (QoS::AtLeastOnce, false));
    let id1 = p1.packet_id.expect("id");
    peer.send(Packet::PubAck(PubResponse::new(id1))).await;
    let p2 = peer.expect_publish().await;
    assert_eq!((p2.qos, p2.dup), (QoS::ExactlyOnce, false));
    let id2 = p2.packet_id.expect("id");
    peer.send(Packet::PubRec(PubResponse::new(id2))).await;
    assert_eq!(peer.expect().await, Packet::PubRel(PubResponse::new(id2)));
    peer.send(Packet::PubComp(PubResponse::new(id2))).await;
    let (q0, q1, q2, _client) = within("client", client_task).await.expect("task");
    assert!(
        q0.is_ok() && q1.is_ok() && q2.is_ok(),
        "{q0:?} {q1:?} {q2:?}"
    );
}

#[tokio::test]
async fn mqtt_4_4_0_2_failed_puback_is_a_typed_error_and_not_retransmitted() {
    let (listener, addr) = fake_server().await;
    let o = ConnectOptions::new("127.0.0.1", addr.port())
        .version(V5)
        .reconnect(Some(quick()));
    let client_task = tokio::spawn(async move {
        let (client, _m, _) = Client::connect(o).await.expect("connect");
        let r1 = client.publish("t", "x", QoS::AtLeastOnce, false).await;
        let r2 = client.publish("t", "y", QoS::ExactlyOnce, false).await;
        (r1, r2, client)
    });
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.connack(false, None).await;
    let p = peer.expect_publish().await;
    peer.send(Packet::PubAck(PubResponse::with_reason(
        p.packet_id.expect("id"),
        ReasonCode::NOT_AUTHORIZED,
    )))
    .await;
    let p = peer.expect_publish().await;
    peer.send(Packet::PubRec(PubResponse::with_reason(
        p.packet_id.expect("id"),
        ReasonCode::QUOTA_EXCEEDED,
    )))
    .await;
    let (r1, r2, client) = within("client", client_task).await.expect("task");
    let e1 = r1.unwrap_err();
    assert_eq!(
        e1.to_string(),
        "rejected by the server: not authorized (0x87)"
    );
    assert_eq!(e1.reason_code(), Some(0x87));
    assert_eq!(r2.unwrap_err().reason_code(), Some(0x97));
    // The session resumes on a new connection: the rejected messages are not re-sent (nor a
    // PUBREL for the failed PUBREC). A fresh QoS 0 marker is the first packet after CONNACK.
    drop(peer);
    let (mut peer, connect) = Peer::accept(&listener).await;
    assert!(!connect.clean_start, "v5 reconnects resume the session");
    peer.connack(true, None).await;
    within(
        "marker",
        client.publish("marker", "m", QoS::AtMostOnce, false),
    )
    .await
    .expect("sent");
    match peer.expect().await {
        Packet::Publish(p) => assert_eq!(
            (p.topic.as_ref(), p.dup),
            ("marker", false),
            "no re-sent PUBLISH for the rejected ids"
        ),
        other => panic!("expected the marker PUBLISH, got {other:?}"),
    }
    within("disconnect", client.disconnect()).await.expect("ok");
    match peer.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, ReasonCode::NORMAL_DISCONNECTION),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
    assert_eq!(peer.recv().await, None, "closed after DISCONNECT");
}

#[tokio::test]
async fn mqtt_4_6_0_2_acks_go_out_in_arrival_order_and_qos2_is_delivered_once() {
    // covers: [MQTT-4.6.0-3] [MQTT-4.3.3-10] [MQTT-4.3.3-11] [MQTT-4.5.0-2] [MQTT-4.3.2-4] [MQTT-4.3.3-8]
    // covers: [v311:MQTT-4.6.0-2] [v311:MQTT-4.6.0-3] [v311:MQTT-4.5.0-2] [v311:MQTT-4.3.3-2] [v311:MQTT-4.3.2-2]
    for version in VERSIONS {
        let (_listener, mut peer, _client, mut messages) =
            fake_pair(with_version(version), None).await;
        for id in [5u16, 3, 9] {
            peer.send(Publish::new("t/1", "q1").with_qos(QoS::AtLeastOnce, NonZeroU16::new(id)))
                .await;
        }
        for id in [5u16, 3, 9] {
            assert_eq!(
                peer.expect().await,
                Packet::PubAck(PubResponse::new(pid(id)))
            );
        }
        // QoS 2: PUBREC; a re-sent PUBLISH (DUP) before PUBREL is answered but not delivered again.
        peer.send(Publish::new("t/2", "q2").with_qos(QoS::ExactlyOnce, NonZeroU16::new(7)))
            .await;
        assert_eq!(
            peer.expect().await,
            Packet::PubRec(PubResponse::new(pid(7)))
        );
        let mut again = Publish::new("t/2", "q2").with_qos(QoS::ExactlyOnce, NonZeroU16::new(7));
        again.dup = true;
        peer.send(again).await;
        assert_eq!(
            peer.expect().await,
            Packet::PubRec(PubResponse::new(pid(7)))
        );
        peer.send(Packet::PubRel(PubResponse::new(pid(7)))).await;
        assert_eq!(
            peer.expect().await,
            Packet::PubComp(PubResponse::new(pid(7)))
        );
        // Messages were never read until now: acks flowed anyway.
        let mut got = Vec::new();
        for _ in 0..4 {
            let m = next_message(&mut messages).await;
            got.push((m.topic, m.packet_id));
        }
        assert_eq!(
            got,
            vec![
                ("t/1".into(), Some(5)),
                ("t/1".into(), Some(3)),
                ("t/1".into(), Some(9)),
                ("t/2".into(), Some(7))
            ]
        );
        expect_no_message(&mut messages, Duration::from_millis(100)).await;
    }
}

fn pid(id: u16) -> NonZeroU16 {
    NonZeroU16::new(id).expect("non-zero")
}

// ----- manual ack -----

#[tokio::test]
async fn manual_ack_sends_no_puback_until_ack_and_keeps_order() {
    let (_listener, mut peer, client, mut messages) = fake_pair(
        |port| {
            ConnectOptions::new("127.0.0.1", port)
                .version(V5)
                .manual_ack(true)
        },
        None,
    )
    .await;
    peer.send(Publish::new("a", "1").with_qos(QoS::AtLeastOnce, NonZeroU16::new(1)))
        .await;
    peer.send(Publish::new("a", "2").with_qos(QoS::AtLeastOnce, NonZeroU16::new(2)))
        .await;
    peer.send(Publish::new("a", "3").with_qos(QoS::ExactlyOnce, NonZeroU16::new(3)))
        .await;
    let m1 = next_message(&mut messages).await;
    let m2 = next_message(&mut messages).await;
    let m3 = next_message(&mut messages).await;
    // Nothing acknowledged yet.
    peer.send(Packet::PingResp).await; // harmless, keeps the socket busy
    let quiet = tokio::time::timeout(Duration::from_millis(300), peer.recv()).await;
    assert!(quiet.is_err(), "no ack before Client::ack, got {quiet:?}");
    // Acking the second first sends nothing: acks keep arrival order.
    within("ack", client.ack(&m2)).await.expect("ack");
    let quiet = tokio::time::timeout(Duration::from_millis(300), peer.recv()).await;
    assert!(quiet.is_err(), "ack of #2 waits for #1, got {quiet:?}");
    within("ack", client.ack(&m1)).await.expect("ack");
    assert_eq!(
        peer.expect().await,
        Packet::PubAck(PubResponse::new(pid(1)))
    );
    assert_eq!(
        peer.expect().await,
        Packet::PubAck(PubResponse::new(pid(2)))
    );
    within("ack", client.ack(&m3)).await.expect("ack");
    assert_eq!(
        peer.expect().await,
        Packet::PubRec(PubResponse::new(pid(3)))
    );
}

// ----- Receive Maximum -----

#[tokio::test]
async fn mqtt_3_3_4_7_client_respects_the_server_receive_maximum() {
    // covers: [MQTT-3.3.4-8]
    let props = linnet_proto::ConnAckProperties {
        receive_maximum: NonZeroU16::new(2),
        ..Default::default()
    };
    let (_listener, mut peer, client, _messages) = fake_pair(with_version(V5), Some(props)).await;
    let mut publishes = Vec::new();
    for i in 0..5 {
        let c = client.clone();
        publishes.push(tokio::spawn(async move {
            c.publish("rm", format!("{i}"), QoS::AtLeastOnce, false)
                .await
        }));
        tokio::task::yield_now().await;
    }
    let mut ids = Vec::new();
    for _ in 0..2 {
        let p = peer.expect_publish().await;
        ids.push(p.packet_id.expect("id"));
    }
    // The window is full: a SUBSCRIBE still goes out, a third PUBLISH does not.
    let c = client.clone();
    let sub = tokio::spawn(async move { c.subscribe("x", QoS::AtMostOnce).await });
    let Packet::Subscribe(s) = peer.expect().await else {
        panic!("expected SUBSCRIBE while the window is full")
    };
    peer.send(SubAck::new(s.packet_id, vec![ReasonCode::SUCCESS]))
        .await;
    within("subscribe", sub)
        .await
        .expect("task")
        .expect("granted");
    let quiet = tokio::time::timeout(Duration::from_millis(200), peer.recv()).await;
    assert!(
        quiet.is_err(),
        "no third PUBLISH while 2 are unacknowledged: {quiet:?}"
    );
    // Each PUBACK lets exactly one more through.
    let mut payloads = Vec::new();
    let mut acked = 0;
    while acked < 5 {
        let id = ids.remove(0);
        peer.send(Packet::PubAck(PubResponse::new(id))).await;
        acked += 1;
        if acked <= 3 {
            let p = peer.expect_publish().await;
            payloads.push(p.payload.clone());
            ids.push(p.packet_id.expect("id"));
        }
    }
    assert_eq!(
        payloads,
        vec![Bytes::from("2"), Bytes::from("3"), Bytes::from("4")]
    );
    for p in publishes {
        within("publish", p).await.expect("task").expect("acked");
    }
}

// ----- keep alive -----

#[tokio::test]
async fn mqtt_3_1_2_20_client_pings_when_idle_and_gives_up_after_one_and_a_half_keep_alives() {
    // covers: [v311:MQTT-3.1.2-23]
    let (listener, addr) = fake_server().await;
    let o = ConnectOptions::new("127.0.0.1", addr.port())
        .version(V311)
        .keep_alive(Duration::from_secs(1));
    let connecting = tokio::spawn(Client::connect(o));
    let (mut peer, connect) = Peer::accept(&listener).await;
    assert_eq!(connect.keep_alive, 1);
    peer.connack(false, None).await;
    let (_client, mut messages, _) = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");
    let start = tokio::time::Instant::now();
    assert_eq!(peer.expect().await, Packet::PingReq);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(1600),
        "{waited:?}"
    );
    peer.send(Packet::PingResp).await;
    assert_eq!(peer.expect().await, Packet::PingReq);
    // No PINGRESP now: 1.5 s after the last packet the client drops the connection.
    let silent_since = tokio::time::Instant::now();
    assert_eq!(peer.recv().await, None, "client closes the connection");
    let gap = silent_since.elapsed();
    assert!(
        gap < Duration::from_millis(1200),
        "closed {gap:?} after the second PINGREQ"
    );
    loop {
        match within("event", messages.next_event()).await {
            Some(Event::Disconnected { reason, .. }) => {
                assert_eq!(reason, Some(ReasonCode::KEEP_ALIVE_TIMEOUT));
                break;
            }
            Some(_) => continue,
            None => panic!("no Disconnected event"),
        }
    }
    assert!(
        within("end", messages.next_event()).await.is_none(),
        "task ends without reconnect"
    );
}

#[tokio::test]
async fn mqtt_3_2_2_21_server_keep_alive_replaces_the_client_value() {
    // covers: [MQTT-3.1.2-21]
    let (listener, addr) = fake_server().await;
    let o = ConnectOptions::new("127.0.0.1", addr.port())
        .version(V5)
        .keep_alive(Duration::from_secs(60));
    let connecting = tokio::spawn(Client::connect(o));
    let (mut peer, _) = Peer::accept(&listener).await;
    let props = linnet_proto::ConnAckProperties {
        server_keep_alive: Some(1),
        ..Default::default()
    };
    peer.connack(false, Some(props)).await;
    let _c = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");
    let start = tokio::time::Instant::now();
    assert_eq!(peer.expect().await, Packet::PingReq);
    assert!(start.elapsed() < Duration::from_millis(1600));
}

// ----- peers that break the protocol -----

#[tokio::test]
async fn malformed_packet_from_the_server_ends_with_disconnect_0x81() {
    let (_listener, mut peer, client, mut messages) = fake_pair(with_version(V5), None).await;
    // PUBLISH with QoS 3 is malformed.
    peer.send_bytes(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01])
        .await;
    match peer.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, ReasonCode::MALFORMED_PACKET),
        other => panic!("expected DISCONNECT 0x81, got {other:?}"),
    }
    assert_eq!(peer.recv().await, None);
    let mut saw = None;
    while let Some(ev) = within("event", messages.next_event()).await {
        if let Event::Disconnected { reason, .. } = ev {
            saw = reason;
        }
    }
    assert_eq!(saw, Some(ReasonCode::MALFORMED_PACKET));
    let err = client
        .publish("t", "x", QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Closed), "{err:?}");
}

#[tokio::test]
async fn mqtt_3_3_2_10_incoming_alias_above_our_maximum_is_0x94() {
    let (listener, addr) = fake_server().await;
    let props = ConnectProperties {
        topic_alias_maximum: Some(2),
        ..Default::default()
    };
    let o = ConnectOptions::new("127.0.0.1", addr.port())
        .version(V5)
        .connect_properties(props);
    let connecting = tokio::spawn(Client::connect(o));
    let (mut peer, connect) = Peer::accept(&listener).await;
    assert_eq!(connect.properties.topic_alias_maximum, Some(2));
    peer.connack(false, None).await;
    let (_client, mut messages, _) = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");
    // Aliases 1..=2 are accepted and resolved.
    let mut p = Publish::new("a/b", "1");
    p.properties.topic_alias = NonZeroU16::new(2);
    peer.send(p).await;
    let mut p = Publish::new("", "2");
    p.properties.topic_alias = NonZeroU16::new(2);
    peer.send(p).await;
    let m = next_message(&mut messages).await;
    assert_eq!((m.topic.as_str(), &m.payload[..]), ("a/b", &b"1"[..]));
    let m = next_message(&mut messages).await;
    assert_eq!((m.topic.as_str(), &m.payload[..]), ("a/b", &b"2"[..]));
    assert_eq!(m.properties.topic_alias, NonZeroU16::new(2));
    let mut p = Publish::new("c", "3");
    p.properties.topic_alias = NonZeroU16::new(3);
    peer.send(p).await;
    match peer.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, ReasonCode::TOPIC_ALIAS_INVALID),
        other => panic!("expected DISCONNECT 0x94, got {other:?}"),
    }
}

// ----- topic aliases -----

#[tokio::test]
async fn mqtt_3_2_2_17_outgoing_aliases_are_automatic_and_within_the_server_maximum() {
    // covers: [MQTT-3.3.2-9]
    let props = linnet_proto::ConnAckProperties {
        topic_alias_maximum: Some(2),
        ..Default::default()
    };
    let (_listener, mut peer, client, _m) = fake_pair(with_version(V5), Some(props)).await;
    let mut seen = Vec::new();
    for topic in ["a", "a", "b", "c", "b", "a"] {
        within(
            "publish",
            client.publish(topic, "x", QoS::AtMostOnce, false),
        )
        .await
        .expect("sent");
        let p = peer.expect_publish().await;
        seen.push((
            p.topic.to_string(),
            p.properties.topic_alias.map(NonZeroU16::get),
        ));
    }
    assert_eq!(
        seen,
        vec![
            ("a".into(), Some(1)),
            ("".into(), Some(1)),
            ("b".into(), Some(2)),
            ("c".into(), None),
            ("".into(), Some(2)),
            ("".into(), Some(1)),
        ]
    );
}

#[tokio::test]
async fn mqtt_3_2_2_18_no_aliases_when_the_server_allows_none() {
    let (_listener, mut peer, client, _m) = fake_pair(with_version(V5), None).await;
    for _ in 0..3 {
        within("publish", client.publish("a", "x", QoS::AtMostOnce, false))
            .await
            .expect("sent");
        let p = peer.expect_publish().await;
        assert_eq!((p.topic.as_ref(), p.properties.topic_alias), ("a", None));
    }
    // An alias the application sets is ignored (aliases are automatic), not sent.
    let mut m = OutgoingMessage::new("a", "x");
    m.properties.topic_alias = NonZeroU16::new(1);
    within("publish", client.publish_message(m))
        .await
        .expect("sent");
    let p = peer.expect_publish().await;
    assert_eq!((p.topic.as_ref(), p.properties.topic_alias), ("a", None));
}

#[tokio::test]
async fn topic_aliases_round_trip_through_the_broker() {
    let broker = TestBroker::start().await;
    let props = ConnectProperties {
        topic_alias_maximum: Some(4),
        ..Default::default()
    };
    let (sub, mut messages) = connect(opts(&broker, V5).connect_properties(props)).await;
    within("subscribe", sub.subscribe("alias/#", QoS::AtLeastOnce))
        .await
        .expect("granted");
    let (publisher, _) = connect(opts(&broker, V5)).await;
    let topics = ["alias/a", "alias/b", "alias/a", "alias/a", "alias/b"];
    for (i, t) in topics.iter().enumerate() {
        within(
            "publish",
            publisher.publish(t, format!("{i}"), QoS::AtLeastOnce, false),
        )
        .await
        .expect("acked");
    }
    let mut aliased = 0;
    for (i, t) in topics.iter().enumerate() {
        let m = next_message(&mut messages).await;
        assert_eq!(
            (m.topic.as_str(), m.payload_str().to_string()),
            (*t, format!("{i}"))
        );
        aliased += usize::from(m.properties.topic_alias.is_some());
    }
    assert!(aliased > 0, "the broker used aliases towards the client");
}

// ----- v5 properties -----

#[tokio::test]
async fn v5_properties_round_trip() {
    let broker = TestBroker::start().await;
    let (sub, mut messages) = connect(opts(&broker, V5)).await;
    let codes = within(
        "subscribe",
        sub.subscribe_many(
            vec![("props/#".into(), SubscriptionOptions::qos(QoS::AtLeastOnce))],
            SubscribeProperties {
                subscription_identifier: NonZeroU32::new(42),
                user_properties: vec![("sub".into(), "prop".into())],
            },
        ),
    )
    .await
    .expect("suback");
    assert_eq!(codes, vec![ReasonCode::GRANTED_QOS_1]);
    let (publisher, _) = connect(opts(&broker, V5)).await;
    let properties = PublishProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(3600),
        response_topic: Some(TopicName::new("reply/here").expect("topic")),
        correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
        user_properties: vec![
            ("k".into(), "v1".into()),
            ("k".into(), "v2".into()),
            ("a".into(), "b".into()),
        ],
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    let msg = OutgoingMessage::new("props/x", "body")
        .qos(QoS::AtLeastOnce)
        .properties(properties.clone());
    within("publish", publisher.publish_message(msg))
        .await
        .expect("acked");
    let m = next_message(&mut messages).await;
    let got = &m.properties;
    assert_eq!(got.payload_format_indicator, Some(true));
    assert!(
        matches!(got.message_expiry_interval, Some(s) if (3590..=3600).contains(&s)),
        "{got:?}"
    );
    assert_eq!(got.response_topic, properties.response_topic);
    assert_eq!(got.correlation_data, properties.correlation_data);
    assert_eq!(
        got.user_properties, properties.user_properties,
        "order kept"
    );
    assert_eq!(got.content_type, properties.content_type);
    assert_eq!(
        got.subscription_identifiers,
        vec![NonZeroU32::new(42).expect("id")]
    );
    // A client PUBLISH may not carry a subscription identifier [MQTT-3.3.4-6].
    let mut bad = OutgoingMessage::new("props/x", "b");
    bad.properties.subscription_identifiers = vec![NonZeroU32::new(1).expect("id")];
    assert!(matches!(
        publisher.publish_message(bad).await,
        Err(ClientError::Invalid { .. })
    ));
}

#[tokio::test]
async fn request_response_with_response_topic_and_correlation_data() {
    let broker = TestBroker::start().await;
    let (responder, mut requests) = connect(opts(&broker, V5)).await;
    within(
        "subscribe",
        responder.subscribe("svc/echo", QoS::AtLeastOnce),
    )
    .await
    .expect("ok");
    let serve = tokio::spawn(async move {
        let req = next_message(&mut requests).await;
        let mut reply = OutgoingMessage::new(
            req.properties
                .response_topic
                .as_ref()
                .expect("response topic")
                .as_str(),
            format!("echo: {}", req.payload_str()),
        )
        .qos(QoS::AtLeastOnce);
        reply.properties.correlation_data = req.properties.correlation_data.clone();
        responder.publish_message(reply).await.expect("reply sent");
    });
    let (requester, mut replies) = connect(opts(&broker, V5)).await;
    within(
        "subscribe",
        requester.subscribe("replies/me", QoS::AtLeastOnce),
    )
    .await
    .expect("ok");
    let mut req = OutgoingMessage::new("svc/echo", "hi").qos(QoS::AtLeastOnce);
    req.properties.response_topic = Some(TopicName::new("replies/me").expect("topic"));
    req.properties.correlation_data = Some(Bytes::from_static(b"42"));
    within("request", requester.publish_message(req))
        .await
        .expect("sent");
    let reply = next_message(&mut replies).await;
    assert_eq!(reply.payload_str(), "echo: hi");
    assert_eq!(
        reply.properties.correlation_data.as_deref(),
        Some(&b"42"[..])
    );
    within("responder", serve).await.expect("ok");
}

#[tokio::test]
async fn retained_messages_and_will_with_disconnect_0x04() {
    let broker = TestBroker::start().await;
    let (publisher, _) =
        connect(opts(&broker, V5).will(linnet_client::LastWill::new("will/t", "gone"))).await;
    within(
        "retain",
        publisher.publish("ret/t", "kept", QoS::AtLeastOnce, true),
    )
    .await
    .expect("acked");
    let (sub, mut messages) = connect(opts(&broker, V5)).await;
    within("subscribe", sub.subscribe("ret/t", QoS::AtLeastOnce))
        .await
        .expect("ok");
    let m = next_message(&mut messages).await;
    assert!(m.retain);
    assert_eq!(m.payload_str(), "kept");
    within("subscribe", sub.subscribe("will/t", QoS::AtLeastOnce))
        .await
        .expect("ok");
    within(
        "disconnect",
        publisher.disconnect_with(ReasonCode::DISCONNECT_WITH_WILL_MESSAGE, Default::default()),
    )
    .await
    .expect("ok");
    let m = next_message(&mut messages).await;
    assert_eq!((m.topic.as_str(), &*m.payload_str()), ("will/t", "gone"));
}

#[tokio::test]
async fn server_limits_are_respected_before_sending() {
    // covers: [MQTT-3.2.2-11] [MQTT-3.2.2-14] [MQTT-3.2.2-15]
    let props = linnet_proto::ConnAckProperties {
        maximum_qos: Some(QoS::AtLeastOnce),
        retain_available: Some(false),
        maximum_packet_size: NonZeroU32::new(64),
        ..Default::default()
    };
    let (_listener, mut peer, client, _m) = fake_pair(with_version(V5), Some(props)).await;
    let e = client
        .publish("t", "x", QoS::ExactlyOnce, false)
        .await
        .unwrap_err();
    assert_eq!(e.reason_code(), Some(0x9B));
    let e = client
        .publish("t", "x", QoS::AtMostOnce, true)
        .await
        .unwrap_err();
    assert_eq!(e.reason_code(), Some(0x9A));
    let e = client
        .publish("t", vec![0u8; 100], QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert_eq!(e.reason_code(), Some(0x95));
    within("publish", client.publish("t", "ok", QoS::AtMostOnce, false))
        .await
        .expect("sent");
    let p = peer.expect_publish().await;
    assert_eq!(&p.payload[..], b"ok", "nothing refused reached the wire");
}

// ----- transports and options -----

#[tokio::test]
async fn websocket_transport_round_trip() {
    // covers: [MQTT-6.0.0-3] [v311:MQTT-7.1.2-1]
    let broker = TestBroker::start().await;
    for version in VERSIONS {
        let ws = ConnectOptions::new("127.0.0.1", broker.ws.port())
            .version(version)
            .transport(Transport::WebSocket {
                path: "/mqtt".into(),
            });
        let (client, mut messages) = connect(ws).await;
        within("subscribe", client.subscribe("ws/t", QoS::ExactlyOnce))
            .await
            .expect("ok");
        let (tcp, _) = connect(opts(&broker, version)).await;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            within(
                "publish",
                tcp.publish("ws/t", format!("{qos:?}"), qos, false),
            )
            .await
            .expect("ok");
            let m = next_message(&mut messages).await;
            assert_eq!(m.payload_str(), format!("{qos:?}"));
        }
        within(
            "publish",
            client.publish("ws/t", "from ws", QoS::ExactlyOnce, false),
        )
        .await
        .expect("ok");
        assert_eq!(next_message(&mut messages).await.payload_str(), "from ws");
        within("disconnect", client.disconnect()).await.expect("ok");
    }
    // A path the broker does not serve fails the handshake.
    let bad = ConnectOptions::new("127.0.0.1", broker.ws.port()).transport(Transport::WebSocket {
        path: "/nope".into(),
    });
    let err = within("connect", Client::connect(bad)).await.unwrap_err();
    assert!(matches!(err, ClientError::Io { .. }), "{err:?}");
}

#[tokio::test]
async fn connect_from_url_with_credentials_and_empty_client_id() {
    let broker = TestBroker::start().await;
    let url = format!(
        "mqtt://user:secret@127.0.0.1:{}/some/topic",
        broker.tcp.port()
    );
    let o = ConnectOptions::from_url(&url).expect("url").client_id("");
    assert_eq!(o.url_topic(), Some("some/topic"));
    let (client, _m, connected) = within("connect", Client::connect(o))
        .await
        .expect("connect");
    let assigned = connected.assigned_client_id.expect("server assigns an id");
    assert!(!assigned.is_empty());
    assert_eq!(client.protocol_version(), V5);
    // Nothing listening: an I/O error naming the address.
    let (listener, addr) = fake_server().await;
    drop(listener);
    let err = within(
        "connect",
        Client::connect(ConnectOptions::new("127.0.0.1", addr.port())),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot connect to 127.0.0.1:{}", addr.port())),
        "{err}"
    );
}

#[tokio::test]
async fn connect_times_out_when_no_connack_comes() {
    let (listener, addr) = fake_server().await;
    let o =
        ConnectOptions::new("127.0.0.1", addr.port()).connect_timeout(Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    let (_r, accepted) = tokio::join!(
        async { Client::connect(o).await.map(|_| ()).unwrap_err() },
        async { Peer::accept(&listener).await }
    );
    assert!(matches!(_r, ClientError::Timeout(_)), "{_r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(accepted);
}

#[tokio::test]
async fn nothing_hangs_when_messages_are_never_read() {
    let broker = TestBroker::start().await;
    let (sub, _messages_never_read) = connect(opts(&broker, V5)).await;
    within("subscribe", sub.subscribe("flood", QoS::AtLeastOnce))
        .await
        .expect("ok");
    let (publisher, _) = connect(opts(&broker, V5)).await;
    for i in 0..2000 {
        within(
            "publish",
            publisher.publish("flood", format!("{i}"), QoS::AtLeastOnce, false),
        )
        .await
        .expect("acked");
    }
    // The subscriber's task kept acknowledging; it still answers calls.
    within("subscribe", sub.subscribe("other", QoS::AtMostOnce))
        .await
        .expect("ok");
}

#[tokio::test]
async fn dropping_every_handle_disconnects() {
    let (listener, addr) = fake_server().await;
    let connecting = tokio::spawn(Client::connect(ConnectOptions::new(
        "127.0.0.1",
        addr.port(),
    )));
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.connack(false, None).await;
    let (client, messages, _) = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");
    drop(client);
    let quiet = tokio::time::timeout(Duration::from_millis(200), peer.recv()).await;
    assert!(
        quiet.is_err(),
        "Messages alone keeps the connection: {quiet:?}"
    );
    drop(messages);
    match peer.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, ReasonCode::NORMAL_DISCONNECTION),
        other => panic!("expected DISCONNECT, got {other:?}"),
    }
}

// ----- blocking facade and one-shot helpers -----

#[test]
fn blocking_facade_paho_style() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let broker = rt.block_on(TestBroker::start());
    let port = broker.tcp.port();
    let client = blocking::Client::new(ConnectOptions::new("127.0.0.1", port).version(V311))
        .expect("client");
    let (tx, rx) = std::sync::mpsc::channel();
    let codes = tx.clone();
    client.on_connect(move |client, code| {
        codes.send(format!("connect {code}")).expect("send");
        client
            .subscribe("python/mqtt", QoS::AtLeastOnce)
            .expect("subscribe");
        client
            .publish("python/mqtt", "messages: 1", QoS::AtLeastOnce, false)
            .expect("publish");
    });
    client.on_message(move |client, msg| {
        tx.send(format!(
            "Received `{}` from `{}` topic",
            msg.payload_str(),
            msg.topic
        ))
        .expect("send");
        client.disconnect().expect("disconnect");
    });
    let connected = client.connect().expect("connect");
    assert!(connected.reason.is_success());
    let looping = std::thread::spawn({
        let client = client.clone();
        move || client.loop_forever()
    });
    let wait = Duration::from_secs(5);
    assert_eq!(
        rx.recv_timeout(wait).expect("connect callback"),
        "connect 0"
    );
    assert_eq!(
        rx.recv_timeout(wait).expect("message callback"),
        "Received `messages: 1` from `python/mqtt` topic"
    );
    let deadline = std::time::Instant::now() + wait;
    while !looping.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "loop_forever returns after disconnect"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    looping.join().expect("join").expect("loop ends cleanly");

    // loop_start / loop_stop, and a refusal reaches on_connect.
    let c2 = blocking::Client::new(ConnectOptions::new("127.0.0.1", port)).expect("client");
    c2.connect().expect("connect");
    c2.loop_start().expect("start");
    c2.publish("x", "y", QoS::ExactlyOnce, false)
        .expect("qos 2 from the blocking API");
    c2.loop_stop().expect("stop");
    c2.disconnect().expect("disconnect");
    rt.block_on(broker.stop());
}

#[test]
fn blocking_on_connect_gets_the_refusal_code() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (listener, addr) = rt.block_on(fake_server());
    let server = rt.spawn(async move {
        let (mut peer, _) = Peer::accept(&listener).await;
        peer.send(ConnAck::new(false, ReasonCode::BAD_USER_NAME_OR_PASSWORD))
            .await;
    });
    let client = blocking::Client::new(ConnectOptions::new("127.0.0.1", addr.port()).version(V311))
        .expect("client");
    let (tx, rx) = std::sync::mpsc::channel();
    client.on_connect(move |_, code| tx.send(code).expect("send"));
    let err = client.connect().unwrap_err();
    assert_eq!(
        err.to_string(),
        "connection refused: bad user name or password (0x04)"
    );
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)).expect("callback"),
        4
    );
    rt.block_on(async { within("server", server).await.expect("ok") });
}

#[tokio::test]
async fn one_shot_helpers() {
    let broker = TestBroker::start().await;
    let o = || opts(&broker, V5);
    // A subscriber whose SUBACK came before anything is published sees all three live.
    let (watch, mut watch_msgs) = connect(o()).await;
    within("subscribe", watch.subscribe("one/#", QoS::AtMostOnce))
        .await
        .expect("ok");
    // Retained, so `receive` gets them whenever its SUBSCRIBE lands (no sleep, no race).
    within(
        "single",
        simple::publish_single(o(), "one/a", "1", QoS::ExactlyOnce, true),
    )
    .await
    .expect("ok");
    let outcomes = within(
        "multiple",
        simple::publish_multiple(
            o(),
            vec![
                OutgoingMessage::new("one/b", "2")
                    .qos(QoS::AtLeastOnce)
                    .retain(true),
                OutgoingMessage::new("one/c", "3").retain(true),
            ],
        ),
    )
    .await
    .expect("ok");
    assert_eq!(outcomes.len(), 2);
    let got = within(
        "receive",
        simple::receive(o(), &["one/#"], QoS::AtLeastOnce, 3, Some(LIMIT)),
    )
    .await
    .expect("3 messages");
    let mut payloads: Vec<_> = got.iter().map(|m| m.payload_str().to_string()).collect();
    payloads.sort();
    assert_eq!(payloads, ["1", "2", "3"]);
    assert!(got.iter().all(|m| m.retain));
    for _ in 0..3 {
        next_message(&mut watch_msgs).await;
    }
    // receive with a timeout that runs out.
    let err = simple::receive(
        o(),
        &["never"],
        QoS::AtMostOnce,
        1,
        Some(Duration::from_millis(200)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
}

#[test]
fn blocking_one_shot_helpers() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let broker = rt.block_on(TestBroker::start());
    let port = broker.tcp.port();
    let o = move || ConnectOptions::new("127.0.0.1", port);
    blocking::publish_single(o(), "b1/t", "kept", QoS::AtLeastOnce, true).expect("publish");
    let got = blocking::receive(o(), &["b1/#"], QoS::AtLeastOnce, 1, Some(LIMIT))
        .expect("retained arrives");
    assert_eq!((got[0].topic.as_str(), got[0].retain), ("b1/t", true));
    let out = blocking::publish_multiple(
        o(),
        vec![OutgoingMessage::new("b1/u", "x").qos(QoS::ExactlyOnce)],
    )
    .expect("ok");
    assert_eq!(out.len(), 1);
    rt.block_on(broker.stop());
}

#[tokio::test]
async fn mqtt_4_6_0_4_pubrels_follow_the_order_of_pubrecs() {
    // covers: [v311:MQTT-4.6.0-4] [v311:MQTT-4.3.3-1]
    for version in VERSIONS {
        let (_listener, mut peer, client, _m) = fake_pair(with_version(version), None).await;
        let c = client.clone();
        let all = tokio::spawn(async move {
            futures_util::future::join_all(
                (0..3).map(|i| c.publish("q2", format!("{i}"), QoS::ExactlyOnce, false)),
            )
            .await
        });
        let mut ids = Vec::new();
        for _ in 0..3 {
            let p = peer.expect_publish().await;
            ids.push(p.packet_id.expect("id"));
        }
        for i in [2, 0, 1] {
            peer.send(Packet::PubRec(PubResponse::new(ids[i]))).await;
        }
        for i in [2, 0, 1] {
            assert_eq!(
                peer.expect().await,
                Packet::PubRel(PubResponse::new(ids[i]))
            );
        }
        for id in &ids {
            peer.send(Packet::PubComp(PubResponse::new(*id))).await;
        }
        for r in within("publishes", all).await.expect("task") {
            r.expect("completed");
        }
    }
}

#[tokio::test]
async fn mqtt311_2_3_1_2_each_new_packet_gets_an_unused_packet_id() {
    // covers: [MQTT-2.2.1-3] [MQTT-4.3.2-1] [MQTT-4.3.3-1]
    for version in VERSIONS {
        let (_listener, mut peer, client, _m) = fake_pair(with_version(version), None).await;
        for i in 0..20u8 {
            let c = client.clone();
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            tokio::spawn(async move { c.publish("ids", vec![i], qos, false).await });
        }
        let c = client.clone();
        tokio::spawn(async move { c.subscribe("ids/#", QoS::AtMostOnce).await });
        let mut seen = std::collections::HashSet::new();
        for _ in 0..21 {
            let id = match peer.expect().await {
                Packet::Publish(p) => p.packet_id.expect("QoS > 0 has an id"),
                Packet::Subscribe(s) => s.packet_id,
                other => panic!("unexpected {other:?}"),
            };
            assert!(
                seen.insert(id.get()),
                "{version:?}: packet id {id} reused while in use"
            );
        }
    }
}

#[tokio::test]
async fn mqtt311_3_1_3_7_empty_client_id_requires_clean_session() {
    let o = ConnectOptions::new("127.0.0.1", 1)
        .version(V311)
        .client_id("")
        .clean_start(false);
    let err = within("connect", Client::connect(o)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Invalid {
                what: "client id",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn mqtt_3_14_4_1_client_closes_and_sends_nothing_after_disconnect() {
    // covers: [MQTT-3.14.4-2] [v311:MQTT-3.14.4-1] [v311:MQTT-3.14.4-2]
    for version in VERSIONS {
        let (_listener, mut peer, client, _m) = fake_pair(
            |port| {
                ConnectOptions::new("127.0.0.1", port)
                    .version(version)
                    .keep_alive(Duration::from_secs(1))
            },
            None,
        )
        .await;
        within("disconnect", client.disconnect()).await.expect("ok");
        assert!(matches!(peer.recv().await, Some(Packet::Disconnect(_))));
        assert_eq!(
            peer.recv().await,
            None,
            "nothing after DISCONNECT, then close"
        );
        let err = client
            .publish("t", "x", QoS::AtMostOnce, false)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Closed), "{err:?}");
    }
}

#[tokio::test]
async fn mqtt_3_2_2_4_session_present_after_clean_start_closes_the_connection() {
    let (listener, addr) = fake_server().await;
    let o = ConnectOptions::new("127.0.0.1", addr.port()).version(V5);
    let connecting = tokio::spawn(Client::connect(o));
    let (mut peer, connect) = Peer::accept(&listener).await;
    assert!(connect.clean_start);
    peer.connack(true, None).await;
    let err = within("connect", connecting)
        .await
        .expect("task")
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    assert_eq!(peer.recv().await, None, "the client closed the connection");
}

// ----- enhanced authentication -----

fn auth(code: ReasonCode, data: &'static [u8]) -> Packet {
    let mut a = linnet_proto::Auth::new(code);
    a.properties.authentication_method = Some("TEST-SCRAM".into());
    a.properties.authentication_data = Some(Bytes::from_static(data));
    Packet::Auth(a)
}

#[tokio::test]
async fn mqtt_4_12_0_3_client_answers_auth_challenges_with_continue() {
    // covers: [MQTT-3.1.2-30] [MQTT-4.12.1-1]
    let (listener, addr) = fake_server().await;
    let o = ConnectOptions::new("127.0.0.1", addr.port())
        .version(V5)
        .authentication(
            "TEST-SCRAM",
            Some(Bytes::from_static(b"client-first")),
            |server| {
                if server == b"refuse" {
                    return Err("bad server proof".into());
                }
                let mut out = b"resp:".to_vec();
                out.extend_from_slice(server);
                Ok(out.into())
            },
        );
    let connecting = tokio::spawn(Client::connect(o.clone()));
    let (mut peer, connect) = Peer::accept(&listener).await;
    assert_eq!(
        connect.properties.authentication_method.as_deref(),
        Some("TEST-SCRAM")
    );
    assert_eq!(
        connect.properties.authentication_data.as_deref(),
        Some(&b"client-first"[..])
    );
    peer.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, b"server-first"))
        .await;
    // Only AUTH until CONNACK, with the same method and reason 0x18.
    assert_eq!(
        peer.expect().await,
        auth(ReasonCode::CONTINUE_AUTHENTICATION, b"resp:server-first")
    );
    peer.connack(false, None).await;
    let (client, _m, _) = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");

    let c = client.clone();
    let reauth =
        tokio::spawn(async move { c.reauthenticate(Some(Bytes::from_static(b"again"))).await });
    assert_eq!(
        peer.expect().await,
        auth(ReasonCode::RE_AUTHENTICATE, b"again")
    );
    peer.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, b"c2"))
        .await;
    assert_eq!(
        peer.expect().await,
        auth(ReasonCode::CONTINUE_AUTHENTICATION, b"resp:c2")
    );
    let mut done = linnet_proto::Auth::new(ReasonCode::SUCCESS);
    done.properties.authentication_method = Some("TEST-SCRAM".into());
    peer.send(Packet::Auth(done)).await;
    within("reauth", reauth)
        .await
        .expect("task")
        .expect("re-authenticated");

    // A handler that gives up ends the attempt with DISCONNECT 0x87.
    let connecting = tokio::spawn(Client::connect(o));
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, b"refuse"))
        .await;
    match peer.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, ReasonCode::NOT_AUTHORIZED),
        other => panic!("expected DISCONNECT 0x87, got {other:?}"),
    }
    let err = within("connect", connecting)
        .await
        .expect("task")
        .unwrap_err();
    assert!(err.to_string().contains("bad server proof"), "{err}");
}

#[tokio::test]
async fn mqtt_4_12_0_7_without_a_method_auth_is_refused_and_never_sent() {
    let (listener, addr) = fake_server().await;
    let connecting = tokio::spawn(Client::connect(ConnectOptions::new(
        "127.0.0.1",
        addr.port(),
    )));
    let (mut peer, connect) = Peer::accept(&listener).await;
    assert_eq!(connect.properties.authentication_method, None);
    peer.connack(false, None).await;
    let (client, _m, _) = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");
    let err = client.reauthenticate(None).await.unwrap_err();
    assert!(matches!(err, ClientError::Invalid { .. }), "{err:?}");
    peer.send(auth(ReasonCode::CONTINUE_AUTHENTICATION, b"x"))
        .await;
    match peer.recv().await {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason_code, ReasonCode::PROTOCOL_ERROR),
        other => panic!("expected DISCONNECT 0x82 and no AUTH, got {other:?}"),
    }
}

#[tokio::test]
async fn mqtt_3_1_clients_work_too() {
    let broker = TestBroker::start().await;
    let v31 = ProtocolVersion::V3_1;
    let (client, mut messages) = connect(opts(&broker, v31).client_id("old-style-31")).await;
    assert_eq!(client.protocol_version(), v31);
    within("subscribe", client.subscribe("v31/#", QoS::ExactlyOnce))
        .await
        .expect("granted");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        within(
            "publish",
            client.publish("v31/t", format!("{qos:?}"), qos, false),
        )
        .await
        .expect("published");
        assert_eq!(
            next_message(&mut messages).await.payload_str(),
            format!("{qos:?}")
        );
    }
}

#[tokio::test]
async fn per_filter_handlers_take_their_messages() {
    let broker = TestBroker::start().await;
    let (client, mut messages) = connect(opts(&broker, V5)).await;
    let (code, mut sensors) = within(
        "subscribe_handler",
        client.subscribe_handler("h/sensors/+", QoS::AtLeastOnce),
    )
    .await
    .expect("granted");
    assert_eq!(code, ReasonCode::GRANTED_QOS_1);
    within("subscribe", client.subscribe("other/#", QoS::AtLeastOnce))
        .await
        .expect("granted");
    for (topic, payload) in [
        ("h/sensors/1", "21.5"),
        ("other/x", "o"),
        ("h/sensors/2", "19"),
    ] {
        within(
            "publish",
            client.publish(topic, payload, QoS::AtLeastOnce, false),
        )
        .await
        .expect("acked");
    }
    let a = within("handler", sensors.recv()).await.expect("message");
    let b = within("handler", sensors.recv()).await.expect("message");
    assert_eq!(
        (a.topic.as_str(), b.topic.as_str()),
        ("h/sensors/1", "h/sensors/2")
    );
    let m = next_message(&mut messages).await;
    assert_eq!(m.topic, "other/x");
    expect_no_message(&mut messages, Duration::from_millis(100)).await;
    // Unsubscribing ends the handler.
    within(
        "unsubscribe",
        client.unsubscribe(vec!["h/sensors/+".into()]),
    )
    .await
    .expect("unsuback");
    assert!(within("handler end", sensors.recv()).await.is_none());
}

// ----- review fixes: sizes, aliases, resumption, reconnect -----

/// Reconnects at once (tests that drop the fake server's connection).
fn quick() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(40),
    }
}

#[tokio::test]
async fn mqtt_3_2_2_15_every_outgoing_packet_is_measured_and_a_failure_fails_the_call() {
    // Without a Maximum Packet Size from the server: a field MQTT cannot encode fails the
    // call (QoS 0 included) instead of hanging or being "written".
    let (_listener, mut peer, client, _m) = fake_pair(with_version(V5), None).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let mut m = OutgoingMessage::new("t", "x").qos(qos);
        m.properties.content_type = Some("c".repeat(70_000).into());
        let err = within("publish", client.publish_message(m))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Invalid { .. }),
            "{qos:?}: {err:?}"
        );
    }
    // With one: SUBSCRIBE, UNSUBSCRIBE and DISCONNECT are measured too.
    let props = linnet_proto::ConnAckProperties {
        maximum_packet_size: NonZeroU32::new(64),
        ..Default::default()
    };
    let (_listener2, mut peer2, client2, _m2) = fake_pair(with_version(V5), Some(props)).await;
    let long = "f".repeat(100);
    let err = within("subscribe", client2.subscribe(&long, QoS::AtMostOnce))
        .await
        .unwrap_err();
    assert_eq!(err.reason_code(), Some(0x95), "{err:?}");
    let err = within("unsubscribe", client2.unsubscribe(vec![long.clone()]))
        .await
        .unwrap_err();
    assert_eq!(err.reason_code(), Some(0x95), "{err:?}");
    let err = within(
        "publish",
        client2.publish(&long, "x", QoS::AtMostOnce, false),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason_code(), Some(0x95), "{err:?}");
    let props = linnet_proto::DisconnectProperties {
        reason_string: Some(long.as_str().into()),
        ..Default::default()
    };
    let err = within(
        "disconnect",
        client2.disconnect_with(ReasonCode::NORMAL_DISCONNECTION, props),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason_code(), Some(0x95), "{err:?}");
    // Nothing of that reached the wire; the connections still work.
    for (client, peer) in [(&client, &mut peer), (&client2, &mut peer2)] {
        within("publish", client.publish("ok", "x", QoS::AtMostOnce, false))
            .await
            .expect("sent");
        match peer.expect().await {
            Packet::Publish(p) => assert_eq!(&*p.topic, "ok"),
            other => panic!("expected PUBLISH ok first, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn writes_are_bounded_by_one_and_a_half_keep_alives() {
    // A server that stops reading: the client's write cannot finish, and keep alive must
    // still end the connection.
    let (_listener, _peer, client, mut messages) = fake_pair(
        |port| {
            ConnectOptions::new("127.0.0.1", port)
                .version(V311)
                .keep_alive(Duration::from_secs(1))
        },
        None,
    )
    .await;
    let big = Bytes::from(vec![0u8; 64 << 20]);
    let c = client.clone();
    let publish = tokio::spawn(async move { c.publish("big", big, QoS::AtMostOnce, false).await });
    loop {
        match within("Disconnected", messages.next_event()).await {
            Some(Event::Disconnected { .. }) | None => break,
            Some(_) => {}
        }
    }
    let r = within("publish", publish).await.expect("task");
    assert!(matches!(r, Err(ClientError::ConnectionLost)), "{r:?}");
}

#[tokio::test]
async fn topic_aliases_are_automatic_and_an_empty_topic_is_invalid() {
    let props = linnet_proto::ConnAckProperties {
        topic_alias_maximum: Some(2),
        ..Default::default()
    };
    let (_listener, mut peer, client, _m) = fake_pair(with_version(V5), Some(props)).await;
    let mut m = OutgoingMessage::new("", "x");
    m.properties.topic_alias = NonZeroU16::new(1);
    let err = within("publish", client.publish_message(m))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Invalid { .. }), "{err:?}");
    // A user alias is ignored: the client's own (1) is used.
    let mut m = OutgoingMessage::new("a", "x");
    m.properties.topic_alias = NonZeroU16::new(2);
    within("publish", client.publish_message(m))
        .await
        .expect("sent");
    let p = peer.expect_publish().await;
    assert_eq!(
        (p.topic.as_ref(), p.properties.topic_alias),
        ("a", NonZeroU16::new(1))
    );
}

#[tokio::test]
async fn a_size_rejected_publish_registers_no_topic_alias() {
    let props = linnet_proto::ConnAckProperties {
        topic_alias_maximum: Some(2),
        maximum_packet_size: NonZeroU32::new(100),
        ..Default::default()
    };
    let (_listener, mut peer, client, _m) = fake_pair(with_version(V5), Some(props)).await;
    let err = within(
        "publish",
        client.publish("a", vec![0u8; 200], QoS::AtMostOnce, false),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason_code(), Some(0x95), "{err:?}");
    within("publish", client.publish("a", "x", QoS::AtMostOnce, false))
        .await
        .expect("sent");
    let p = peer.expect_publish().await;
    assert_eq!(
        (p.topic.as_ref(), p.properties.topic_alias),
        ("a", NonZeroU16::new(1)),
        "the first PUBLISH on the wire names the topic it aliases"
    );
}

#[tokio::test]
async fn a_pending_unsubscribe_is_not_undone_by_the_resubscribe_after_a_session_loss() {
    let (listener, mut peer, client, _m) = fake_pair(
        |port| {
            ConnectOptions::new("127.0.0.1", port)
                .version(V5)
                .reconnect(Some(quick()))
        },
        None,
    )
    .await;
    let c = client.clone();
    let sub = tokio::spawn(async move { c.subscribe("a", QoS::AtMostOnce).await });
    let s = peer.expect_subscribe().await;
    peer.send(SubAck::new(s.packet_id, vec![ReasonCode::SUCCESS]))
        .await;
    within("subscribe", sub)
        .await
        .expect("task")
        .expect("granted");
    let c = client.clone();
    let unsub = tokio::spawn(async move { c.unsubscribe(vec!["a".into()]).await });
    assert!(matches!(peer.expect().await, Packet::Unsubscribe(_)));
    // Lost before UNSUBACK; the new server has no session.
    drop(peer);
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.connack(false, None).await;
    let Packet::Subscribe(s) = peer.expect().await else {
        panic!("the re-subscribe first")
    };
    assert_eq!(s.subscriptions[0].filter.as_str(), "a");
    peer.send(SubAck::new(s.packet_id, vec![ReasonCode::SUCCESS]))
        .await;
    let Packet::Unsubscribe(u) = peer.expect().await else {
        panic!("then the pending UNSUBSCRIBE")
    };
    assert_eq!(u.filters[0].as_str(), "a");
    peer.send(linnet_proto::UnsubAck::new(
        u.packet_id,
        vec![ReasonCode::SUCCESS],
    ))
    .await;
    within("unsubscribe", unsub)
        .await
        .expect("task")
        .expect("done");
}

#[tokio::test]
async fn mqtt_3_3_4_7_resent_publishes_respect_the_new_receive_maximum() {
    // covers: [MQTT-4.4.0-1]
    let (listener, mut peer, client, _m) = fake_pair(
        |port| {
            ConnectOptions::new("127.0.0.1", port)
                .version(V5)
                .reconnect(Some(quick()))
        },
        None,
    )
    .await;
    let mut publishes = Vec::new();
    for i in 0..3u8 {
        let c = client.clone();
        publishes.push(tokio::spawn(async move {
            c.publish("rm", vec![i], QoS::AtLeastOnce, false).await
        }));
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        let p = peer.expect_publish().await;
        ids.push((p.packet_id.expect("id"), p.payload.clone()));
    }
    drop(peer);
    let (mut peer, _) = Peer::accept(&listener).await;
    let props = linnet_proto::ConnAckProperties {
        receive_maximum: NonZeroU16::new(1),
        ..Default::default()
    };
    peer.connack(true, Some(props)).await;
    for (n, (id, payload)) in ids.iter().enumerate() {
        let p = peer.expect_publish().await;
        assert_eq!(
            (p.packet_id, p.dup, &p.payload),
            (Some(*id), true, payload),
            "re-sent in order, with DUP and the original id"
        );
        if n < 2 {
            peer.quiet(
                Duration::from_millis(200),
                "one unacknowledged PUBLISH at a time",
            )
            .await;
        }
        peer.send(Packet::PubAck(PubResponse::new(*id))).await;
    }
    for p in publishes {
        within("publish", p).await.expect("task").expect("acked");
    }
}

#[tokio::test]
async fn failed_reconnects_are_events_and_the_backoff_grows_across_short_connections() {
    let (listener, mut peer, _client, mut messages) = fake_pair(
        |port| {
            ConnectOptions::new("127.0.0.1", port)
                .version(V5)
                .reconnect(Some(Backoff {
                    initial: Duration::from_millis(100),
                    max: Duration::from_secs(30),
                }))
        },
        None,
    )
    .await;
    // Attempt 0 is refused: the application sees the code.
    drop(peer);
    let (mut refused, _) = Peer::accept(&listener).await;
    refused
        .send(ConnAck::new(false, ReasonCode::NOT_AUTHORIZED))
        .await;
    loop {
        match within("ConnectFailed", messages.next_event()).await {
            Some(Event::ConnectFailed { code, text }) => {
                assert_eq!(code, Some(0x87), "{text}");
                assert!(text.contains("not authorized"), "{text}");
                break;
            }
            Some(_) => {}
            None => panic!("the client ended"),
        }
    }
    drop(refused);
    // Attempts 1 and 2 are accepted and dropped at once: no reset of the backoff, so
    // attempt 3 waits at least half of 100 ms * 2^3.
    for _ in 0..2 {
        (peer, _) = Peer::accept(&listener).await;
        peer.connack(false, None).await;
        drop(peer);
    }
    let dropped = std::time::Instant::now();
    let (mut peer, _) = Peer::accept(&listener).await;
    let waited = dropped.elapsed();
    assert!(
        waited >= Duration::from_millis(350),
        "backoff reset after a connection that did not stay up: {waited:?}"
    );
    peer.connack(false, None).await;
}

#[tokio::test]
async fn refused_resubscribes_are_an_event_and_forgotten() {
    let (listener, mut peer, client, mut messages) = fake_pair(
        |port| {
            ConnectOptions::new("127.0.0.1", port)
                .version(V5)
                .reconnect(Some(quick()))
        },
        None,
    )
    .await;
    let c = client.clone();
    let sub = tokio::spawn(async move {
        c.subscribe_many(
            vec![
                ("a".into(), SubscriptionOptions::qos(QoS::AtMostOnce)),
                ("b".into(), SubscriptionOptions::qos(QoS::AtMostOnce)),
            ],
            SubscribeProperties::default(),
        )
        .await
    });
    let s = peer.expect_subscribe().await;
    peer.send(SubAck::new(
        s.packet_id,
        vec![ReasonCode::SUCCESS, ReasonCode::SUCCESS],
    ))
    .await;
    within("subscribe", sub)
        .await
        .expect("task")
        .expect("granted");
    drop(peer);
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.connack(false, None).await;
    let Packet::Subscribe(s) = peer.expect().await else {
        panic!("the re-subscribe")
    };
    assert_eq!(s.subscriptions.len(), 2);
    peer.send(SubAck::new(
        s.packet_id,
        vec![ReasonCode::SUCCESS, ReasonCode::NOT_AUTHORIZED],
    ))
    .await;
    loop {
        match within("ResubscribeFailed", messages.next_event()).await {
            Some(Event::ResubscribeFailed { failed }) => {
                assert_eq!(failed, vec![("b".to_owned(), ReasonCode::NOT_AUTHORIZED)]);
                break;
            }
            Some(_) => {}
            None => panic!("the client ended"),
        }
    }
    // The refused filter is not tried again after the next session loss.
    drop(peer);
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.connack(false, None).await;
    let Packet::Subscribe(s) = peer.expect().await else {
        panic!("the re-subscribe")
    };
    let filters: Vec<_> = s.subscriptions.iter().map(|s| s.filter.as_str()).collect();
    assert_eq!(filters, ["a"]);
}

#[tokio::test]
async fn a_publish_waiting_offline_fails_when_the_client_is_closed() {
    let (listener, peer, client, _m) = fake_pair(
        |port| {
            ConnectOptions::new("127.0.0.1", port)
                .version(V5)
                .reconnect(Some(Backoff {
                    initial: Duration::from_secs(60),
                    max: Duration::from_secs(60),
                }))
        },
        None,
    )
    .await;
    drop(peer);
    drop(listener);
    let c = client.clone();
    let publish = tokio::spawn(async move { c.publish("t", "x", QoS::AtLeastOnce, false).await });
    tokio::task::yield_now().await;
    within("disconnect", client.disconnect()).await.expect("ok");
    let r = within("publish", publish).await.expect("task");
    assert!(matches!(r, Err(ClientError::Closed)), "{r:?}");
}
