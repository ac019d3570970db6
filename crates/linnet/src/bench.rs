//! `linnet bench`: the command line of the load generator (emqtt-bench's flags), delegating
//! every run to the `linnet-bench` library. Progress goes to stderr once a second; the final
//! report to stdout, as text or `--json`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgAction, Args, Subcommand};
use linnet_bench::{
    BrokerSpec, Case, CompareJob, ConnJob, Pace, Pacing, Progress, ProgressFn, PubJob, QoS, Report,
    Scenario, ScenarioKind, SubJob, Target, Traffic,
};

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    pub(crate) command: BenchCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Open COUNT idle connections and hold them: connects/s, connect latency.
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  linnet bench conn -h 127.0.0.1 -c 1000 -R 500 --duration 30"
    )]
    Conn(ConnArgs),
    /// Publish stamped messages from COUNT clients, at a fixed rate or as fast as allowed.
    #[command(
        disable_help_flag = true,
        after_help = "Examples:\n  linnet bench pub -t bench/%i -c 10 -I 10 -s 64\n  linnet bench pub -t bench/%i -c 10 -q 1 -F 100 -L 10000"
    )]
    Pub(PubArgs),
    /// Subscribe COUNT clients and measure what arrives: rate, latency, loss.
    #[command(
        disable_help_flag = true,
        after_help = "Example:\n  linnet bench sub -t 'bench/#' -c 1 -q 1 --duration 60"
    )]
    Sub(SubArgs),
    /// Run publishers and subscribers in one process and check every message:
    /// fan-in, fan-out, p2p, shared, conn.
    #[command(
        disable_help_flag = true,
        after_help = "Examples:\n  linnet bench scenario fan-in -P 10 -q 0 -s 64 --duration 5\n  linnet bench scenario fan-out -S 100\n  linnet bench scenario p2p -n 100 -q 1\n  linnet bench scenario shared -P 10 -S 4 -q 1 --rate 5000\n  linnet bench scenario conn -c 10000 --broker-pid $(pidof linnet)"
    )]
    Scenario(ScenarioArgs),
    /// Run scenarios against several brokers in turn (A B A B … for several rounds) and
    /// write a report: Markdown and an HTML page with charts, medians, spread and ratios.
    #[command(
        disable_help_flag = true,
        after_help = "Brokers are NAME=COMMAND (COMMAND contains {port}; compare starts and stops it for\n\
every run) or NAME=mqtt://HOST:PORT (already running). Cases are the words of\n\
`linnet bench scenario` without -h/-p.\n\n\
Examples:\n  linnet bench compare --broker 'linnet=linnet broker --tcp 127.0.0.1:{port}' \\\n      --broker 'mosquitto=mosquitto -p {port}' --suite targets --rounds 3 \\\n      --pin-broker 0 --pin-load 1 --out bench-report\n  linnet bench compare --broker a=mqtt://127.0.0.1:1883 --broker b=mqtt://127.0.0.1:1884 \\\n      --case 'fan-in -P 10 -q 1' --case 'p2p -n 10 -q 1 --rate 1000'"
    )]
    Compare(CompareArgs),
}

/// `linnet bench compare`.
#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// A broker: NAME=COMMAND with {port} in it, or NAME=mqtt://HOST:PORT (repeatable; runs
    /// alternate in this order).
    #[arg(
        long = "broker",
        value_name = "NAME=COMMAND",
        required_unless_present_any = ["list_suite", "from"]
    )]
    brokers: Vec<String>,
    /// Write the report again from an earlier run's results.json, without running anything.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["brokers", "cases", "suite"])]
    from: Option<std::path::PathBuf>,
    /// Print the cases of a suite, one per line, and exit.
    #[arg(long, value_name = "NAME")]
    list_suite: Option<String>,
    /// A scenario in the words of `linnet bench scenario`, e.g. "fan-in -P 10 -q 0"
    /// (repeatable).
    #[arg(long = "case", value_name = "SCENARIO ARGS")]
    cases: Vec<String>,
    /// A ready-made set of cases: targets (the benchmark targets), full (plus QoS 1/2,
    /// MQTT 3.1.1, shared), smoke (seconds). Default: targets, unless --case is given.
    #[arg(long, value_name = "NAME")]
    suite: Option<String>,
    /// Rounds: each case runs once per broker per round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds each run sends (unless its case sets --duration).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    duration: f64,
    /// Pin started brokers to these CPUs (taskset -c), e.g. 0.
    #[arg(long, value_name = "CPUS")]
    pin_broker: Option<String>,
    /// Pin the load to these CPUs (taskset -c), e.g. 1.
    #[arg(long, value_name = "CPUS")]
    pin_load: Option<String>,
    /// Port started brokers listen on ({port}).
    #[arg(long, default_value_t = 18830)]
    port: u16,
    /// The broker ratios are taken against (default: one named mosquitto, else the last).
    #[arg(long, value_name = "NAME")]
    baseline: Option<String>,
    /// Folder for report.md, report.html and results.json.
    #[arg(short = 'o', long, value_name = "DIR", default_value = "bench-report")]
    out: std::path::PathBuf,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

impl CompareArgs {
    pub(crate) fn job(&self) -> anyhow::Result<CompareJob> {
        let brokers = self
            .brokers
            .iter()
            .map(|text| BrokerSpec::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cases = self
            .cases
            .iter()
            .map(|text| Case::parse(text))
            .collect::<Result<Vec<_>, _>>()?;
        match (&self.suite, cases.is_empty()) {
            (Some(name), _) => cases.extend(linnet_bench::suite(name)?),
            (None, true) => cases = linnet_bench::suite("targets")?,
            (None, false) => {}
        }
        let baseline = match &self.baseline {
            Some(name) => brokers
                .iter()
                .position(|b| &b.name == name)
                .with_context(|| format!("--baseline {name}: no --broker has that name"))?,
            None => brokers
                .iter()
                .position(|b| b.name == "mosquitto")
                .unwrap_or(brokers.len().saturating_sub(1)),
        };
        if self.rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        if !(self.duration.is_finite() && self.duration > 0.0) {
            bail!(
                "--duration {}: not a positive number of seconds",
                self.duration
            );
        }
        let exe = std::env::current_exe().context("cannot find the linnet executable")?;
        Ok(CompareJob {
            brokers,
            cases,
            rounds: self.rounds,
            duration_secs: self.duration,
            pin_broker: self.pin_broker.clone(),
            pin_load: self.pin_load.clone(),
            port: self.port,
            load_program: vec![
                exe.to_string_lossy().into_owned(),
                "bench".to_owned(),
                "scenario".to_owned(),
            ],
            baseline,
        })
    }
}

/// Runs `linnet bench compare`: every run, then the report files.
fn run_compare(args: &CompareArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.list_suite {
        for case in linnet_bench::suite(name)? {
            println!("{}", case.label);
        }
        return Ok(());
    }
    let result = match &args.from {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a compare results.json", path.display()))?
        }
        None => {
            let job = args.job()?;
            let quiet = args.quiet;
            linnet_bench::run_compare(&job, |line| {
                if !quiet {
                    eprintln!("{line}");
                }
            })?
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let markdown = linnet_bench::compare_markdown(&result);
    let files = [
        ("report.md", markdown.clone()),
        ("report.html", linnet_bench::compare_html(&result)),
        (
            "results.json",
            serde_json::to_string_pretty(&result).context("cannot write JSON")?,
        ),
    ];
    for (name, text) in files {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    print!("{markdown}");
    eprintln!(
        "report: {0}/report.md, {0}/report.html, {0}/results.json",
        args.out.display()
    );
    let failed = result.samples.iter().filter(|s| s.report.is_none()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} runs failed (see the report)",
            result.samples.len()
        );
    }
    Ok(())
}

/// Where the broker is (emqtt-bench's `-h -p -V`).
#[derive(Debug, Args)]
pub(crate) struct BrokerOpts {
    /// Broker host name or address.
    #[arg(short = 'h', long, default_value = "localhost")]
    host: String,
    /// Broker port (default 1883, or 8083 with --ws).
    #[arg(short = 'p', long)]
    port: Option<u16>,
    /// MQTT over WebSocket (subprotocol `mqtt`) instead of TCP.
    #[arg(long)]
    ws: bool,
    /// The WebSocket path.
    #[arg(long, value_name = "PATH", default_value = "/mqtt")]
    ws_path: String,
    /// MQTT version: 3 (3.1), 4 (3.1.1) or 5 (5.0).
    #[arg(short = 'V', long = "protocol-version", value_name = "3|4|5", default_value_t = 5,
          value_parser = clap::value_parser!(u8).range(3..=5))]
    version: u8,
    /// Keep alive in seconds.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    keep_alive: u16,
    /// Local source addresses to connect from, in turn, comma-separated (e.g.
    /// 127.0.0.2,127.0.0.3: each gives another 64k ports for `conn` runs).
    #[arg(long, value_name = "ADDR,...")]
    ifaddr: Option<String>,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

/// How fast connections open (emqtt-bench's `-i -R`).
#[derive(Debug, Args)]
pub(crate) struct PacingOpts {
    /// Milliseconds between two connection starts (default: no wait).
    #[arg(short = 'i', long = "interval", value_name = "MS")]
    conn_interval: Option<f64>,
    /// Connection starts per second (default: as fast as --conn-concurrency allows).
    #[arg(short = 'R', long = "conn-rate", value_name = "N")]
    conn_rate: Option<f64>,
    /// Most connection handshakes in progress at once.
    #[arg(long, value_name = "N", default_value_t = 100)]
    conn_concurrency: usize,
}

/// What publishers send.
#[derive(Debug, Args)]
pub(crate) struct TrafficOpts {
    /// QoS of publishes and subscriptions.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Payload size in bytes (at least 20: timestamp, publisher, sequence).
    #[arg(short = 's', long = "size", default_value_t = 64)]
    size: usize,
    /// Fixed rate: milliseconds between two messages of one publisher (fractions allowed).
    #[arg(
        short = 'I',
        long = "interval-of-msg",
        value_name = "MS",
        conflicts_with = "rate"
    )]
    msg_interval: Option<f64>,
    /// Fixed rate: messages per second across all publishers. Without -I or --rate,
    /// publishers send as fast as the in-flight window allows.
    #[arg(long, value_name = "MSG/S")]
    rate: Option<f64>,
    /// Messages per publisher (default: until --duration ends).
    #[arg(short = 'L', long, value_name = "N")]
    limit: Option<u64>,
    /// QoS 1/2 messages a publisher may have unacknowledged.
    #[arg(short = 'F', long, value_name = "N", default_value_t = 64)]
    inflight: u16,
    /// Max rate in scenarios: messages per publisher sent but not yet delivered to every
    /// subscriber (0: unbounded; then a broker that drops or buffers looks faster).
    #[arg(long, value_name = "N", default_value_t = 100)]
    window: u64,
}

/// Length and output.
#[derive(Debug, Args)]
pub(crate) struct RunOpts {
    /// Seconds to run (publishers send, subscribers listen, connections are held).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    duration: f64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

/// User name and password with emqtt-bench's short flags.
#[derive(Debug, Args)]
pub(crate) struct CredentialOpts {
    /// User name.
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long)]
    password: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ConnArgs {
    #[command(flatten)]
    broker: BrokerOpts,
    /// Connections to open.
    #[arg(short = 'c', long, default_value_t = 1000)]
    count: usize,
    /// Index of the first client (client ids and %i count from it).
    #[arg(short = 'n', long = "start-number", default_value_t = 1)]
    start: u32,
    /// Broker process id: report its RSS growth per connection (from /proc).
    #[arg(long, value_name = "PID")]
    broker_pid: Option<u32>,
    #[command(flatten)]
    pacing: PacingOpts,
    #[command(flatten)]
    credentials: CredentialOpts,
    #[command(flatten)]
    run: RunOpts,
}

#[derive(Debug, Args)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    broker: BrokerOpts,
    /// Publishers.
    #[arg(short = 'c', long, default_value_t = 1)]
    count: usize,
    /// Index of the first client (client ids and %i count from it).
    #[arg(short = 'n', long = "start-number", default_value_t = 1)]
    start: u32,
    /// Topic: %i is the client index, %c the client id.
    #[arg(short = 't', long)]
    topic: String,
    #[command(flatten)]
    traffic: TrafficOpts,
    #[command(flatten)]
    pacing: PacingOpts,
    #[command(flatten)]
    credentials: CredentialOpts,
    #[command(flatten)]
    run: RunOpts,
}

#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    broker: BrokerOpts,
    /// Subscribers.
    #[arg(short = 'c', long, default_value_t = 1)]
    count: usize,
    /// Index of the first client (client ids and %i count from it).
    #[arg(short = 'n', long = "start-number", default_value_t = 1)]
    start: u32,
    /// Topic filter: %i is the client index, %c the client id.
    #[arg(short = 't', long)]
    topic: String,
    /// QoS of the subscriptions.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    #[command(flatten)]
    pacing: PacingOpts,
    #[command(flatten)]
    credentials: CredentialOpts,
    #[command(flatten)]
    run: RunOpts,
}

#[derive(Debug, Args)]
pub(crate) struct ScenarioArgs {
    /// fan-in (P -> 1 on a wildcard), fan-out (1 -> S), p2p (N pairs), shared (P -> a
    /// $share group of S), conn (C idle connections).
    #[arg(value_name = "SCENARIO")]
    kind: ScenarioKind,
    #[command(flatten)]
    broker: BrokerOpts,
    /// Publishers (fan-in, shared; default 10).
    #[arg(short = 'P', long)]
    publishers: Option<usize>,
    /// Subscribers (fan-out default 100, shared default 4).
    #[arg(short = 'S', long)]
    subscribers: Option<usize>,
    /// Pairs (p2p; default 100).
    #[arg(short = 'n', long)]
    pairs: Option<usize>,
    /// Connections (conn; default 1000).
    #[arg(short = 'c', long)]
    connections: Option<usize>,
    /// Broker process id: conn reports its RSS growth per connection (from /proc).
    #[arg(long, value_name = "PID")]
    broker_pid: Option<u32>,
    /// Topics are PREFIX/SCENARIO/... (default linnet-bench/<pid>).
    #[arg(long, value_name = "PREFIX")]
    topic_prefix: Option<String>,
    /// User name.
    #[arg(long)]
    username: Option<String>,
    /// Password.
    #[arg(long)]
    password: Option<String>,
    /// Exit with status 1 unless every expected message arrived exactly once.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    traffic: TrafficOpts,
    #[command(flatten)]
    pacing: PacingOpts,
    #[command(flatten)]
    run: RunOpts,
}

fn target(
    broker: &BrokerOpts,
    username: Option<String>,
    password: Option<String>,
) -> anyhow::Result<Target> {
    let port = broker.port.unwrap_or(if broker.ws { 8083 } else { 1883 });
    let mut target = Target::new(broker.host.clone(), port);
    if broker.ws {
        if !broker.ws_path.starts_with('/') {
            bail!("--ws-path {:?}: must start with /", broker.ws_path);
        }
        target.ws_path = Some(broker.ws_path.clone());
    }
    if let Some(list) = &broker.ifaddr {
        target.source_addrs = list
            .split(',')
            .map(|text| {
                text.trim()
                    .parse()
                    .with_context(|| format!("--ifaddr: {text:?} is not an IP address"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    target.version = Target::version_from_level(broker.version)?;
    target.keep_alive = broker.keep_alive;
    target.username = username;
    target.password = password;
    Ok(target)
}

fn pacing(opts: &PacingOpts) -> anyhow::Result<Pacing> {
    let interval = match opts.conn_interval {
        Some(ms) if !(ms.is_finite() && ms >= 0.0) => {
            bail!("-i {ms}: not a number of milliseconds")
        }
        Some(ms) => Some(Duration::from_secs_f64(ms / 1000.0)),
        None => None,
    };
    if opts.conn_concurrency == 0 {
        bail!("--conn-concurrency must be at least 1");
    }
    Ok(Pacing {
        interval,
        rate: opts.conn_rate,
        concurrency: opts.conn_concurrency,
    })
}

fn duration(run: &RunOpts) -> anyhow::Result<Duration> {
    if !(run.duration.is_finite() && run.duration >= 0.0) {
        bail!("--duration {}: not a number of seconds", run.duration);
    }
    Ok(Duration::from_secs_f64(run.duration))
}

fn qos(level: u8) -> anyhow::Result<QoS> {
    QoS::from_u8(level).with_context(|| format!("QoS {level} is not 0, 1 or 2"))
}

fn traffic(opts: &TrafficOpts, run: &RunOpts) -> anyhow::Result<Traffic> {
    let pace = match (opts.msg_interval, opts.rate) {
        (Some(ms), _) if !(ms.is_finite() && ms > 0.0) => {
            bail!("-I {ms}: not a positive number of milliseconds")
        }
        (Some(ms), _) => Pace::Interval(Duration::from_secs_f64(ms / 1000.0)),
        (None, Some(rate)) => Pace::Total(rate),
        (None, None) => Pace::Max,
    };
    Ok(Traffic {
        qos: qos(opts.qos)?,
        payload_size: opts.size,
        pace,
        inflight: opts.inflight,
        window: opts.window,
        limit: opts.limit,
        duration: duration(run)?,
        ..Traffic::default()
    })
}

impl ConnArgs {
    pub(crate) fn job(&self) -> anyhow::Result<ConnJob> {
        Ok(ConnJob {
            target: target(
                &self.broker,
                self.credentials.username.clone(),
                self.credentials.password.clone(),
            )?,
            pacing: pacing(&self.pacing)?,
            count: self.count,
            start_index: self.start,
            duration: duration(&self.run)?,
            broker_pid: self.broker_pid,
        })
    }
}

impl PubArgs {
    pub(crate) fn job(&self) -> anyhow::Result<PubJob> {
        Ok(PubJob {
            target: target(
                &self.broker,
                self.credentials.username.clone(),
                self.credentials.password.clone(),
            )?,
            pacing: pacing(&self.pacing)?,
            traffic: traffic(&self.traffic, &self.run)?,
            count: self.count,
            start_index: self.start,
            topic: self.topic.clone(),
        })
    }
}

impl SubArgs {
    pub(crate) fn job(&self) -> anyhow::Result<SubJob> {
        Ok(SubJob {
            target: target(
                &self.broker,
                self.credentials.username.clone(),
                self.credentials.password.clone(),
            )?,
            pacing: pacing(&self.pacing)?,
            count: self.count,
            start_index: self.start,
            topic: self.topic.clone(),
            qos: qos(self.qos)?,
            duration: duration(&self.run)?,
        })
    }
}

impl ScenarioArgs {
    pub(crate) fn scenario(&self) -> anyhow::Result<Scenario> {
        let mut scenario = Scenario::new(
            self.kind,
            target(&self.broker, self.username.clone(), self.password.clone())?,
        );
        scenario.pacing = pacing(&self.pacing)?;
        scenario.traffic = traffic(&self.traffic, &self.run)?;
        scenario.publishers = self.publishers;
        scenario.subscribers = self.subscribers;
        scenario.pairs = self.pairs;
        scenario.connections = self.connections;
        scenario.broker_pid = self.broker_pid;
        scenario.topic_prefix = self.topic_prefix.clone();
        Ok(scenario)
    }
}

/// `[#####.....]`: how much of `total` seconds has passed (full once past it: draining).
fn progress_bar(elapsed: f64, total: f64) -> String {
    const WIDTH: usize = 20;
    let done = if total > 0.0 {
        ((elapsed / total).clamp(0.0, 1.0) * WIDTH as f64).round() as usize
    } else {
        WIDTH
    };
    format!("[{}{}]", "#".repeat(done), ".".repeat(WIDTH - done))
}

/// Runs `linnet bench ...` to completion and prints its report.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let run_opts = match &args.command {
        BenchCommand::Compare(a) => return run_compare(a),
        BenchCommand::Conn(a) => &a.run,
        BenchCommand::Pub(a) => &a.run,
        BenchCommand::Sub(a) => &a.run,
        BenchCommand::Scenario(a) => &a.run,
    };
    let (json, quiet) = (run_opts.json, run_opts.quiet);
    // On a terminal the progress line redraws in place behind a bar of the run's duration;
    // otherwise (a log, CI) it is one line a second.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = run_opts.duration;
    let progress: Option<ProgressFn> = (!quiet).then(|| {
        let print: ProgressFn = Arc::new(move |progress: &Progress| {
            if tty {
                eprint!(
                    "\r{} {progress}\x1b[K",
                    progress_bar(progress.elapsed_seconds, total)
                );
            } else {
                eprintln!("{progress}");
            }
        });
        print
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut check = false;
    let report: Report = match &args.command {
        BenchCommand::Conn(a) => {
            let job = a.job()?;
            runtime.block_on(linnet_bench::run_conn(&job, progress))?
        }
        BenchCommand::Pub(a) => {
            let job = a.job()?;
            runtime.block_on(linnet_bench::run_pub(&job, progress))?
        }
        BenchCommand::Sub(a) => {
            let job = a.job()?;
            runtime.block_on(linnet_bench::run_sub(&job, progress))?
        }
        // Returned early above; kept total without a panic.
        BenchCommand::Compare(a) => return run_compare(a),
        BenchCommand::Scenario(a) => {
            check = a.check;
            let scenario = a.scenario()?;
            runtime.block_on(linnet_bench::run_scenario(&scenario, progress))?
        }
    };
    if tty && !quiet {
        eprintln!();
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("cannot write JSON")?
        );
    } else {
        print!("{report}");
    }
    if check && !report.is_exact() {
        bail!(
            "check failed: {} received of {} expected, {} lost, {} duplicated",
            report.received,
            report
                .expected
                .map_or_else(|| "?".to_owned(), |e| e.to_string()),
            report.lost,
            report.duplicated
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    fn bench(args: &[&str]) -> BenchCommand {
        let argv = ["linnet", "bench"].iter().chain(args).copied();
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Command::Bench(bench)) => bench.command,
            other => panic!("not a bench command: {other:?}"),
        }
    }

    #[test]
    fn pub_takes_emqtt_bench_flags() {
        let BenchCommand::Pub(args) = bench(&[
            "pub",
            "-h",
            "10.0.0.1",
            "-p",
            "1884",
            "-V",
            "4",
            "-c",
            "3",
            "-i",
            "5",
            "-I",
            "2.5",
            "-s",
            "100",
            "-q",
            "1",
            "-t",
            "bench/%i",
            "-L",
            "50",
            "-F",
            "10",
            "-u",
            "user",
            "-P",
            "secret",
            "--duration",
            "3",
        ]) else {
            panic!("not pub");
        };
        let job = args.job().unwrap();
        assert_eq!(job.target.host, "10.0.0.1");
        assert_eq!(job.target.port, 1884);
        assert_eq!(job.target.version, linnet_bench::ProtocolVersion::V3_1_1);
        assert_eq!(job.target.username.as_deref(), Some("user"));
        assert_eq!(job.target.password.as_deref(), Some("secret"));
        assert_eq!(job.count, 3);
        assert_eq!(job.topic, "bench/%i");
        assert_eq!(job.pacing.interval, Some(Duration::from_millis(5)));
        assert_eq!(job.traffic.qos, QoS::AtLeastOnce);
        assert_eq!(job.traffic.payload_size, 100);
        assert_eq!(
            job.traffic.pace,
            Pace::Interval(Duration::from_micros(2500))
        );
        assert_eq!(job.traffic.limit, Some(50));
        assert_eq!(job.traffic.inflight, 10);
        assert_eq!(job.traffic.duration, Duration::from_secs(3));
    }

    #[test]
    fn scenario_flags_and_defaults() {
        let BenchCommand::Scenario(args) = bench(&[
            "scenario",
            "fan-in",
            "-P",
            "10",
            "-q",
            "0",
            "-s",
            "64",
            "--duration",
            "5",
            "--json",
        ]) else {
            panic!("not scenario");
        };
        assert!(args.run.json);
        let scenario = args.scenario().unwrap();
        assert_eq!(scenario.kind, ScenarioKind::FanIn);
        assert_eq!(scenario.publishers, Some(10));
        assert_eq!(scenario.target.host, "localhost");
        assert_eq!(scenario.target.port, 1883);
        assert_eq!(scenario.target.version, linnet_bench::ProtocolVersion::V5);
        assert_eq!(scenario.traffic.pace, Pace::Max);
        assert_eq!(scenario.traffic.duration, Duration::from_secs(5));

        let BenchCommand::Scenario(args) = bench(&[
            "scenario", "p2p", "-n", "100", "-q", "1", "--rate", "5000", "-V", "3",
        ]) else {
            panic!("not scenario");
        };
        let scenario = args.scenario().unwrap();
        assert_eq!(scenario.target.ws_path, None);
        assert_eq!(scenario.pairs, Some(100));
        assert_eq!(scenario.traffic.pace, Pace::Total(5000.0));
        assert_eq!(scenario.target.version, linnet_bench::ProtocolVersion::V3_1);
    }

    #[test]
    fn websocket_and_source_addresses() {
        let BenchCommand::Scenario(args) = bench(&[
            "scenario",
            "p2p",
            "--ws",
            "--ifaddr",
            "127.0.0.2, 127.0.0.3",
        ]) else {
            panic!("not scenario");
        };
        let scenario = args.scenario().unwrap();
        assert_eq!(scenario.target.port, 8083);
        assert_eq!(scenario.target.ws_path.as_deref(), Some("/mqtt"));
        assert_eq!(scenario.target.source_addrs.len(), 2);
        let BenchCommand::Scenario(args) =
            bench(&["scenario", "p2p", "--ws", "-p", "9001", "--ws-path", "/ws"])
        else {
            panic!("not scenario");
        };
        let scenario = args.scenario().unwrap();
        assert_eq!(scenario.target.port, 9001);
        assert_eq!(scenario.target.ws_path.as_deref(), Some("/ws"));
    }

    #[test]
    fn compare_takes_brokers_cases_and_pinning() {
        let BenchCommand::Compare(args) = bench(&[
            "compare",
            "--broker",
            "a=linnet broker --tcp 127.0.0.1:{port} --ws 127.0.0.1:{ws_port}",
            "--broker",
            "mosquitto=mosquitto -p {port}",
            "--case",
            "fan-in -P 2 -q 1",
            "--rounds",
            "5",
            "--pin-broker",
            "0",
            "--pin-load",
            "1",
        ]) else {
            panic!("not compare");
        };
        let job = args.job().unwrap();
        assert_eq!(job.brokers.len(), 2);
        assert_eq!(job.baseline, 1, "the broker named mosquitto by default");
        assert_eq!(job.cases.len(), 1);
        assert_eq!(job.cases[0].args, ["fan-in", "-P", "2", "-q", "1"]);
        assert_eq!((job.rounds, job.pin_load.as_deref()), (5, Some("1")));
        assert_eq!(&job.load_program[1..], ["bench", "scenario"]);
        // Without cases: the targets suite.
        let BenchCommand::Compare(args) = bench(&["compare", "--broker", "a=x {port}"]) else {
            panic!("not compare");
        };
        assert!(args.job().unwrap().cases.len() >= 5);
        // A report from an earlier run needs no broker.
        assert!(matches!(
            bench(&["compare", "--from", "results.json"]),
            BenchCommand::Compare(_)
        ));
        let refused = |args: &[&str]| {
            Cli::try_parse_from(["linnet", "bench", "compare"].iter().chain(args).copied())
                .map_err(|e| e.to_string())
                .and_then(|cli| match cli.command {
                    Command::Bench(b) => match b.command {
                        BenchCommand::Compare(c) => c.job().map(|_| ()).map_err(|e| e.to_string()),
                        _ => Ok(()),
                    },
                    _ => Ok(()),
                })
                .unwrap_err()
        };
        assert!(refused(&[]).contains("--broker"));
        assert!(refused(&["--broker", "m=mosquitto -p 1883"]).contains("{port}"));
        assert!(refused(&["--broker", "a=x {port}", "--case", "fan-in -p 1"]).contains("-p"));
        assert!(refused(&["--broker", "a=x {port}", "--baseline", "b"]).contains("--baseline b"));
    }

    #[test]
    fn progress_bar_fills_with_time() {
        assert_eq!(progress_bar(0.0, 10.0), format!("[{}]", ".".repeat(20)));
        assert_eq!(
            progress_bar(5.0, 10.0),
            format!("[{}{}]", "#".repeat(10), ".".repeat(10))
        );
        assert_eq!(progress_bar(12.0, 10.0), format!("[{}]", "#".repeat(20)));
        assert_eq!(progress_bar(1.0, 0.0), format!("[{}]", "#".repeat(20)));
    }

    #[test]
    fn bad_input_is_refused() {
        let argv = |args: &[&str]| {
            Cli::try_parse_from(["linnet", "bench"].iter().chain(args).copied()).map(|_| ())
        };
        assert!(argv(&["scenario", "fan-everywhere"]).is_err());
        assert!(argv(&["pub", "-t", "x", "-V", "6"]).is_err());
        assert!(argv(&["pub", "-t", "x", "-q", "3"]).is_err());
        assert!(argv(&["pub", "-t", "x", "-I", "10", "--rate", "100"]).is_err());
        let BenchCommand::Conn(args) = bench(&["conn", "--ifaddr", "127.0.0.2,localhost"]) else {
            panic!("not conn");
        };
        let error = args.job().unwrap_err().to_string();
        assert!(
            error.contains("\"localhost\" is not an IP address"),
            "{error}"
        );
    }
}
