//! The open-loop pacer: one OS thread that wakes each publisher when its next message is due.
//!
//! tokio's timer has a 1 ms resolution and fires late, never early; since open-loop latency
//! is measured from the *scheduled* send time, that lateness would show up as up to a
//! millisecond of latency that no broker caused. A dedicated thread sleeping with
//! `std::thread::sleep` (tens of microseconds of slack) wakes publishers close to their
//! schedule instead; publishers still decide what is due from the clock themselves, so a
//! late or missed wake-up delays messages but never loses or duplicates one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Longest single sleep, so the thread notices a stop promptly.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// One publisher's schedule: message k is due at `first_due + k * interval_ns`.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub(crate) first_due: Instant,
    pub(crate) interval_ns: u64,
    pub(crate) wake: Arc<Notify>,
}

impl Schedule {
    /// The first due time strictly after `now`.
    fn next_after(&self, now: Instant) -> Instant {
        if now < self.first_due {
            return self.first_due;
        }
        let elapsed = u64::try_from((now - self.first_due).as_nanos()).unwrap_or(u64::MAX);
        let k = elapsed / self.interval_ns + 1;
        self.first_due + Duration::from_nanos(k.saturating_mul(self.interval_ns))
    }
}

/// The running pacer thread; stops when dropped or at `end`.
#[derive(Debug)]
pub(crate) struct Pacer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Starts pacing `schedules` until `end`. `None` if the thread cannot be started
    /// (publishers then fall back to the tokio timer).
    pub(crate) fn start(schedules: Vec<Schedule>, end: Instant) -> Option<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("linnet-bench-pacer".into())
            .spawn(move || pace(&schedules, end, &flag))
            .ok()?;
        Some(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn pace(schedules: &[Schedule], end: Instant, stop: &AtomicBool) {
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = schedules
        .iter()
        .enumerate()
        .map(|(slot, s)| Reverse((s.first_due, slot)))
        .collect();
    while let Some(&Reverse((next, _))) = due.peek() {
        if stop.load(Ordering::Relaxed) || next >= end {
            break;
        }
        let now = Instant::now();
        if next > now {
            std::thread::sleep((next - now).min(MAX_SLEEP));
            continue;
        }
        while let Some(&Reverse((at, slot))) = due.peek() {
            if at > now {
                break;
            }
            due.pop();
            schedules[slot].wake.notify_one();
            due.push(Reverse((schedules[slot].next_after(now), slot)));
        }
    }
}
