//! What a run reports: the final [`Report`] (JSON with serde, text with `Display`) and the
//! once-a-second [`Progress`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// How the connections of a run went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnStats {
    /// Connections opened (all of them, or the run failed).
    pub connections: u64,
    /// Connections per second over the connect phase (subscriptions included).
    pub connects_per_sec: f64,
    /// Seconds from the first connection start to the last CONNACK / SUBACK.
    pub connect_seconds: f64,
    /// TCP connect to CONNACK, µs.
    pub latency_us: Option<Percentiles>,
}

/// Broker memory growth over the connect phase, from `/proc/PID/status` VmRSS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RssStats {
    pub pid: u32,
    pub before_kib: u64,
    pub after_kib: u64,
    /// (after - before) / connections, bytes.
    pub bytes_per_connection: f64,
}

/// The result of one run. Counters are totals over all clients; "expected" is what should
/// have been received (sent x subscribers for fan-out), when the run knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `fan-in`, `fan-out`, `p2p`, `shared`, `conn`, `pub` or `sub`.
    pub scenario: String,
    /// "3.1", "3.1.1" or "5.0".
    pub protocol: String,
    pub qos: u8,
    pub payload_size: usize,
    pub publishers: usize,
    pub subscribers: usize,
    /// Open-loop target rate across publishers (msgs/s); `None` for max rate.
    pub target_rate: Option<f64>,
    pub conn: ConnStats,
    pub sent: u64,
    /// QoS 1/2 messages the broker acknowledged to publishers.
    pub acked: u64,
    /// Seconds publishers were sending.
    pub send_seconds: f64,
    pub sent_per_sec: f64,
    pub received: u64,
    pub expected: Option<u64>,
    /// Seconds from the start of sending (a lone `sub`: the first delivery) to the last
    /// delivery.
    pub receive_seconds: f64,
    pub received_per_sec: f64,
    /// Messages sent but never received (per subscriber; once per shared group).
    pub lost: u64,
    /// Messages received more than once (by one subscriber; by any members of a shared group).
    pub duplicated: u64,
    /// Messages received after a later one of the same publisher (within one subscriber, or
    /// one member of a shared group: members see interleaved slices of each stream).
    pub reordered: u64,
    /// Deliveries whose payload carried no stamp (not from a `linnet bench` publisher).
    pub unstamped: u64,
    /// End-to-end latency, µs (from the scheduled send time in open-loop mode).
    pub latency_us: Option<Percentiles>,
    pub rss: Option<RssStats>,
    /// Wall-clock seconds of the whole run.
    pub elapsed_seconds: f64,
}

impl Report {
    /// True when every expected message arrived exactly once.
    pub fn is_exact(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && !matches!(self.expected, Some(expected) if expected != self.received)
    }
}

fn write_percentiles(f: &mut fmt::Formatter<'_>, p: &Percentiles) -> fmt::Result {
    write!(
        f,
        "p50 {} / p90 {} / p99 {} / p99.9 {} / max {} µs (mean {:.0}, n {})",
        p.p50, p.p90, p.p99, p.p999, p.max, p.mean, p.count
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: MQTT {}", self.scenario, self.protocol)?;
        if self.publishers > 0 || self.subscribers > 0 {
            write!(f, ", QoS {}", self.qos)?;
        }
        if self.publishers > 0 {
            write!(
                f,
                ", {} B payload, publishers {}",
                self.payload_size, self.publishers
            )?;
        }
        if self.subscribers > 0 {
            write!(f, ", subscribers {}", self.subscribers)?;
        }
        if self.publishers > 0 {
            match self.target_rate {
                Some(rate) => write!(f, ", fixed rate {rate:.0} msg/s")?,
                None => write!(f, ", max rate")?,
            }
        }
        writeln!(f)?;
        write!(
            f,
            "  connections  {} in {:.2} s ({:.0}/s)",
            self.conn.connections, self.conn.connect_seconds, self.conn.connects_per_sec
        )?;
        if let Some(p) = &self.conn.latency_us {
            write!(f, "; connect latency ")?;
            write_percentiles(f, p)?;
        }
        writeln!(f)?;
        if let Some(rss) = &self.rss {
            writeln!(
                f,
                "  broker RSS   {} KiB -> {} KiB: {:.0} bytes per connection (pid {})",
                rss.before_kib, rss.after_kib, rss.bytes_per_connection, rss.pid
            )?;
        }
        if self.publishers > 0 {
            write!(
                f,
                "  sent         {} in {:.2} s ({:.0}/s)",
                self.sent, self.send_seconds, self.sent_per_sec
            )?;
            if self.qos > 0 {
                write!(f, ", {} acknowledged", self.acked)?;
            }
            writeln!(f)?;
        }
        if self.subscribers > 0 {
            write!(
                f,
                "  received     {} in {:.2} s ({:.0}/s)",
                self.received, self.receive_seconds, self.received_per_sec
            )?;
            if let Some(expected) = self.expected {
                write!(f, " of {expected} expected")?;
            }
            writeln!(f)?;
            write!(
                f,
                "  lost {}, duplicated {}, reordered {}",
                self.lost, self.duplicated, self.reordered
            )?;
            if self.unstamped > 0 {
                write!(f, ", unstamped {}", self.unstamped)?;
            }
            writeln!(f)?;
            match &self.latency_us {
                Some(p) => {
                    write!(f, "  latency      ")?;
                    write_percentiles(f, p)?;
                    writeln!(f)?;
                }
                None => writeln!(f, "  latency      no stamped message received")?,
            }
        }
        Ok(())
    }
}

/// A once-a-second snapshot of a run in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub elapsed_seconds: f64,
    pub connected: u64,
    pub connections: u64,
    pub sent: u64,
    pub received: u64,
    pub acked: u64,
    /// Over the last interval.
    pub sent_per_sec: f64,
    pub received_per_sec: f64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>5.1}s] conns {}/{}  sent {} ({:.0}/s)  recv {} ({:.0}/s)",
            self.elapsed_seconds,
            self.connected,
            self.connections,
            self.sent,
            self.sent_per_sec,
            self.received,
            self.received_per_sec
        )?;
        if self.acked > 0 {
            write!(f, "  acked {}", self.acked)?;
        }
        Ok(())
    }
}

/// Called with each [`Progress`] snapshot (the binary prints it to stderr).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;
