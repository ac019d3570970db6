//! What a run does: the broker to reach ([`Target`]), how fast to connect ([`Pacing`]), what
//! to send ([`Traffic`]), and the jobs built from them ([`PubJob`], [`SubJob`], [`ConnJob`],
//! [`Scenario`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use linnet_proto::{ProtocolVersion, QoS};

use crate::error::BenchError;
use crate::payload::STAMP_LEN;

/// The broker and how each client connects to it.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub version: ProtocolVersion,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Keep alive sent in CONNECT (seconds); clients ping at half of it when otherwise idle.
    pub keep_alive: u16,
    /// Client ids are this prefix, a role letter and the client index; short enough for
    /// MQTT 3.1's 23-character limit.
    pub client_prefix: String,
    /// Longest wait for CONNACK / SUBACK.
    pub connect_timeout: Duration,
    /// MQTT over WebSocket at this path (`/mqtt`); `None`: plain TCP.
    pub ws_path: Option<String>,
    /// Local addresses connections are made from, in turn (emqtt-bench's `--ifaddr`);
    /// empty: the system's choice.
    pub source_addrs: Vec<std::net::IpAddr>,
}

impl Target {
    /// MQTT 5.0 to `host:port`, anonymous, 60 s keep alive, ids prefixed `lb<pid>-`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            version: ProtocolVersion::V5,
            username: None,
            password: None,
            keep_alive: 60,
            client_prefix: format!("lb{}-", std::process::id()),
            connect_timeout: Duration::from_secs(10),
            ws_path: None,
            source_addrs: Vec::new(),
        }
    }

    /// The protocol version for a `-V` level: 3 (3.1), 4 (3.1.1) or 5.
    pub fn version_from_level(level: u8) -> Result<ProtocolVersion, BenchError> {
        match level {
            3 => Ok(ProtocolVersion::V3_1),
            4 => Ok(ProtocolVersion::V3_1_1),
            5 => Ok(ProtocolVersion::V5),
            other => Err(BenchError::Config(format!(
                "protocol version {other} is not 3, 4 or 5"
            ))),
        }
    }

    pub(crate) fn client_id(&self, role: char, index: u32) -> String {
        format!("{}{role}{index}", self.client_prefix)
    }
}

/// How fast connections are opened.
#[derive(Debug, Clone, PartialEq)]
pub struct Pacing {
    /// Wait between two connection starts (emqtt-bench `-i`).
    pub interval: Option<Duration>,
    /// Connection starts per second (`-R`); the smaller gap of the two wins.
    pub rate: Option<f64>,
    /// Most handshakes (TCP connect to CONNACK) in progress at once.
    pub concurrency: usize,
}

impl Default for Pacing {
    /// As fast as 100 concurrent handshakes allow.
    fn default() -> Self {
        Self {
            interval: None,
            rate: None,
            concurrency: 100,
        }
    }
}

impl Pacing {
    /// The wait between two connection starts (zero: no pacing).
    pub(crate) fn gap(&self) -> Duration {
        let from_rate = self
            .rate
            .filter(|rate| *rate > 0.0)
            .map(|rate| Duration::from_secs_f64(1.0 / rate));
        match (self.interval, from_rate) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => Duration::ZERO,
        }
    }
}

/// How fast publishers send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the in-flight window (QoS 1/2) or the socket (QoS 0) allows; messages are
    /// stamped with the time they are written.
    Max,
    /// Open loop: each publisher sends one message per interval (`-I`), stamped with its
    /// scheduled time, whatever the broker does.
    Interval(Duration),
    /// Open loop: this many messages per second across all publishers (`--rate`).
    Total(f64),
}

impl Pace {
    /// The per-publisher interval in nanoseconds for `publishers` publishers; `None` for
    /// [`Pace::Max`].
    pub(crate) fn interval_ns(&self, publishers: usize) -> Option<u64> {
        match *self {
            Pace::Max => None,
            Pace::Interval(interval) => Some(
                u64::try_from(interval.as_nanos())
                    .unwrap_or(u64::MAX)
                    .max(1),
            ),
            Pace::Total(rate) => Some(((publishers as f64 * 1e9 / rate) as u64).max(1)),
        }
    }

    /// The target rate across `publishers`, msgs/s, if open loop.
    pub(crate) fn total_rate(&self, publishers: usize) -> Option<f64> {
        self.interval_ns(publishers)
            .map(|ns| publishers as f64 * 1e9 / ns as f64)
    }
}

/// What publishers send and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub qos: QoS,
    /// Payload bytes, at least [`STAMP_LEN`] (20).
    pub payload_size: usize,
    pub pace: Pace,
    /// QoS 1/2 messages a publisher may have unacknowledged (capped by the broker's Receive
    /// Maximum).
    pub inflight: u16,
    /// Max rate in scenarios: messages per publisher sent but not yet delivered to every
    /// subscriber (0: unbounded). Keeps the run at the rate the whole path sustains instead
    /// of measuring how much a broker drops or buffers; applies to every QoS.
    pub window: u64,
    /// How long a full delivery window may go without a delivery before its messages are
    /// written off as lost and publishing goes on.
    pub window_stall: Duration,
    /// Messages per publisher (`-L`); `None`: until the duration ends.
    pub limit: Option<u64>,
    /// How long publishers send (and `sub` / `conn` runs hold their connections).
    pub duration: Duration,
    /// After the publishers stop, longest wait for acknowledgements and deliveries still on
    /// their way; the wait also ends after 500 ms without progress.
    pub drain: Duration,
    /// Most bytes a publisher buffers for one write: the QoS 0 bound in max-rate mode.
    pub batch_bytes: usize,
}

impl Default for Traffic {
    fn default() -> Self {
        Self {
            qos: QoS::AtMostOnce,
            payload_size: 64,
            pace: Pace::Max,
            inflight: 64,
            window: 100,
            window_stall: Duration::from_millis(200),
            limit: None,
            duration: Duration::from_secs(10),
            drain: Duration::from_secs(5),
            batch_bytes: 64 * 1024,
        }
    }
}

impl Traffic {
    pub(crate) fn validate(&self) -> Result<(), BenchError> {
        if self.payload_size < STAMP_LEN {
            return Err(BenchError::Config(format!(
                "payload size {} is below {STAMP_LEN} bytes, the size of the timestamp and sequence number",
                self.payload_size
            )));
        }
        if self.inflight == 0 {
            return Err(BenchError::Config(
                "the in-flight window must be at least 1".into(),
            ));
        }
        match self.pace {
            Pace::Interval(interval) if interval.is_zero() => {
                return Err(BenchError::Config(
                    "the message interval must be above 0 (leave it out for max rate)".into(),
                ))
            }
            Pace::Total(rate) if !(rate > 0.0 && rate.is_finite()) => {
                return Err(BenchError::Config(format!(
                    "rate {rate} is not a positive number of messages per second"
                )))
            }
            _ => {}
        }
        if self.duration.is_zero() && self.limit.is_none() {
            return Err(BenchError::Config(
                "give a duration above 0 or a message limit".into(),
            ));
        }
        Ok(())
    }
}

/// `linnet bench pub`: `count` publishers, each on the topic `topic` (`%i` = client index,
/// `%c` = client id).
#[derive(Debug, Clone)]
pub struct PubJob {
    pub target: Target,
    pub pacing: Pacing,
    pub traffic: Traffic,
    pub count: usize,
    /// Index of the first client (emqtt-bench `-n`); publisher indices in payloads too.
    pub start_index: u32,
    pub topic: String,
}

/// `linnet bench sub`: `count` subscribers to the filter `topic` (`%i`, `%c` expanded) for
/// `duration`, measuring whatever stamped messages arrive.
#[derive(Debug, Clone)]
pub struct SubJob {
    pub target: Target,
    pub pacing: Pacing,
    pub count: usize,
    pub start_index: u32,
    pub topic: String,
    pub qos: QoS,
    pub duration: Duration,
}

/// `linnet bench conn`: `count` idle connections held for `duration`.
#[derive(Debug, Clone)]
pub struct ConnJob {
    pub target: Target,
    pub pacing: Pacing,
    pub count: usize,
    pub start_index: u32,
    pub duration: Duration,
    /// Broker process whose RSS growth per connection is reported (Linux `/proc`).
    pub broker_pid: Option<u32>,
}

/// The scenarios of `linnet bench scenario`, named like the Open MQTT Benchmark Suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScenarioKind {
    /// P publishers -> 1 subscriber on a wildcard.
    FanIn,
    /// 1 publisher -> S subscribers.
    FanOut,
    /// N pairs, pair i on its own topic.
    P2p,
    /// P publishers -> S members of one `$share` group; each message arrives once.
    Shared,
    /// N idle connections: connects/s, connect latency, broker memory per connection.
    Conn,
}

impl ScenarioKind {
    /// Every scenario, in the order of the documentation.
    pub const ALL: [Self; 5] = [
        Self::FanIn,
        Self::FanOut,
        Self::P2p,
        Self::Shared,
        Self::Conn,
    ];

    /// The command-line name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::FanIn => "fan-in",
            Self::FanOut => "fan-out",
            Self::P2p => "p2p",
            Self::Shared => "shared",
            Self::Conn => "conn",
        }
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScenarioKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| {
                format!("unknown scenario {s:?} (expected fan-in, fan-out, p2p, shared or conn)")
            })
    }
}

/// `linnet bench scenario`: publishers and subscribers in one process.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub kind: ScenarioKind,
    pub target: Target,
    pub pacing: Pacing,
    pub traffic: Traffic,
    /// fan-in and shared: publishers (default 10).
    pub publishers: Option<usize>,
    /// fan-out (default 100) and shared (default 4): subscribers.
    pub subscribers: Option<usize>,
    /// p2p: pairs (default 100).
    pub pairs: Option<usize>,
    /// conn: connections (default 1000).
    pub connections: Option<usize>,
    /// conn: broker process whose RSS growth per connection is reported.
    pub broker_pid: Option<u32>,
    /// Topics are `<prefix>/<scenario>/...`; default `linnet-bench/<pid>`.
    pub topic_prefix: Option<String>,
}

impl Scenario {
    /// `kind` against `target` with default counts, pacing and traffic.
    pub fn new(kind: ScenarioKind, target: Target) -> Self {
        Self {
            kind,
            target,
            pacing: Pacing::default(),
            traffic: Traffic::default(),
            publishers: None,
            subscribers: None,
            pairs: None,
            connections: None,
            broker_pid: None,
            topic_prefix: None,
        }
    }
}

/// `template` with `%i` replaced by `index` and `%c` by `client_id`.
pub(crate) fn expand_topic(template: &str, index: u32, client_id: &str) -> String {
    template
        .replace("%i", &index.to_string())
        .replace("%c", client_id)
}
