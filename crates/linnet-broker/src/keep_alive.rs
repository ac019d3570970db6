//! Keep alive for every connection at once [MQTT-3.1.2-22]: a coarse broker clock that
//! advances every [`TICK`], and one task that, on each tick, wakes the connections that have
//! been silent past their limit. A connection notes the tick on each read (two atomic
//! operations: no clock reading, no timer of its own, nothing polled per message).
//!
//! A connection is disconnected at least 1.5 times its keep alive after its last packet, and
//! at most about two ticks later.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::{lock, Broker};

/// How often the sweep runs.
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// One session's keep-alive bookkeeping, armed while a connection with a keep alive is
/// attached.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// The broker tick of the last read.
    heard: AtomicU32,
    /// Ticks of silence after which the connection is woken to check; 0 = not watched.
    limit: AtomicU32,
    /// Set by the sweep before it wakes the connection.
    due: AtomicBool,
}

impl Watch {
    /// Watches a newly attached connection with this keep alive (0: none). Called under the
    /// session's lock, where the connection is attached, so that a takeover cannot undo it.
    pub(crate) fn arm(&self, keep_alive: Duration, now: u32) {
        let ticks = keep_alive
            .mul_f64(1.5)
            .as_millis()
            .div_ceil(TICK.as_millis());
        self.heard.store(now, Ordering::Relaxed);
        self.due.store(false, Ordering::Relaxed);
        self.limit
            .store(u32::try_from(ticks).unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    /// Stops watching: the attached connection left.
    pub(crate) fn disarm(&self) {
        self.limit.store(0, Ordering::Relaxed);
    }

    /// The connection read something at broker tick `now`.
    #[inline]
    pub(crate) fn heard(&self, now: u32) {
        self.heard.store(now, Ordering::Relaxed);
    }

    /// Whether the sweep found the connection silent for too long, and it still is at `now`
    /// (a packet may have come since).
    pub(crate) fn take_due(&self, now: u32) -> bool {
        self.due.load(Ordering::Relaxed)
            && self.due.swap(false, Ordering::Relaxed)
            && self.is_overdue(now)
    }

    /// Silent for more than the limit: more than `limit` whole ticks have passed since the
    /// tick of the last read, so more than 1.5 times the keep alive.
    fn is_overdue(&self, now: u32) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        limit > 0 && now.wrapping_sub(self.heard.load(Ordering::Relaxed)) > limit
    }

    /// Marks the connection due when it is overdue at `now`.
    fn check(&self, now: u32) -> bool {
        let overdue = self.is_overdue(now);
        if overdue {
            self.due.store(true, Ordering::Relaxed);
        }
        overdue
    }
}

/// Advances the broker clock and wakes overdue connections, until the task is aborted.
pub(crate) async fn run(broker: Broker) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Real time, not a count of ticks: a late tick must not make the clock fall behind.
        let ticks = broker.inner.started.elapsed().as_millis() / TICK.as_millis();
        let now = u32::try_from(ticks).unwrap_or(u32::MAX);
        broker.inner.tick.store(now, Ordering::Relaxed);
        for session in lock(&broker.inner.sessions).values() {
            if session.keep_alive.check(now) {
                session.wake.notify_one();
            }
        }
    }
}
