//! `linnet bench compare`: runs the same scenarios against several brokers in alternation
//! (A B A B … for several rounds, so drift on a noisy machine hits every broker alike),
//! starting and stopping each broker itself when given a command, optionally pinning the
//! broker and the load to different CPUs with `taskset`, and reduces the runs to medians,
//! spread and ratios against a baseline broker.
//!
//! Each run is a separate load process (`linnet bench scenario … --json`), so one run's
//! sockets and memory never leak into the next, and the load can be pinned on its own.
//! Rendering of the result (Markdown and an HTML page with charts) lives in
//! [`crate::compare_report`].

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::BenchError;
use crate::report::Report;

/// How a broker under comparison is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BrokerHow {
    /// A shell command line that starts the broker in the foreground; `{port}` is replaced by
    /// the port to listen on for MQTT over TCP and `{ws_port}` (the next port) by the one
    /// for MQTT over WebSocket at `/mqtt`, used by cases with `--ws`. Started before and
    /// stopped after every run.
    Command(String),
    /// A broker that is already running (not restarted between runs; no memory figures).
    Address { host: String, port: u16 },
}

/// One broker of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerSpec {
    pub name: String,
    pub how: BrokerHow,
}

impl BrokerSpec {
    /// Parses `NAME=COMMAND` or `NAME=mqtt://HOST:PORT`.
    pub fn parse(text: &str) -> Result<Self, BenchError> {
        let (name, rest) = text.split_once('=').ok_or_else(|| {
            BenchError::Config(format!(
                "--broker {text:?}: expected NAME=COMMAND or NAME=mqtt://HOST:PORT"
            ))
        })?;
        let name = name.trim();
        let rest = rest.trim();
        if name.is_empty() || rest.is_empty() {
            return Err(BenchError::Config(format!(
                "--broker {text:?}: the name and the command must not be empty"
            )));
        }
        let how = if let Some(address) = rest.strip_prefix("mqtt://") {
            let address = address.trim_end_matches('/');
            let (host, port) = address.rsplit_once(':').unwrap_or((address, "1883"));
            let port = port.parse().map_err(|_| {
                BenchError::Config(format!("--broker {text:?}: {port:?} is not a port number"))
            })?;
            BrokerHow::Address {
                host: host.to_owned(),
                port,
            }
        } else {
            if !rest.contains("{port}") {
                return Err(BenchError::Config(format!(
                    "--broker {text:?}: the command must contain {{port}}, the port the broker listens on"
                )));
            }
            BrokerHow::Command(rest.to_owned())
        };
        Ok(Self {
            name: name.to_owned(),
            how,
        })
    }
}

/// One scenario of the comparison: the arguments of `linnet bench scenario`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// What the report calls it, e.g. `fan-in -P 10 -q 0`.
    pub label: String,
    pub args: Vec<String>,
}

impl Case {
    /// A case from the words of `linnet bench scenario` (`fan-in -P 10 -q 1`).
    pub fn parse(text: &str) -> Result<Self, BenchError> {
        let args: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        if args.is_empty() {
            return Err(BenchError::Config("--case: empty scenario".to_owned()));
        }
        for reserved in ["-h", "--host", "-p", "--port", "--json", "--broker-pid"] {
            if args.iter().any(|a| a == reserved) {
                return Err(BenchError::Config(format!(
                    "--case {text:?}: {reserved} is set by compare itself"
                )));
            }
        }
        Ok(Self {
            label: args.join(" "),
            args,
        })
    }

    /// The scenario kind: the first word.
    pub fn kind(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.args.iter().any(|a| a == flag)
    }
}

/// Ready-made sets of cases.
pub fn suite(name: &str) -> Result<Vec<Case>, BenchError> {
    let lines: &[&str] = match name {
        // The lines of the benchmark issue's targets.
        "targets" => &[
            "fan-in -P 10 -q 0 -s 64",
            "fan-out -S 100 -q 0 -s 64",
            "p2p -n 100 -q 1 -s 64",
            "p2p -n 100 -q 1 -s 64 --rate 5000",
            "conn -c 5000",
        ],
        // The targets plus QoS 0/1/2 and MQTT 3.1.1 against 5.0.
        "full" => &[
            "fan-in -P 10 -q 0 -s 64",
            "fan-in -P 10 -q 0 -s 64 -V 4",
            "fan-in -P 10 -q 1 -s 64",
            "fan-in -P 10 -q 2 -s 64",
            "fan-out -S 100 -q 0 -s 64",
            "fan-out -S 100 -q 1 -s 64",
            "p2p -n 100 -q 1 -s 64",
            "p2p -n 100 -q 1 -s 64 -V 4",
            "p2p -n 100 -q 1 -s 64 --rate 5000",
            "p2p -n 100 -q 0 -s 64 --rate 5000",
            "shared -P 10 -S 4 -q 1 -s 64",
            "fan-in -P 10 -q 0 -s 64 --ws",
            "p2p -n 100 -q 1 -s 64 --ws",
            "p2p -n 100 -q 1 -s 64 --rate 5000 --ws",
            "conn -c 5000",
        ],
        // Seconds, for a smoke run.
        "smoke" => &[
            "fan-in -P 2 -q 0 -s 64",
            "fan-out -S 4 -q 0 -s 64",
            "p2p -n 4 -q 1 -s 64 --rate 200",
            "p2p -n 4 -q 2 -s 64 -V 4",
            "shared -P 2 -S 2 -q 1 -s 64",
            "p2p -n 2 -q 1 -s 64 --ws",
            "conn -c 50",
        ],
        other => {
            return Err(BenchError::Config(format!(
                "unknown suite {other:?}: choose targets, full or smoke"
            )))
        }
    };
    lines.iter().map(|line| Case::parse(line)).collect()
}

/// Everything a comparison needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareJob {
    pub brokers: Vec<BrokerSpec>,
    pub cases: Vec<Case>,
    pub rounds: usize,
    /// Seconds each run sends (passed as `--duration` unless the case sets it).
    pub duration_secs: f64,
    /// CPU list for `taskset -c` of started brokers.
    pub pin_broker: Option<String>,
    /// CPU list for `taskset -c` of the load process.
    pub pin_load: Option<String>,
    /// Port started brokers listen on.
    pub port: u16,
    /// The program and leading arguments that run one scenario (`linnet bench scenario`).
    pub load_program: Vec<String>,
    /// Index into `brokers` of the broker every ratio is taken against.
    pub baseline: usize,
}

/// One run: a broker, a case, a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub broker: usize,
    pub case: usize,
    pub round: usize,
    pub report: Option<Report>,
    /// Why the run produced no report, or what went wrong around it.
    pub error: Option<String>,
}

/// The outcome of a comparison: the job and every run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareResult {
    pub job: CompareJob,
    /// UTC date and time the comparison started, `YYYY-MM-DD HH:MM`.
    pub started: String,
    /// The host as `linnet bench` saw it (cores, kernel).
    pub machine: String,
    pub samples: Vec<Sample>,
}

/// Runs every case against every broker, alternating brokers within each round. `progress`
/// receives one line per run.
pub fn run_compare(
    job: &CompareJob,
    mut progress: impl FnMut(&str),
) -> Result<CompareResult, BenchError> {
    if job.brokers.is_empty() || job.cases.is_empty() || job.rounds == 0 {
        return Err(BenchError::Config(
            "compare needs at least one --broker, one case and one round".to_owned(),
        ));
    }
    if job.baseline >= job.brokers.len() {
        return Err(BenchError::Config(
            "the baseline is not one of the brokers".to_owned(),
        ));
    }
    if job.load_program.is_empty() {
        return Err(BenchError::Config("no load program".to_owned()));
    }
    let mut result = CompareResult {
        job: job.clone(),
        started: utc_now_text(),
        machine: machine_text(),
        samples: Vec::new(),
    };
    let runs = job.cases.len() * job.rounds * job.brokers.len();
    let mut done = 0;
    for (case_index, case) in job.cases.iter().enumerate() {
        for round in 0..job.rounds {
            for (broker_index, broker) in job.brokers.iter().enumerate() {
                done += 1;
                let sample = run_one(job, broker, case, broker_index, case_index, round);
                progress(&format!(
                    "[{done}/{runs}] {case} | round {} | {}: {}",
                    round + 1,
                    broker.name,
                    summary_line(&sample),
                    case = case.label
                ));
                result.samples.push(sample);
            }
        }
    }
    Ok(result)
}

fn summary_line(sample: &Sample) -> String {
    match (&sample.report, &sample.error) {
        (Some(report), error) => {
            let mut line = if report.scenario == "conn" {
                let mut line = format!("{:.0} connects/s", report.conn.connects_per_sec);
                if let Some(rss) = &report.rss {
                    line.push_str(&format!(", {:.0} B/conn", rss.bytes_per_connection));
                }
                line
            } else {
                let mut line = format!("{:.0} msg/s received", report.received_per_sec);
                if let Some(p) = &report.latency_us {
                    line.push_str(&format!(", p50 {} µs, p99 {} µs", p.p50, p.p99));
                }
                if report.lost > 0 || report.duplicated > 0 {
                    line.push_str(&format!(", LOST {} DUP {}", report.lost, report.duplicated));
                }
                line
            };
            if let Some(error) = error {
                line.push_str(&format!(" ({error})"));
            }
            line
        }
        (None, Some(error)) => format!("FAILED: {error}"),
        (None, None) => "no report".to_owned(),
    }
}

/// A started broker, stopped (SIGTERM, then SIGKILL) when dropped.
struct RunningBroker {
    child: Child,
}

impl RunningBroker {
    fn start(command: &str, port: u16, pin: Option<&str>) -> Result<Self, String> {
        let command = command
            .replace("{port}", &port.to_string())
            .replace("{ws_port}", &(port + 1).to_string());
        // `exec` keeps one process, so the child's PID is the broker's (for its RSS).
        let line = match pin {
            Some(cpus) => format!("exec taskset -c {cpus} {command}"),
            None => format!("exec {command}"),
        };
        let child = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{line}`: {e}"))?;
        let mut broker = Self { child };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = broker.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = broker.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(format!(
                    "`{line}` exited ({status}) before listening: {}",
                    stderr.trim()
                ));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("`{line}` did not listen on {address} within 15 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The readiness probe is itself a connection; let the broker forget it.
        std::thread::sleep(Duration::from_millis(300));
        // Nobody reads the broker's stderr from here on; a full pipe must not block it.
        drop(broker.child.stderr.take());
        Ok(broker)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_one(
    job: &CompareJob,
    broker: &BrokerSpec,
    case: &Case,
    broker_index: usize,
    case_index: usize,
    round: usize,
) -> Sample {
    let mut sample = Sample {
        broker: broker_index,
        case: case_index,
        round,
        report: None,
        error: None,
    };
    let ws = case.has_flag("--ws");
    let (running, host, port) = match &broker.how {
        BrokerHow::Command(command) => {
            if ws && !command.contains("{ws_port}") {
                sample.error = Some(format!(
                    "a --ws case needs {{ws_port}} in the command of {}",
                    broker.name
                ));
                return sample;
            }
            match RunningBroker::start(command, job.port, job.pin_broker.as_deref()) {
                Ok(running) => {
                    let port = if ws { job.port + 1 } else { job.port };
                    (Some(running), "127.0.0.1".to_owned(), port)
                }
                Err(error) => {
                    sample.error = Some(error);
                    return sample;
                }
            }
        }
        BrokerHow::Address { .. } if ws => {
            sample.error = Some(format!(
                "{} is given by address: --ws cases need a broker command with {{ws_port}}",
                broker.name
            ));
            return sample;
        }
        BrokerHow::Address { host, port } => (None, host.clone(), *port),
    };
    let mut args: Vec<String> = Vec::new();
    if let Some(cpus) = &job.pin_load {
        args.extend(["-c".to_owned(), cpus.clone()]);
    }
    args.extend(job.load_program.iter().cloned());
    args.extend(case.args.iter().cloned());
    args.extend(["-h".to_owned(), host, "-p".to_owned(), port.to_string()]);
    args.extend(["--json".to_owned(), "--quiet".to_owned()]);
    if !case.has_flag("--duration") {
        args.extend(["--duration".to_owned(), job.duration_secs.to_string()]);
    }
    if case.kind() == "conn" {
        if let Some(running) = &running {
            args.extend(["--broker-pid".to_owned(), running.pid().to_string()]);
        }
    }
    let program = if job.pin_load.is_some() {
        "taskset".to_owned()
    } else {
        args.remove(0)
    };
    // A run is bounded by its own hard timeouts; this is the last resort.
    let limit = Duration::from_secs_f64(job.duration_secs.max(1.0) * 4.0 + 90.0);
    match run_load(&program, &args, limit) {
        Ok(stdout) => match serde_json::from_str::<Report>(&stdout) {
            Ok(report) => sample.report = Some(report),
            Err(e) => sample.error = Some(format!("unreadable report ({e}): {}", tail(&stdout))),
        },
        Err(error) => sample.error = Some(error),
    }
    drop(running);
    // Let sockets in TIME_WAIT and the kernel's buffers settle before the next broker.
    std::thread::sleep(Duration::from_millis(500));
    sample
}

fn tail(text: &str) -> &str {
    let text = text.trim();
    let start = text.len().saturating_sub(300);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

/// Runs the load process; its stdout on success, a message with its stderr otherwise.
fn run_load(program: &str, args: &[String], limit: Duration) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stdout_pipe.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(pipe) = stderr_pipe.as_mut() {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot wait for the load process: {e}")),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    match status {
        None => Err(format!(
            "the load process ran past {limit:?} and was killed"
        )),
        Some(status) if status.success() => Ok(stdout),
        Some(status) => Err(format!("load exited with {status}: {}", tail(&stderr))),
    }
}

fn utc_now_text() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn machine_text() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cores} cores, {model}, Linux {kernel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_specs_parse() {
        let spec = BrokerSpec::parse("linnet=linnet broker --tcp 127.0.0.1:{port}").unwrap();
        assert_eq!(spec.name, "linnet");
        assert_eq!(
            spec.how,
            BrokerHow::Command("linnet broker --tcp 127.0.0.1:{port}".to_owned())
        );
        let spec = BrokerSpec::parse("remote=mqtt://10.0.0.2:1884").unwrap();
        assert_eq!(
            spec.how,
            BrokerHow::Address {
                host: "10.0.0.2".to_owned(),
                port: 1884
            }
        );
        assert!(BrokerSpec::parse("mosquitto").is_err());
        assert!(BrokerSpec::parse("m=mosquitto -p 1883").is_err());
        assert!(BrokerSpec::parse("=x {port}").is_err());
    }

    #[test]
    fn cases_refuse_what_compare_sets() {
        assert_eq!(Case::parse("fan-in -P 10").unwrap().kind(), "fan-in");
        assert!(Case::parse("fan-in -p 1884").is_err());
        assert!(Case::parse("  ").is_err());
        assert!(suite("targets").unwrap().len() >= 5);
        assert!(suite("nope").is_err());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_418), (2025, 11, 26));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
