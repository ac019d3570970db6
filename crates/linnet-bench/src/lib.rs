//! `linnet-bench`: the load generator behind `linnet bench`.
//!
//! A lean MQTT load client built on [`linnet_proto`] and tokio TCP (not a general client
//! library): each connection is one task that writes batched packets (one `write` per batch)
//! and reads with a streaming [`Decoder`](linnet_proto::Decoder). It measures what a broker
//! benchmark needs and checks correctness while it measures:
//!
//! - every measured message carries a [`Stamp`] in its payload (send time, publisher index,
//!   sequence number), so subscribers compute end-to-end latency into an HDR histogram and
//!   count lost, duplicated and reordered messages per publisher ([`SeqTracker`]);
//! - publishers send open loop on a fixed schedule ([`Pace::Interval`], [`Pace::Total`]) and
//!   stamp each message with its *scheduled* time, so a slow broker shows as latency rather
//!   than as a lower send rate (no coordinated omission), or as fast as a bounded in-flight
//!   window allows ([`Pace::Max`]);
//! - every run is bounded by a message limit and/or a duration, plus a hard timeout.
//!
//! Entry points: [`run_conn`], [`run_pub`], [`run_sub`] (emqtt-bench's `conn | pub | sub`)
//! and [`run_scenario`] (`fan-in`, `fan-out`, `p2p`, `shared`, `conn` in one process). Each
//! returns a [`Report`] (serde-serialisable for `--json`, `Display` for people) and can call a
//! [`ProgressFn`] once a second. [`run_compare`] runs scenarios against several brokers in
//! alternation and [`compare_markdown`] / [`compare_html`] render the comparison. The library
//! never prints.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod clock;
mod compare;
mod compare_report;
mod config;
mod conn;
mod error;
mod pacer;
mod payload;
mod publisher;
mod report;
mod run;
mod stats;
mod stream;
mod subscriber;

pub use clock::{instant_to_ns, now_ns};
pub use compare::{
    run_compare, suite, BrokerHow, BrokerSpec, Case, CompareJob, CompareResult, Sample,
};
pub use compare_report::{
    figures, html as compare_html, markdown as compare_markdown, BrokerFigures, CaseFigures,
    Spread, PROFILE,
};
pub use config::{ConnJob, Pace, Pacing, PubJob, Scenario, ScenarioKind, SubJob, Target, Traffic};
pub use error::BenchError;
pub use payload::{PublishTemplate, Stamp, STAMP_LEN};
pub use report::{ConnStats, Percentiles, Progress, ProgressFn, Report, RssStats};
pub use run::{run_conn, run_pub, run_scenario, run_sub};
pub use stats::{LatencyHistogram, SeqTracker, TrackStart};

/// The protocol types a caller needs to fill a [`Target`] and [`Traffic`].
pub use linnet_proto::{ProtocolVersion, QoS};
