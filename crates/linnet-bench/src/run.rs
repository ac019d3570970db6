//! The runners: [`run_pub`], [`run_sub`], [`run_conn`] and [`run_scenario`]. Each one builds a
//! plan (who connects, who subscribes to what, who publishes where, which subscriber group
//! expects which publishers), runs it in phases (connect subscribers, connect publishers,
//! send, drain, stop) and turns what the tasks measured into a [`Report`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use linnet_proto::{ProtocolVersion, QoS, TopicName};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, Instant, MissedTickBehavior};

use crate::config::{
    expand_topic, ConnJob, Pacing, PubJob, Scenario, ScenarioKind, SubJob, Target, Traffic,
};
use crate::conn::{connect_many, hold_idle, stopped, Connected, Counters, Handshake};
use crate::error::BenchError;
use crate::pacer::{Pacer, Schedule};
use crate::payload::PublishTemplate;
use crate::publisher::{run_publisher, DeliveryWindow, PubOutcome, PubPlan};
use crate::report::{ConnStats, Progress, ProgressFn, Report, RssStats};
use crate::stats::{LatencyHistogram, TrackStart};
use crate::subscriber::{run_subscriber, Group};

/// The drain also ends after this long without a new delivery (Mosquitto can pause about a
/// second before it sends what it queued for a subscriber).
const DRAIN_IDLE: Duration = Duration::from_secs(2);
/// Publishers start this long after the last connection is up.
const START_DELAY: Duration = Duration::from_millis(20);
/// Extra time on top of a run's planned length before its hard timeout.
const HARD_SLACK: Duration = Duration::from_secs(30);
/// Sending time when a run is bounded by its message limit only.
const NO_TIME_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// How long the broker gets to settle before its RSS is read after connecting.
const RSS_SETTLE: Duration = Duration::from_millis(300);

/// Publishers at `pacing` on `topic`, sending `traffic`: emqtt-bench `pub`.
pub async fn run_pub(job: &PubJob, progress: Option<ProgressFn>) -> Result<Report, BenchError> {
    job.traffic.validate()?;
    let mut plan = Plan::new("pub", &job.traffic);
    for n in 0..job.count {
        let index = job.start_index + n as u32;
        let client_id = job.target.client_id('p', index);
        let topic = expand_topic(&job.topic, index, &client_id);
        plan.publishers.push(PubSpec {
            index,
            client_id,
            topic,
        });
    }
    run_plan(&job.target, &job.pacing, plan, progress).await
}

/// Subscribers to `topic` for `duration`, measuring whatever stamped messages arrive:
/// emqtt-bench `sub`. Loss counts only gaps (the publishers' totals are unknown here).
pub async fn run_sub(job: &SubJob, progress: Option<ProgressFn>) -> Result<Report, BenchError> {
    if job.duration.is_zero() {
        return Err(BenchError::Config(
            "a sub run needs a duration above 0".into(),
        ));
    }
    let traffic = Traffic {
        qos: job.qos,
        duration: job.duration,
        ..Traffic::default()
    };
    let mut plan = Plan::new("sub", &traffic);
    for n in 0..job.count {
        let index = job.start_index + n as u32;
        let client_id = job.target.client_id('s', index);
        let filter = expand_topic(&job.topic, index, &client_id);
        plan.groups.push(GroupPlan {
            start: TrackStart::FirstSeen,
            shared: false,
            expects: None,
        });
        plan.subscribers.push(SubSpec {
            index,
            client_id,
            filter,
            group: plan.groups.len() - 1,
        });
    }
    run_plan(&job.target, &job.pacing, plan, progress).await
}

/// Idle connections held for `duration`: emqtt-bench `conn`.
pub async fn run_conn(job: &ConnJob, progress: Option<ProgressFn>) -> Result<Report, BenchError> {
    hold_connections(
        "conn",
        &job.target,
        &job.pacing,
        job.count,
        job.start_index,
        job.duration,
        job.broker_pid,
        progress,
    )
    .await
}

/// Runs one of the [scenarios](ScenarioKind).
pub async fn run_scenario(
    scenario: &Scenario,
    progress: Option<ProgressFn>,
) -> Result<Report, BenchError> {
    if scenario.kind == ScenarioKind::Conn {
        return hold_connections(
            "conn",
            &scenario.target,
            &scenario.pacing,
            scenario.connections.unwrap_or(1000),
            0,
            scenario.traffic.duration,
            scenario.broker_pid,
            progress,
        )
        .await;
    }
    scenario.traffic.validate()?;
    let plan = scenario_plan(scenario)?;
    run_plan(&scenario.target, &scenario.pacing, plan, progress).await
}

/// One publisher of a plan.
#[derive(Debug)]
struct PubSpec {
    index: u32,
    client_id: String,
    topic: String,
}

/// One subscriber of a plan, recording into `group`.
#[derive(Debug)]
struct SubSpec {
    index: u32,
    client_id: String,
    filter: String,
    group: usize,
}

/// A measurement group: which publishers it expects (`None`: unknown).
#[derive(Debug)]
struct GroupPlan {
    start: TrackStart,
    /// Members of one shared subscription.
    shared: bool,
    expects: Option<Vec<u32>>,
}

#[derive(Debug)]
struct Plan {
    name: String,
    traffic: Traffic,
    publishers: Vec<PubSpec>,
    subscribers: Vec<SubSpec>,
    groups: Vec<GroupPlan>,
}

impl Plan {
    fn new(name: &str, traffic: &Traffic) -> Self {
        Self {
            name: name.to_owned(),
            traffic: traffic.clone(),
            publishers: Vec::new(),
            subscribers: Vec::new(),
            groups: Vec::new(),
        }
    }
}

fn scenario_plan(scenario: &Scenario) -> Result<Plan, BenchError> {
    let kind = scenario.kind;
    let target = &scenario.target;
    let prefix = scenario
        .topic_prefix
        .clone()
        .unwrap_or_else(|| format!("linnet-bench/{}", std::process::id()));
    let base = format!("{prefix}/{kind}");
    let mut plan = Plan::new(kind.name(), &scenario.traffic);
    let fixed = |what: &str, given: Option<usize>| match given {
        Some(n) if n != 1 => Err(BenchError::Config(format!(
            "{kind} has exactly one {what} (got {n})"
        ))),
        _ => Ok(()),
    };
    let positive = |what: &str, n: usize| {
        if n == 0 {
            Err(BenchError::Config(format!(
                "{kind} needs at least one {what}"
            )))
        } else {
            Ok(n)
        }
    };
    let publisher = |i: usize| PubSpec {
        index: i as u32,
        client_id: target.client_id('p', i as u32),
        topic: format!("{base}/{i}"),
    };
    let subscriber = |i: usize, filter: String, group: usize| SubSpec {
        index: i as u32,
        client_id: target.client_id('s', i as u32),
        filter,
        group,
    };
    match kind {
        ScenarioKind::FanIn => {
            fixed("subscriber", scenario.subscribers)?;
            let publishers = positive("publisher", scenario.publishers.unwrap_or(10))?;
            plan.publishers = (0..publishers).map(publisher).collect();
            plan.groups.push(GroupPlan {
                start: TrackStart::Zero,
                shared: false,
                expects: Some((0..publishers as u32).collect()),
            });
            plan.subscribers.push(subscriber(0, format!("{base}/+"), 0));
        }
        ScenarioKind::FanOut => {
            fixed("publisher", scenario.publishers)?;
            let subscribers = positive("subscriber", scenario.subscribers.unwrap_or(100))?;
            plan.publishers.push(PubSpec {
                topic: base.clone(),
                ..publisher(0)
            });
            for i in 0..subscribers {
                plan.groups.push(GroupPlan {
                    start: TrackStart::Zero,
                    shared: false,
                    expects: Some(vec![0]),
                });
                plan.subscribers.push(subscriber(i, base.clone(), i));
            }
        }
        ScenarioKind::P2p => {
            let pairs = positive("pair", scenario.pairs.unwrap_or(100))?;
            for i in 0..pairs {
                let spec = publisher(i);
                plan.groups.push(GroupPlan {
                    start: TrackStart::Zero,
                    shared: false,
                    expects: Some(vec![i as u32]),
                });
                plan.subscribers.push(subscriber(i, spec.topic.clone(), i));
                plan.publishers.push(spec);
            }
        }
        ScenarioKind::Shared => {
            let publishers = positive("publisher", scenario.publishers.unwrap_or(10))?;
            let subscribers = positive("subscriber", scenario.subscribers.unwrap_or(4))?;
            plan.publishers = (0..publishers).map(publisher).collect();
            plan.groups.push(GroupPlan {
                start: TrackStart::Zero,
                shared: true,
                expects: Some((0..publishers as u32).collect()),
            });
            for i in 0..subscribers {
                plan.subscribers
                    .push(subscriber(i, format!("$share/bench/{base}/+"), 0));
            }
        }
        ScenarioKind::Conn => {
            return Err(BenchError::Config(
                "conn is not a publish/subscribe scenario".into(),
            ))
        }
    }
    Ok(plan)
}

async fn resolve(target: &Target) -> Result<SocketAddr, BenchError> {
    let resolve_error = |source| BenchError::Resolve {
        host: target.host.clone(),
        port: target.port,
        source,
    };
    let mut addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(resolve_error)?;
    addrs.next().ok_or_else(|| {
        resolve_error(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        ))
    })
}

/// The longest a run with `connections` connections and this traffic may take.
fn hard_budget(target: &Target, pacing: &Pacing, connections: usize, hold: Duration) -> Duration {
    let connect = pacing.gap().saturating_mul(connections as u32) + target.connect_timeout * 2;
    connect + hold + HARD_SLACK
}

/// Protocol name for reports.
fn protocol_name(version: ProtocolVersion) -> String {
    version.to_string()
}

fn seconds_between(from: Instant, to: Option<Instant>) -> f64 {
    to.map_or(0.0, |to| to.saturating_duration_since(from).as_secs_f64())
}

fn per_sec(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Starts the once-a-second progress ticker; it ends when `stop` fires or is dropped.
fn spawn_ticker(
    progress: Option<ProgressFn>,
    counters: &Arc<Counters>,
    connections: u64,
    mut stop: watch::Receiver<bool>,
) {
    let Some(progress) = progress else {
        return;
    };
    let counters = Arc::clone(counters);
    tokio::spawn(async move {
        let started = Instant::now();
        let mut ticks =
            tokio::time::interval_at(started + Duration::from_secs(1), Duration::from_secs(1));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut last_sent, mut last_received, mut last_at) = (0, 0, started);
        loop {
            tokio::select! {
                _ = stopped(&mut stop) => break,
                _ = ticks.tick() => {
                    let now = Instant::now();
                    let sent = counters.sent.load(Ordering::Relaxed);
                    let received = counters.received.load(Ordering::Relaxed);
                    let interval = now.saturating_duration_since(last_at).as_secs_f64();
                    progress(&Progress {
                        elapsed_seconds: now.saturating_duration_since(started).as_secs_f64(),
                        connected: counters.connected.load(Ordering::Relaxed),
                        connections,
                        sent,
                        received,
                        acked: counters.acked.load(Ordering::Relaxed),
                        sent_per_sec: per_sec(sent - last_sent, interval),
                        received_per_sec: per_sec(received - last_received, interval),
                    });
                    (last_sent, last_received, last_at) = (sent, received, now);
                }
            }
        }
    });
}

fn conn_stats(phases: &[&Connected]) -> ConnStats {
    let mut latency = LatencyHistogram::new();
    let mut connections = 0;
    let mut seconds = 0.0;
    for phase in phases {
        latency.merge(&phase.latency);
        connections += phase.conns.len() as u64;
        seconds += phase.elapsed.as_secs_f64();
    }
    ConnStats {
        connections,
        connects_per_sec: per_sec(connections, seconds),
        connect_seconds: seconds,
        latency_us: latency.percentiles(),
    }
}

async fn run_plan(
    target: &Target,
    pacing: &Pacing,
    plan: Plan,
    progress: Option<ProgressFn>,
) -> Result<Report, BenchError> {
    let traffic = &plan.traffic;
    let sending = if traffic.duration.is_zero() {
        NO_TIME_LIMIT
    } else {
        traffic.duration
    };
    let connections = plan.publishers.len() + plan.subscribers.len();
    let budget = hard_budget(target, pacing, connections, sending + traffic.drain);
    match tokio::time::timeout(budget, execute(target, pacing, &plan, sending, progress)).await {
        Ok(result) => result,
        Err(_) => Err(BenchError::HardTimeout(budget)),
    }
}

async fn execute(
    target: &Target,
    pacing: &Pacing,
    plan: &Plan,
    sending: Duration,
    progress: Option<ProgressFn>,
) -> Result<Report, BenchError> {
    let run_start = Instant::now();
    let traffic = &plan.traffic;
    let target = Arc::new(target.clone());
    let addr = resolve(&target).await?;
    // Validate every topic before connecting anything.
    let mut templates = Vec::with_capacity(plan.publishers.len());
    for spec in &plan.publishers {
        TopicName::new(spec.topic.as_str())
            .map_err(|e| BenchError::Config(format!("invalid topic name {:?}: {e}", spec.topic)))?;
        templates.push(PublishTemplate::new(
            target.version,
            &spec.topic,
            traffic.qos,
            traffic.payload_size,
        )?);
    }
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_ticker(
        progress,
        &counters,
        (plan.publishers.len() + plan.subscribers.len()) as u64,
        stop_rx.clone(),
    );

    // Subscribers first, so nothing published is missed; then publishers.
    let sub_handshakes = plan
        .subscribers
        .iter()
        .map(|spec| Handshake {
            index: spec.index,
            client_id: spec.client_id.clone(),
            subscribe: Some((spec.filter.clone(), traffic.qos)),
        })
        .collect();
    let mut subs = connect_many(addr, &target, pacing, sub_handshakes, &counters).await?;
    let pub_handshakes = plan
        .publishers
        .iter()
        .map(|spec| Handshake {
            index: spec.index,
            client_id: spec.client_id.clone(),
            subscribe: None,
        })
        .collect();
    let mut pubs = connect_many(addr, &target, pacing, pub_handshakes, &counters).await?;
    let conn = conn_stats(&[&subs, &pubs]);

    let start = Instant::now() + START_DELAY;
    let end = start + sending;
    let drain_until = end + traffic.drain;
    let hard = drain_until + HARD_SLACK;
    let interval_ns = traffic.pace.interval_ns(plan.publishers.len());

    let groups: Vec<Arc<Mutex<Group>>> = plan
        .groups
        .iter()
        .map(|g| Arc::new(Mutex::new(Group::new(g.start, g.shared))))
        .collect();
    let mut sub_tasks = JoinSet::new();
    for (conn, spec) in subs.conns.drain(..).zip(&plan.subscribers) {
        let group = Arc::clone(&groups[spec.group]);
        sub_tasks.spawn(run_subscriber(
            conn,
            group,
            Arc::clone(&counters),
            stop_rx.clone(),
            hard,
        ));
    }
    let publishers = plan.publishers.len().max(1) as u64;
    let phase_ns =
        |slot: usize| interval_ns.map_or(0, |interval| interval / publishers * slot as u64);
    // Open loop: one pacer thread wakes each publisher on its schedule.
    let wakes: Vec<Arc<Notify>> = (0..plan.publishers.len())
        .map(|_| Arc::new(Notify::new()))
        .collect();
    let pacer = match interval_ns {
        Some(interval) if !plan.publishers.is_empty() => {
            let schedules = wakes
                .iter()
                .enumerate()
                .map(|(slot, wake)| Schedule {
                    first_due: (start + Duration::from_nanos(phase_ns(slot))).into_std(),
                    interval_ns: interval,
                    wake: Arc::clone(wake),
                })
                .collect();
            Pacer::start(schedules, end.into_std())
        }
        _ => None,
    };
    let paced = pacer.is_some();
    // Max rate with subscribers in this process: bound what is in flight end to end.
    let copies = plan
        .groups
        .iter()
        .filter(|g| g.expects.as_ref().map_or(true, |e| e.contains(&0)))
        .count() as u64;
    let delivery_window =
        (interval_ns.is_none() && traffic.window > 0 && copies > 0).then(|| DeliveryWindow {
            copies,
            max_messages: traffic.window.saturating_mul(publishers),
            stall: traffic.window_stall,
        });
    let mut pub_tasks = JoinSet::new();
    for (slot, (conn, template)) in pubs.conns.drain(..).zip(templates).enumerate() {
        let phase_ns = phase_ns(slot);
        let pub_plan = PubPlan {
            template,
            qos: traffic.qos,
            interval_ns,
            phase_ns,
            limit: traffic.limit.unwrap_or(u64::MAX),
            inflight: traffic.inflight,
            batch_bytes: traffic.batch_bytes,
            start,
            end,
            drain_until,
            paced: paced.then(|| Arc::clone(&wakes[slot])),
            delivery_window,
        };
        pub_tasks.spawn(run_publisher(conn, pub_plan, Arc::clone(&counters)));
    }

    let mut outcomes: Vec<PubOutcome> = Vec::with_capacity(plan.publishers.len());
    while let Some(joined) = pub_tasks.join_next().await {
        outcomes.push(joined.map_err(|e| BenchError::Task(e.to_string()))??);
    }
    drop(pacer);
    if plan.publishers.is_empty() {
        // A lone `sub` run listens for the whole duration.
        tokio::select! {
            _ = sleep_until(end) => {}
            Some(joined) = sub_tasks.join_next() => {
                joined.map_err(|e| BenchError::Task(e.to_string()))??;
            }
        }
    }

    // Expected deliveries per group, from what each publisher sent.
    let sent_by = |index: u32| {
        outcomes
            .iter()
            .find(|o| o.index == index)
            .map_or(0, |o| o.sent)
    };
    let expected_by_group: Vec<Option<Vec<(u32, u64)>>> = plan
        .groups
        .iter()
        .map(|g| {
            g.expects
                .as_ref()
                .map(|list| list.iter().map(|&p| (p, sent_by(p))).collect())
        })
        .collect();
    let expected: Option<u64> = if plan.subscribers.is_empty() || plan.publishers.is_empty() {
        None
    } else {
        expected_by_group
            .iter()
            .map(|e| {
                e.as_ref()
                    .map(|list| list.iter().map(|&(_, s)| s).sum::<u64>())
            })
            .sum()
    };

    // Drain: wait for deliveries still on their way.
    if let Some(expected) = expected {
        let deadline = Instant::now() + traffic.drain;
        let mut last = counters.received.load(Ordering::Relaxed);
        let mut last_change = Instant::now();
        loop {
            let now = Instant::now();
            let received = counters.received.load(Ordering::Relaxed);
            if received != last {
                last = received;
                last_change = now;
            }
            if received >= expected
                || now >= deadline
                || now.saturating_duration_since(last_change) >= DRAIN_IDLE
            {
                break;
            }
            sleep(Duration::from_millis(10)).await;
        }
    }
    let _ = stop_tx.send(true);
    while let Some(joined) = sub_tasks.join_next().await {
        joined.map_err(|e| BenchError::Task(e.to_string()))??;
    }

    let mut latency = LatencyHistogram::new();
    let (mut received, mut unstamped) = (0, 0);
    let (mut lost, mut duplicated, mut reordered) = (0, 0, 0);
    let mut first_receive: Option<Instant> = None;
    let mut last_receive: Option<Instant> = None;
    for (group, expects) in groups.iter().zip(&expected_by_group) {
        let group = group.lock().unwrap_or_else(PoisonError::into_inner);
        let totals = group.totals(expects.as_deref());
        lost += totals.lost;
        duplicated += totals.duplicated;
        reordered += totals.reordered;
        received += group.received;
        unstamped += group.foreign;
        latency.merge(&group.latency);
        last_receive = last_receive.max(group.last_receive);
        first_receive = match (first_receive, group.first_receive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let sent: u64 = outcomes.iter().map(|o| o.sent).sum();
    let acked: u64 = outcomes.iter().map(|o| o.acked).sum();
    let send_end = outcomes.iter().map(|o| o.send_end).max();
    let send_seconds = seconds_between(start, send_end);
    // With publishers here, from the start of sending; a lone `sub` cannot know when the
    // publishers started, so from its first delivery.
    let receive_from = if plan.publishers.is_empty() {
        first_receive.unwrap_or(start)
    } else {
        start
    };
    let receive_seconds = seconds_between(receive_from, last_receive);
    Ok(Report {
        scenario: plan.name.clone(),
        protocol: protocol_name(target.version),
        qos: traffic.qos as u8,
        payload_size: traffic.payload_size,
        publishers: plan.publishers.len(),
        subscribers: plan.subscribers.len(),
        target_rate: if plan.publishers.is_empty() {
            None
        } else {
            traffic.pace.total_rate(plan.publishers.len())
        },
        conn,
        sent,
        acked,
        send_seconds,
        sent_per_sec: per_sec(sent, send_seconds),
        received,
        expected,
        receive_seconds,
        received_per_sec: per_sec(received, receive_seconds),
        lost,
        duplicated,
        reordered,
        unstamped,
        latency_us: latency.percentiles(),
        rss: None,
        elapsed_seconds: run_start.elapsed().as_secs_f64(),
    })
}

/// VmRSS of `pid` in KiB, from `/proc/PID/status`.
fn read_rss_kib(pid: u32) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|e| BenchError::Config(format!("cannot read {path} (--broker-pid): {e}")))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| BenchError::Config(format!("no VmRSS line in {path}")))
}

#[allow(clippy::too_many_arguments)]
async fn hold_connections(
    name: &str,
    target: &Target,
    pacing: &Pacing,
    count: usize,
    start_index: u32,
    hold: Duration,
    broker_pid: Option<u32>,
    progress: Option<ProgressFn>,
) -> Result<Report, BenchError> {
    if count == 0 {
        return Err(BenchError::Config(
            "conn needs at least one connection".into(),
        ));
    }
    let budget = hard_budget(target, pacing, count, hold + RSS_SETTLE);
    let run = async {
        let run_start = Instant::now();
        let target = Arc::new(target.clone());
        let addr = resolve(&target).await?;
        let before = broker_pid.map(read_rss_kib).transpose()?;
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        spawn_ticker(progress, &counters, count as u64, stop_rx.clone());
        let handshakes = (0..count)
            .map(|n| {
                let index = start_index + n as u32;
                Handshake {
                    index,
                    client_id: target.client_id('c', index),
                    subscribe: None,
                }
            })
            .collect();
        let mut connected = connect_many(addr, &target, pacing, handshakes, &counters).await?;
        let conn = conn_stats(&[&connected]);
        let held_from = Instant::now();
        let hard = held_from + hold + HARD_SLACK;
        let mut tasks = JoinSet::new();
        for c in connected.conns.drain(..) {
            tasks.spawn(hold_idle(c, stop_rx.clone(), hard));
        }
        let rss = match (broker_pid, before) {
            (Some(pid), Some(before_kib)) => {
                sleep(RSS_SETTLE).await;
                let after_kib = read_rss_kib(pid)?;
                Some(RssStats {
                    pid,
                    before_kib,
                    after_kib,
                    bytes_per_connection: after_kib.saturating_sub(before_kib) as f64 * 1024.0
                        / count as f64,
                })
            }
            _ => None,
        };
        tokio::select! {
            _ = sleep_until(held_from + hold) => {}
            Some(joined) = tasks.join_next() => {
                joined.map_err(|e| BenchError::Task(e.to_string()))??;
            }
        }
        let _ = stop_tx.send(true);
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|e| BenchError::Task(e.to_string()))??;
        }
        Ok(Report {
            scenario: name.to_owned(),
            protocol: protocol_name(target.version),
            qos: QoS::AtMostOnce as u8,
            payload_size: 0,
            publishers: 0,
            subscribers: 0,
            target_rate: None,
            conn,
            sent: 0,
            acked: 0,
            send_seconds: 0.0,
            sent_per_sec: 0.0,
            received: 0,
            expected: None,
            receive_seconds: 0.0,
            received_per_sec: 0.0,
            lost: 0,
            duplicated: 0,
            reordered: 0,
            unstamped: 0,
            latency_us: None,
            rss,
            elapsed_seconds: run_start.elapsed().as_secs_f64(),
        })
    };
    match tokio::time::timeout(budget, run).await {
        Ok(result) => result,
        Err(_) => Err(BenchError::HardTimeout(budget)),
    }
}
