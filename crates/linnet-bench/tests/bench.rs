//! `linnet-bench` over real sockets against an in-process broker (linnet-testkit), plus the
//! payload format and sequence tracking on synthetic input. Every run is short (well under
//! two seconds) and small.

use std::time::Duration;

use bytes::BytesMut;
use linnet_bench::{
    run_conn, run_pub, run_scenario, run_sub, BenchError, ConnJob, Pace, Pacing, PubJob,
    PublishTemplate, Report, Scenario, ScenarioKind, SeqTracker, Stamp, SubJob, Target, TrackStart,
    Traffic, STAMP_LEN,
};
use linnet_proto::{Decoder, Packet, PacketId, ProtocolVersion, QoS};
use linnet_testkit::TestBroker;

fn target(broker: &TestBroker, version: ProtocolVersion) -> Target {
    let mut target = Target::new(broker.tcp.ip().to_string(), broker.tcp.port());
    target.version = version;
    target
}

fn traffic(qos: QoS, limit: u64) -> Traffic {
    Traffic {
        qos,
        payload_size: 32,
        limit: Some(limit),
        duration: Duration::from_secs(2),
        drain: Duration::from_secs(2),
        ..Traffic::default()
    }
}

fn scenario(broker: &TestBroker, kind: ScenarioKind, qos: QoS, limit: u64) -> Scenario {
    let mut scenario = Scenario::new(kind, target(broker, ProtocolVersion::V5));
    scenario.traffic = traffic(qos, limit);
    scenario
}

/// Every message arrived exactly once.
fn assert_exact(report: &Report, expected: u64) {
    assert_eq!(report.expected, Some(expected), "{report}");
    assert_eq!(report.received, expected, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.duplicated, 0, "{report}");
    // Each publisher's messages arrive in order at each subscriber [MQTT-4.6.0-5].
    assert_eq!(report.reordered, 0, "{report}");
    assert_eq!(report.unstamped, 0, "{report}");
    let latency = report.latency_us.as_ref().expect("latency measured");
    assert_eq!(latency.count, expected, "{report}");
    assert!(
        latency.p50 <= latency.p99 && latency.p99 <= latency.max,
        "{report}"
    );
    assert!(report.is_exact());
}

#[test]
fn stamp_round_trip() {
    let stamp = Stamp {
        sent_ns: 0x0102_0304_0506_0708,
        publisher: 0xA0B0_C0D0,
        seq: u64::MAX - 1,
    };
    let payload = stamp.to_payload(64);
    assert_eq!(payload.len(), 64);
    assert_eq!(Stamp::read(&payload), Some(stamp));
    assert!(payload[STAMP_LEN..].iter().all(|&b| b == 0));
    assert_eq!(Stamp::read(&payload[..STAMP_LEN - 1]), None);
    assert_eq!(stamp.to_payload(3).len(), STAMP_LEN);
}

#[test]
fn publish_template_decodes_as_the_stamped_publish() {
    for version in [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let template = PublishTemplate::new(version, "bench/topic/7", qos, 100).unwrap();
            let mut wire = BytesMut::new();
            let mut expected = Vec::new();
            for seq in 0..3u64 {
                let id = PacketId::new(seq as u16 + 40);
                let id = (qos != QoS::AtMostOnce).then_some(id).flatten();
                let stamp = Stamp {
                    sent_ns: 1_000 + seq,
                    publisher: 7,
                    seq,
                };
                template.append(&mut wire, id, &stamp);
                expected.push((id, stamp));
            }
            assert_eq!(wire.len(), 3 * template.len());
            let mut decoder = Decoder::new(version);
            for (id, stamp) in expected {
                let Some(Packet::Publish(publish)) = decoder.decode(&mut wire).unwrap() else {
                    panic!("not a PUBLISH ({version}, {qos:?})");
                };
                assert_eq!(&*publish.topic, "bench/topic/7");
                assert_eq!(publish.qos, qos);
                assert_eq!(publish.packet_id, id);
                assert_eq!(publish.payload.len(), 100);
                assert_eq!(Stamp::read(&publish.payload), Some(stamp));
            }
            assert!(wire.is_empty());
        }
    }
}

#[test]
fn sequence_tracking_counts_lost_duplicated_reordered() {
    let mut tracker = SeqTracker::new(TrackStart::Zero);
    for seq in [0, 1, 2, 5, 3, 3, 7, 4, 0] {
        tracker.record(seq);
    }
    assert_eq!(tracker.received(), 9);
    // 3 and 4 came after 5; 3 (second time) and 0 (second time) are duplicates.
    assert_eq!(tracker.reordered(), 2);
    assert_eq!(tracker.duplicated(), 2);
    assert_eq!(tracker.next_expected(), 8);
    // 6 never came; with 10 sent, 8 and 9 did not either.
    assert_eq!(tracker.lost(None), 1);
    assert_eq!(tracker.lost(Some(10)), 3);

    // A gap filled from both ends and the middle.
    let mut tracker = SeqTracker::new(TrackStart::Zero);
    for seq in [10, 0, 9, 5, 1, 2, 3, 4, 6, 7, 8] {
        tracker.record(seq);
    }
    assert_eq!(tracker.reordered(), 10);
    assert_eq!((tracker.lost(Some(11)), tracker.duplicated()), (0, 0));

    // Nothing at all from a publisher that sent 5: all lost; joining late is not loss.
    assert_eq!(SeqTracker::new(TrackStart::Zero).lost(Some(5)), 5);
    let mut late = SeqTracker::new(TrackStart::FirstSeen);
    for seq in [100, 101, 103, 102] {
        late.record(seq);
    }
    assert_eq!(
        (late.lost(None), late.reordered(), late.duplicated()),
        (0, 1, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_in_qos1_delivers_everything_once() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::FanIn, QoS::AtLeastOnce, 300);
    s.publishers = Some(4);
    let report = run_scenario(&s, None).await.unwrap();
    assert_eq!((report.publishers, report.subscribers), (4, 1));
    assert_eq!(report.sent, 1200);
    assert_eq!(report.acked, 1200);
    assert_exact(&report, 1200);
    broker.stop().await;
}

/// A broker that sheds QoS 0 beyond 2 KiB of unwritten output per subscriber: only the
/// delivery window keeps a max-rate QoS 0 fan-in from losing messages there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_rate_qos0_stays_within_the_delivery_window() {
    let broker = TestBroker::with_config(|c| c.limits.max_outbound_bytes = 2048).await;
    let mut s = scenario(&broker, ScenarioKind::FanIn, QoS::AtMostOnce, 5000);
    s.publishers = Some(4);
    s.traffic.window = 4;
    // On a loaded machine the subscriber may stall; the window must not be written off here.
    s.traffic.window_stall = Duration::from_secs(30);
    let report = run_scenario(&s, None).await.unwrap();
    assert_eq!(report.sent, 20_000);
    assert_exact(&report, 20_000);
    broker.stop().await;
}

/// `--ws`: the same scenarios over MQTT on WebSocket, QoS 0 at max rate and QoS 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_run_over_websocket() {
    let broker = TestBroker::start().await;
    for (qos, kind) in [
        (QoS::AtMostOnce, ScenarioKind::FanIn),
        (QoS::ExactlyOnce, ScenarioKind::P2p),
    ] {
        let mut s = scenario(&broker, kind, qos, 500);
        s.target.port = broker.ws.port();
        s.target.ws_path = Some("/mqtt".into());
        s.publishers = (kind == ScenarioKind::FanIn).then_some(3);
        s.pairs = (kind == ScenarioKind::P2p).then_some(3);
        let report = run_scenario(&s, None).await.unwrap();
        assert_eq!(report.sent, 1500, "{report}");
        assert_exact(&report, 1500);
    }
    // A TCP port does not speak WebSocket: a clear error, not a hang.
    let mut s = scenario(&broker, ScenarioKind::P2p, QoS::AtMostOnce, 1);
    s.target.ws_path = Some("/mqtt".into());
    s.target.connect_timeout = Duration::from_secs(2);
    s.pairs = Some(1);
    assert!(run_scenario(&s, None).await.is_err());
    broker.stop().await;
}

/// `--ifaddr`: connections come from the given local addresses in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_come_from_the_given_source_addresses() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::P2p, QoS::AtLeastOnce, 50);
    s.target.source_addrs = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
    s.pairs = Some(2);
    let report = run_scenario(&s, None).await.unwrap();
    assert_exact(&report, 100);
    // An address that is not this machine's cannot be bound.
    s.target.source_addrs = vec!["192.0.2.1".parse().unwrap()];
    assert!(run_scenario(&s, None).await.is_err());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_qos1_delivers_to_every_subscriber() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::FanOut, QoS::AtLeastOnce, 200);
    s.subscribers = Some(5);
    let report = run_scenario(&s, None).await.unwrap();
    assert_eq!(report.sent, 200);
    assert_exact(&report, 1000);
    assert_eq!(report.reordered, 0, "{report}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_qos1_open_loop_keeps_the_rate() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::P2p, QoS::AtLeastOnce, 1_000_000);
    s.pairs = Some(5);
    s.traffic.pace = Pace::Total(2_000.0);
    s.traffic.duration = Duration::from_millis(500);
    let report = run_scenario(&s, None).await.unwrap();
    // 2,000 msg/s for 0.5 s, on a schedule: about 1,000 messages, whatever the timer does.
    assert!((900..=1010).contains(&report.sent), "{report}");
    assert_eq!(report.target_rate, Some(2_000.0));
    assert_exact(&report, report.sent);
    assert_eq!(report.reordered, 0, "{report}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_counts_the_time_the_broker_holds_publishers_back() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::P2p, QoS::AtLeastOnce, 1_000_000);
    s.pairs = Some(1);
    // One message in flight and one due every 5 µs: no round trip is that fast, so the
    // publisher falls further and further behind its schedule.
    s.traffic.inflight = 1;
    s.traffic.pace = Pace::Total(200_000.0);
    s.traffic.duration = Duration::from_millis(300);
    let report = run_scenario(&s, None).await.unwrap();
    assert!(report.sent < 48_000, "{report}");
    assert_exact(&report, report.sent);
    // Timed from the schedule, the backlog shows: by the end, messages are ~0.2 s late.
    let latency = report.latency_us.as_ref().unwrap();
    assert!(latency.max > 100_000, "{report}");
    assert!(latency.p50 > 20_000, "{report}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_qos2_mqtt311_delivers_everything_once() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::P2p, QoS::ExactlyOnce, 100);
    s.target.version = ProtocolVersion::V3_1_1;
    s.pairs = Some(4);
    s.traffic.inflight = 8;
    let report = run_scenario(&s, None).await.unwrap();
    assert_eq!((report.sent, report.acked), (400, 400));
    assert_exact(&report, 400);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_qos1_delivers_each_message_once_across_the_group() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::Shared, QoS::AtLeastOnce, 200);
    s.publishers = Some(3);
    s.subscribers = Some(3);
    let report = run_scenario(&s, None).await.unwrap();
    assert_eq!((report.publishers, report.subscribers), (3, 3));
    assert_exact(&report, 600);
    // Each member sees its slice of each publisher's stream in order.
    assert_eq!(report.reordered, 0, "{report}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conn_scenario_reports_connects_and_rss() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::Conn, QoS::AtMostOnce, 1);
    s.connections = Some(50);
    s.traffic.duration = Duration::from_millis(200);
    // This process hosts the broker, so its own RSS stands in for the broker's.
    s.broker_pid = Some(std::process::id());
    let report = run_scenario(&s, None).await.unwrap();
    assert_eq!(report.conn.connections, 50);
    assert!(report.conn.connects_per_sec > 0.0);
    assert_eq!(report.conn.latency_us.as_ref().unwrap().count, 50);
    let rss = report.rss.as_ref().expect("rss measured");
    assert!(rss.before_kib > 0 && rss.after_kib > 0);
    let json = serde_json::to_string(&report).unwrap();
    let parsed: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(
        (parsed.scenario.as_str(), parsed.conn.connections),
        ("conn", 50)
    );
    assert_eq!(parsed.rss.map(|r| r.after_kib), Some(rss.after_kib));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_and_sub_commands_measure_each_other() {
    let broker = TestBroker::start().await;
    let sub = SubJob {
        target: target(&broker, ProtocolVersion::V5),
        pacing: Pacing::default(),
        count: 2,
        start_index: 1,
        topic: "cmd/#".into(),
        qos: QoS::AtLeastOnce,
        duration: Duration::from_millis(1200),
    };
    let publisher = PubJob {
        target: target(&broker, ProtocolVersion::V5),
        pacing: Pacing {
            interval: Some(Duration::from_millis(1)),
            ..Pacing::default()
        },
        traffic: Traffic {
            pace: Pace::Interval(Duration::from_millis(2)),
            ..traffic(QoS::AtLeastOnce, 100)
        },
        count: 3,
        start_index: 1,
        topic: "cmd/%i/%c".into(),
    };
    let subscribing = tokio::spawn(async move { run_sub(&sub, None).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let published = run_pub(&publisher, None).await.unwrap();
    assert_eq!((published.sent, published.acked), (300, 300));
    assert!(published.latency_us.is_none());
    let received = subscribing.await.unwrap().unwrap();
    assert_eq!(received.received, 600, "{received}");
    assert_eq!(received.expected, None);
    assert_eq!((received.lost, received.duplicated), (0, 0), "{received}");
    assert_eq!(received.latency_us.as_ref().unwrap().count, 600);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let job = ConnJob {
        target: Target::new("127.0.0.1", port),
        pacing: Pacing::default(),
        count: 3,
        start_index: 1,
        duration: Duration::from_secs(1),
        broker_pid: None,
    };
    let error = run_conn(&job, None).await.unwrap_err();
    assert!(matches!(error, BenchError::ConnectFailed { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("cannot connect to 127.0.0.1:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_options_are_refused_before_connecting() {
    let broker = TestBroker::start().await;
    let mut s = scenario(&broker, ScenarioKind::FanIn, QoS::AtMostOnce, 10);
    s.traffic.payload_size = 19;
    assert!(matches!(
        run_scenario(&s, None).await,
        Err(BenchError::Config(_))
    ));
    let mut s = scenario(&broker, ScenarioKind::FanOut, QoS::AtMostOnce, 10);
    s.publishers = Some(2);
    assert!(matches!(
        run_scenario(&s, None).await,
        Err(BenchError::Config(_))
    ));
    broker.stop().await;
}
