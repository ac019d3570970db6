//! Measurement: latency histograms and per-publisher sequence tracking.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::report::Percentiles;

/// Lowest latency recorded (µs); smaller values are raised to it.
const LOWEST_US: u64 = 1;
/// Highest latency recorded (µs, 60 s); larger values are clamped to it.
const HIGHEST_US: u64 = 60_000_000;
/// Most open gaps a [`SeqTracker`] remembers before it gives the oldest up as lost.
const MAX_GAPS: usize = 100_000;

/// An HDR histogram of latencies in microseconds, 1 µs to 60 s, 3 significant figures.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    // Constant bounds that `new_with_bounds` always accepts (1 <= low, high >= 2 * low,
    // 3 significant figures): not a runtime failure.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    /// Records one latency in microseconds, clamped to the histogram's range.
    pub fn record_us(&mut self, micros: u64) {
        self.histogram
            .saturating_record(micros.clamp(LOWEST_US, HIGHEST_US));
    }

    /// Records the latency from `sent_ns` to `now_ns` (0 if the clock went backwards).
    pub fn record_since(&mut self, sent_ns: u64, now_ns: u64) {
        self.record_us(now_ns.saturating_sub(sent_ns) / 1_000);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Self) {
        // Same bounds on both sides, so adding cannot fail; counts saturate otherwise.
        let _ = self.histogram.add(&other.histogram);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The value at `quantile` (0.0 to 1.0), µs.
    pub fn quantile_us(&self, quantile: f64) -> u64 {
        self.histogram.value_at_quantile(quantile)
    }

    /// p50 / p90 / p99 / p99.9 / max, or `None` when nothing was recorded.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.histogram.is_empty() {
            return None;
        }
        let h = &self.histogram;
        Some(Percentiles {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// Where a [`SeqTracker`] expects a publisher's sequence to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackStart {
    /// At 0: the subscriber was there before the publisher started (scenarios).
    Zero,
    /// At the first sequence number seen: the subscriber may have joined a running stream.
    FirstSeen,
}

/// Tracks one publisher's sequence numbers as they arrive at one subscriber (or at one
/// shared-subscription group) and counts what went wrong:
///
/// - a number that arrives again is *duplicated*;
/// - a number that arrives after a higher one (filling a gap) is *reordered*;
/// - a number that never arrives is *lost*: the gaps still open at the end, plus whatever the
///   publisher sent beyond the highest number seen ([`SeqTracker::lost`]).
///
/// Memory is proportional to the number of open gaps, not to the messages: at most
/// 100,000 gaps are remembered, the oldest beyond that are given up as lost (a late arrival
/// into a forgotten gap then counts as a duplicate).
#[derive(Debug, Clone)]
pub struct SeqTracker {
    /// False until the first number when tracking starts at the first one seen.
    started: bool,
    /// Every number below `next` has arrived or lies in a gap.
    next: u64,
    /// Open gaps: start -> end (exclusive).
    gaps: BTreeMap<u64, u64>,
    /// Numbers in `gaps`, plus those in gaps given up.
    missing: u64,
    received: u64,
    duplicated: u64,
    reordered: u64,
}

impl SeqTracker {
    /// A tracker expecting the sequence to start as `start` says.
    pub fn new(start: TrackStart) -> Self {
        Self {
            started: start == TrackStart::Zero,
            next: 0,
            gaps: BTreeMap::new(),
            missing: 0,
            received: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    /// Records the arrival of sequence number `seq`.
    pub fn record(&mut self, seq: u64) {
        self.received += 1;
        if !self.started {
            self.started = true;
            self.next = seq;
        }
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.gaps.insert(self.next, seq);
            self.missing += seq - self.next;
            self.next = seq + 1;
            if self.gaps.len() > MAX_GAPS {
                // Forget the oldest gap; its numbers stay counted as missing.
                self.gaps.pop_first();
            }
        } else {
            match self.gaps.range(..=seq).next_back().map(|(&s, &e)| (s, e)) {
                Some((start, end)) if seq < end => {
                    self.reordered += 1;
                    self.missing -= 1;
                    self.gaps.remove(&start);
                    if start < seq {
                        self.gaps.insert(start, seq);
                    }
                    if seq + 1 < end {
                        self.gaps.insert(seq + 1, end);
                    }
                }
                _ => self.duplicated += 1,
            }
        }
    }

    /// Messages recorded, duplicates included.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Arrivals of a number that had already arrived.
    pub fn duplicated(&self) -> u64 {
        self.duplicated
    }

    /// Arrivals after a higher number.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// One past the highest number seen (0 if none).
    pub fn next_expected(&self) -> u64 {
        self.next
    }

    /// Numbers that never arrived: the open gaps, plus, when the publisher's total `sent` is
    /// known, the numbers from the highest seen up to it.
    pub fn lost(&self, sent: Option<u64>) -> u64 {
        let tail = sent.map_or(0, |sent| sent.saturating_sub(self.next));
        self.missing + tail
    }
}
