//! linnet-client reconnecting: session resumption (DUP re-sends, PUBREL re-sends, original
//! order), re-subscribe and re-send after a session loss, the offline queue and its limit,
//! the broker restarted on the same port mid-stream, and a connection cut under a live
//! broker (through a small TCP proxy) that resumes the broker's session.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use linnet_client::{
    Backoff, Client, ClientError, ConnectOptions, Event, ProtocolVersion, QoS, ReasonCode,
};
use linnet_proto::{ConnAck, Disconnect, Packet, PubResponse, SubAck};
use linnet_testkit::client_support::{
    fake_pair, fake_server, fast_backoff, is_connected, is_disconnected, wait_event, within, Peer,
    RestartScenario,
};
use linnet_testkit::TestBroker;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

#[tokio::test]
async fn mqtt_4_4_0_1_client_resends_unacked_publish_with_dup() {
    // covers: [MQTT-4.6.0-1] [MQTT-4.3.3-6] [v311:MQTT-4.4.0-1] [v311:MQTT-4.6.0-1] [v311:MQTT-2.3.1-3]
    for version in [V5, V311] {
        let (listener, addr) = fake_server().await;
        let o = ConnectOptions::new("127.0.0.1", addr.port())
            .version(version)
            .clean_start(version == V5)
            .session_expiry(60)
            .reconnect(fast_backoff());
        let connecting = tokio::spawn(Client::connect(o));
        let (mut peer, first) = Peer::accept(&listener).await;
        assert_eq!(first.clean_start, version == V5);
        peer.send(ConnAck::new(false, ReasonCode::SUCCESS)).await;
        let (client, mut messages, _) = within("connect", connecting)
            .await
            .expect("task")
            .expect("connect");
        let publishes = tokio::spawn({
            let client = client.clone();
            async move {
                join_all([
                    client.publish("r/a", "a", QoS::AtLeastOnce, false),
                    client.publish("r/b", "b", QoS::ExactlyOnce, false),
                    client.publish("r/c", "c", QoS::ExactlyOnce, false),
                ])
                .await
            }
        });
        let mut ids = Vec::new();
        for _ in 0..3 {
            let p = peer.expect_publish().await;
            assert!(!p.dup);
            ids.push(p.packet_id.expect("id"));
        }
        // c reaches the PUBREL stage, then the connection breaks.
        peer.send(Packet::PubRec(PubResponse::new(ids[2]))).await;
        assert_eq!(
            peer.expect().await,
            Packet::PubRel(PubResponse::new(ids[2]))
        );
        drop(peer);
        wait_event(&mut messages, "Disconnected", is_disconnected).await;

        let (mut peer, again) = Peer::accept(&listener).await;
        assert!(!again.clean_start, "a reconnect asks to resume the session");
        assert_eq!(again.client_id, first.client_id);
        peer.send(ConnAck::new(true, ReasonCode::SUCCESS)).await;
        // Original order, same ids, DUP set; c only gets its PUBREL again.
        let Packet::Publish(a) = peer.expect().await else {
            panic!("PUBLISH a")
        };
        assert_eq!(
            (a.dup, a.packet_id, &a.payload[..]),
            (true, Some(ids[0]), &b"a"[..])
        );
        let Packet::Publish(b) = peer.expect().await else {
            panic!("PUBLISH b")
        };
        assert_eq!(
            (b.dup, b.packet_id, &b.payload[..]),
            (true, Some(ids[1]), &b"b"[..])
        );
        assert_eq!(
            peer.expect().await,
            Packet::PubRel(PubResponse::new(ids[2]))
        );
        match wait_event(&mut messages, "Connected", is_connected).await {
            Event::Connected(c) => assert!(c.session_present),
            _ => unreachable!(),
        }
        peer.send(Packet::PubAck(PubResponse::new(ids[0]))).await;
        peer.send(Packet::PubRec(PubResponse::new(ids[1]))).await;
        assert_eq!(
            peer.expect().await,
            Packet::PubRel(PubResponse::new(ids[1]))
        );
        peer.send(Packet::PubComp(PubResponse::new(ids[1]))).await;
        peer.send(Packet::PubComp(PubResponse::new(ids[2]))).await;
        let results = within("publishes", publishes).await.expect("task");
        for r in results {
            assert!(r.is_ok(), "{version:?}: {r:?}");
        }
        within("disconnect", client.disconnect()).await.expect("ok");
    }
}

#[tokio::test]
async fn mqtt_3_2_2_5_session_lost_resubscribes_and_resends_as_new_messages() {
    let (listener, mut peer, client, mut messages) = fake_pair(
        |port| {
            ConnectOptions::new("127.0.0.1", port)
                .version(V5)
                .session_expiry(60)
                .reconnect(fast_backoff())
        },
        None,
    )
    .await;
    let c = client.clone();
    let sub = tokio::spawn(async move {
        c.subscribe_many(
            vec![
                (
                    "s/1".into(),
                    linnet_client::SubscriptionOptions::qos(QoS::AtLeastOnce),
                ),
                (
                    "s/2".into(),
                    linnet_client::SubscriptionOptions::qos(QoS::ExactlyOnce),
                ),
                (
                    "s/denied".into(),
                    linnet_client::SubscriptionOptions::qos(QoS::AtMostOnce),
                ),
            ],
            Default::default(),
        )
        .await
    });
    let s = peer.expect_subscribe().await;
    peer.send(SubAck::new(
        s.packet_id,
        vec![ReasonCode(1), ReasonCode(2), ReasonCode::NOT_AUTHORIZED],
    ))
    .await;
    within("suback", sub).await.expect("task").expect("codes");
    let c = client.clone();
    let publish =
        tokio::spawn(async move { c.publish("p", "unacked", QoS::AtLeastOnce, false).await });
    let p = peer.expect_publish().await;
    assert!(!p.dup);
    drop(peer);
    wait_event(&mut messages, "Disconnected", is_disconnected).await;

    let (mut peer, again) = Peer::accept(&listener).await;
    assert!(!again.clean_start);
    peer.send(ConnAck::new(false, ReasonCode::SUCCESS)).await;
    let mut resubscribed = None;
    let mut republished = None;
    for _ in 0..2 {
        match peer.expect().await {
            Packet::Subscribe(s) => resubscribed = Some(s),
            Packet::Publish(p) => republished = Some(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    let s = resubscribed.expect("re-subscribed after session loss");
    let filters: Vec<_> = s
        .subscriptions
        .iter()
        .map(|s| (s.filter.to_string(), s.options.qos))
        .collect();
    assert_eq!(
        filters,
        vec![
            ("s/1".into(), QoS::AtLeastOnce),
            ("s/2".into(), QoS::ExactlyOnce)
        ],
        "granted filters only"
    );
    let p2 = republished.expect("the unacknowledged message is sent again");
    assert!(!p2.dup, "a new message on a new session");
    assert_eq!(&p2.payload[..], b"unacked");
    peer.send(SubAck::new(s.packet_id, vec![ReasonCode(1), ReasonCode(2)]))
        .await;
    peer.send(Packet::PubAck(PubResponse::new(p2.packet_id.expect("id"))))
        .await;
    within("publish", publish)
        .await
        .expect("task")
        .expect("acked");
    match wait_event(&mut messages, "Connected", is_connected).await {
        Event::Connected(c) => assert!(!c.session_present),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn offline_queue_full_returns_queue_full_and_queued_messages_go_out_after_reconnect() {
    let (listener, addr) = fake_server().await;
    let o = ConnectOptions::new("127.0.0.1", addr.port())
        .version(V5)
        .offline_queue(2)
        .reconnect(Some(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(100),
        }));
    let connecting = tokio::spawn(Client::connect(o));
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.send(ConnAck::new(false, ReasonCode::SUCCESS)).await;
    let (client, mut messages, _) = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");
    // The server goes away entirely: reconnects are refused.
    drop(listener);
    drop(peer);
    wait_event(&mut messages, "Disconnected", is_disconnected).await;
    let c = client.clone();
    let queued = tokio::spawn(async move {
        join_all([
            c.publish("q", "1", QoS::AtLeastOnce, false),
            c.publish("q", "2", QoS::AtMostOnce, false),
        ])
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !queued.is_finished(),
        "queued publishes wait for a connection"
    );
    let started = tokio::time::Instant::now();
    let err = within(
        "queue full",
        client.publish("q", "3", QoS::AtLeastOnce, false),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::QueueFull), "{err:?}");
    assert_eq!(err.to_string(), "offline queue is full");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "reported at once"
    );

    // The server comes back on the same port: the queue drains in order.
    let listener = TcpListener::bind(addr).await.expect("rebind");
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.send(ConnAck::new(false, ReasonCode::SUCCESS)).await;
    let Packet::Publish(p1) = peer.expect().await else {
        panic!("PUBLISH 1")
    };
    let Packet::Publish(p2) = peer.expect().await else {
        panic!("PUBLISH 2")
    };
    assert_eq!((&p1.payload[..], &p2.payload[..]), (&b"1"[..], &b"2"[..]));
    peer.send(Packet::PubAck(PubResponse::new(p1.packet_id.expect("id"))))
        .await;
    for r in within("queued", queued).await.expect("task") {
        r.expect("delivered after reconnect");
    }
}

#[tokio::test]
async fn without_reconnect_a_lost_connection_fails_waiting_calls() {
    let (listener, addr) = fake_server().await;
    let connecting = tokio::spawn(Client::connect(
        ConnectOptions::new("127.0.0.1", addr.port()).version(V5),
    ));
    let (mut peer, _) = Peer::accept(&listener).await;
    peer.send(ConnAck::new(false, ReasonCode::SUCCESS)).await;
    let (client, mut messages, _) = within("connect", connecting)
        .await
        .expect("task")
        .expect("connect");
    let c = client.clone();
    let publish = tokio::spawn(async move { c.publish("t", "x", QoS::AtLeastOnce, false).await });
    let _ = peer.expect_publish().await;
    let mut d = Disconnect::new(ReasonCode::SERVER_SHUTTING_DOWN);
    d.properties.reason_string = Some("bye".into());
    peer.send(d).await;
    let err = within("publish", publish).await.expect("task").unwrap_err();
    assert_eq!(err.reason_code(), Some(0x8B), "{err:?}");
    assert_eq!(
        err.to_string(),
        "disconnected by the server: server shutting down (0x8b)"
    );
    match wait_event(&mut messages, "Disconnected", is_disconnected).await {
        Event::Disconnected {
            reason,
            reason_string,
        } => {
            assert_eq!(reason, Some(ReasonCode::SERVER_SHUTTING_DOWN));
            assert_eq!(reason_string.as_deref(), Some("bye"));
        }
        _ => unreachable!(),
    }
    assert!(within("end", messages.next_event()).await.is_none());
    assert!(client.is_closed());
}

/// A broker on a fixed address (so it can be restarted on the same port).
async fn broker_at(addr: SocketAddr) -> TestBroker {
    TestBroker::with_config(|c| c.listeners.tcp = vec![addr]).await
}

#[tokio::test]
async fn broker_restart_mid_stream_delivers_outage_messages_exactly_once() {
    let broker = TestBroker::start().await;
    let addr = broker.tcp;
    let scenario = RestartScenario {
        topic: "outage/t",
        outage_messages: 5,
        broker_port: addr.port(),
        subscriber: ConnectOptions::new("127.0.0.1", addr.port())
            .session_expiry(300)
            .reconnect(fast_backoff()),
        publisher_version: V5,
    };
    let broker = scenario
        .run(
            broker,
            |broker| within("stop", broker.stop()),
            |()| broker_at(addr),
        )
        .await;
    broker.stop().await;
}

/// A TCP proxy whose connections the test can cut (the broker stays up).
struct Proxy {
    addr: SocketAddr,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    _accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let list = pipes.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().expect("lock").push(pipe);
            }
        });
        Self {
            addr,
            pipes,
            _accept: accept,
        }
    }

    /// Drops every proxied connection at once, as a network failure would.
    fn cut(&self) {
        for pipe in self.pipes.lock().expect("lock").drain(..) {
            pipe.abort();
        }
    }
}

#[tokio::test]
async fn cut_connection_resumes_the_broker_session_and_gets_what_was_queued() {
    // covers: [MQTT-3.1.2-23]
    let broker = TestBroker::start().await;
    let proxy = Proxy::start(broker.tcp).await;
    let o = ConnectOptions::new("127.0.0.1", proxy.addr.port())
        .session_expiry(300)
        .reconnect(fast_backoff());
    let (sub, mut events, _) = within("connect", Client::connect(o))
        .await
        .expect("connect");
    within("subscribe", sub.subscribe("cut/t", QoS::AtLeastOnce))
        .await
        .expect("granted");
    let direct = ConnectOptions::new("127.0.0.1", broker.tcp.port());
    let (publisher, _pm, _) = within("connect", Client::connect(direct))
        .await
        .expect("connect");
    proxy.cut();
    wait_event(&mut events, "Disconnected", is_disconnected).await;
    for i in 0..3 {
        within(
            "publish",
            publisher.publish("cut/t", format!("m{i}"), QoS::AtLeastOnce, false),
        )
        .await
        .expect("acked by the broker");
    }
    match wait_event(&mut events, "Connected", is_connected).await {
        Event::Connected(c) => assert!(c.session_present, "the broker kept the session"),
        _ => unreachable!(),
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(
            within("message", events.recv())
                .await
                .expect("message")
                .payload_str()
                .to_string(),
        );
    }
    assert_eq!(got, ["m0", "m1", "m2"]);
    // The subscription survived in the session without a re-subscribe.
    within(
        "publish",
        publisher.publish("cut/t", "after", QoS::AtLeastOnce, false),
    )
    .await
    .expect("acked");
    assert_eq!(
        within("message", events.recv())
            .await
            .expect("msg")
            .payload_str(),
        "after"
    );
}
