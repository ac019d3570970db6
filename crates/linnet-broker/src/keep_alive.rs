//! Keep alive for every connection at once [MQTT-3.1.2-22]: a coarse broker clock that
//! advances by one every [`TICK`], and one task that, on each tick, looks only at the
//! connections due on that tick (a hashed timing wheel) and wakes those silent past their
//! limit. A connection notes the tick on each read (two atomic operations: no clock reading,
//! no timer of its own, nothing polled per message).
//!
//! The clock counts sweeps, not real time: a late sweep makes a disconnect later, never
//! earlier. A connection is disconnected at least 1.5 times its keep alive after its last
//! packet, and about a second later at most while the broker keeps up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::session::Session;
use crate::{lock, Broker};

/// How often the sweep runs.
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// Slots of the wheel: a watch due further ahead is looked at once per lap (4 minutes) and
/// put back.
const SLOTS: u32 = 512;

/// One session's keep-alive bookkeeping, armed while a connection with a keep alive is
/// attached.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// The broker tick of the last read.
    heard: AtomicU32,
    /// Ticks of silence after which the connection is woken to check; 0 = not watched.
    limit: AtomicU32,
    /// The wheel slot the session's entry is in (changed under the wheel's lock).
    slot: AtomicU32,
    /// Set by the sweep before it wakes the connection.
    due: AtomicBool,
}

impl Watch {
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

    /// Silent for more than the limit: more than `limit` ticks since the tick of the last
    /// read, so more than 1.5 times the keep alive.
    fn is_overdue(&self, now: u32) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        limit > 0 && now.wrapping_sub(self.heard.load(Ordering::Relaxed)) > limit
    }

    /// The first tick at which the connection is overdue if it stays silent.
    fn due_tick(&self) -> u32 {
        let limit = self.limit.load(Ordering::Relaxed);
        self.heard
            .load(Ordering::Relaxed)
            .wrapping_add(limit)
            .wrapping_add(1)
    }
}

/// One wheel slot: the watched sessions, by session id, that fall due on its ticks. (Weak:
/// the wheel never keeps a session alive; a connection that leaves takes its entry out.)
type Slot = HashMap<u64, Weak<Session>, foldhash::fast::RandomState>;

/// The watches by the tick they fall due on, modulo [`SLOTS`].
#[derive(Debug)]
pub(crate) struct Wheel {
    slots: Mutex<Vec<Slot>>,
    /// The broker clock: sweeps since the broker started.
    tick: AtomicU32,
}

impl Default for Wheel {
    fn default() -> Self {
        Self {
            slots: Mutex::new((0..SLOTS).map(|_| Slot::default()).collect()),
            tick: AtomicU32::new(0),
        }
    }
}

impl Wheel {
    /// The broker clock now.
    #[inline]
    pub(crate) fn now(&self) -> u32 {
        self.tick.load(Ordering::Relaxed)
    }

    /// Watches `session`'s newly attached connection with this keep alive (0: none). Called
    /// under the session's lock, where the connection is attached, so that a takeover
    /// cannot undo it (lock order: session, then wheel).
    pub(crate) fn arm(&self, session: &Arc<Session>, keep_alive: Duration) {
        let watch = &session.keep_alive;
        let ticks = keep_alive
            .mul_f64(1.5)
            .as_millis()
            .div_ceil(TICK.as_millis());
        let limit = u32::try_from(ticks).unwrap_or(u32::MAX / 2);
        let mut slots = lock(&self.slots);
        // A connection it took over from may still have an entry.
        slots[watch.slot.load(Ordering::Relaxed) as usize].remove(&session.id);
        watch.heard.store(self.now(), Ordering::Relaxed);
        watch.due.store(false, Ordering::Relaxed);
        watch.limit.store(limit, Ordering::Relaxed);
        if limit > 0 {
            let slot = watch.due_tick() % SLOTS;
            watch.slot.store(slot, Ordering::Relaxed);
            slots[slot as usize].insert(session.id, Arc::downgrade(session));
        }
    }

    /// Stops watching `session`: its attached connection left. Called under the session's
    /// lock, like [`Wheel::arm`].
    pub(crate) fn disarm(&self, session: &Session) {
        let watch = &session.keep_alive;
        watch.limit.store(0, Ordering::Relaxed);
        lock(&self.slots)[watch.slot.load(Ordering::Relaxed) as usize].remove(&session.id);
    }

    /// Advances the clock by one tick and wakes the connections overdue on it; the others
    /// go to the slot of their new due tick. Waking, and dropping the sessions it looked at
    /// (a session can end meanwhile), happen after the wheel's lock is released: connects
    /// and disconnects wait on that lock.
    fn sweep(&self) {
        let now = self.tick.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let mut looked_at = Vec::new();
        let mut overdue = Vec::new();
        {
            let mut slots = lock(&self.slots);
            // Taken out and put back: the loop below inserts into other slots.
            let entries = std::mem::take(&mut slots[(now % SLOTS) as usize]);
            for (id, weak) in entries {
                let Some(session) = weak.upgrade() else {
                    continue;
                };
                let watch = &session.keep_alive;
                if watch.limit.load(Ordering::Relaxed) > 0 {
                    let next = if watch.is_overdue(now) {
                        watch.due.store(true, Ordering::Relaxed);
                        overdue.push(Arc::clone(&session));
                        // Looked at again next tick, until the connection has left.
                        now.wrapping_add(1) % SLOTS
                    } else {
                        watch.due_tick() % SLOTS
                    };
                    watch.slot.store(next, Ordering::Relaxed);
                    slots[next as usize].insert(id, weak);
                }
                looked_at.push(session);
            }
        }
        for session in overdue {
            session.wake.notify_one();
        }
    }
}

/// Runs the sweep every [`TICK`] until the task is aborted.
pub(crate) async fn run(broker: Broker) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick of an interval is immediate.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        broker.inner.keep_alive.sweep();
    }
}

#[cfg(test)]
mod tests {
    use bytestring::ByteString;

    use super::*;

    fn session() -> Arc<Session> {
        Arc::new(Session::new(1, ByteString::from_static("c")))
    }

    fn entries(wheel: &Wheel) -> usize {
        lock(&wheel.slots).iter().map(HashMap::len).sum()
    }

    #[test]
    fn overdue_only_after_more_than_one_and_a_half_keep_alives_of_ticks() {
        let wheel = Wheel::default();
        let session = session();
        // 1 s keep alive: 1.5 s = 3 ticks.
        wheel.arm(&session, Duration::from_secs(1));
        for _ in 0..3 {
            wheel.sweep();
            assert!(!session.keep_alive.due.load(Ordering::Relaxed));
        }
        wheel.sweep();
        assert!(session.keep_alive.take_due(wheel.now()));
    }

    #[test]
    fn a_read_postpones_and_a_new_connection_replaces_the_old_entry() {
        let wheel = Wheel::default();
        let session = session();
        wheel.arm(&session, Duration::from_secs(1));
        wheel.sweep();
        wheel.sweep();
        session.keep_alive.heard(wheel.now());
        for _ in 0..3 {
            wheel.sweep();
        }
        assert!(
            !session.keep_alive.due.load(Ordering::Relaxed),
            "read 3 ticks ago"
        );
        // A takeover without keep alive: the first connection's entry goes at once.
        wheel.arm(&session, Duration::ZERO);
        assert_eq!(entries(&wheel), 0);
        for _ in 0..10 {
            wheel.sweep();
        }
        assert!(!session.keep_alive.due.load(Ordering::Relaxed));
        assert_eq!(entries(&wheel), 0);
    }

    /// A connection that resumes the session (the same session, no disarm in between)
    /// replaces the entry, also after a sweep has moved it to another slot.
    #[test]
    fn a_resuming_connection_replaces_the_entry() {
        let wheel = Wheel::default();
        let session = session();
        wheel.arm(&session, Duration::from_secs(1));
        for _ in 0..4 {
            wheel.sweep();
        }
        assert!(session.keep_alive.take_due(wheel.now()));
        wheel.arm(&session, Duration::from_secs(2));
        assert_eq!(entries(&wheel), 1);
        for _ in 0..6 {
            wheel.sweep();
            assert!(!session.keep_alive.due.load(Ordering::Relaxed));
        }
        wheel.sweep();
        assert!(session.keep_alive.take_due(wheel.now()));
        assert_eq!(entries(&wheel), 1);
    }

    #[test]
    fn a_connection_that_leaves_takes_its_entry_out_at_once() {
        let wheel = Wheel::default();
        let sessions: Vec<_> = (0..100)
            .map(|id| Arc::new(Session::new(id, ByteString::from(format!("c{id}")))))
            .collect();
        for (n, session) in sessions.iter().enumerate() {
            wheel.arm(session, Duration::from_secs(1 + n as u64));
        }
        assert_eq!(entries(&wheel), 100);
        for _ in 0..7 {
            wheel.sweep();
        }
        assert_eq!(entries(&wheel), 100, "swept entries are put back");
        for session in &sessions {
            wheel.disarm(session);
        }
        assert_eq!(entries(&wheel), 0);
    }

    #[test]
    fn a_long_keep_alive_waits_whole_laps() {
        let wheel = Wheel::default();
        let session = session();
        // 65,535 s: far more ticks than the wheel has slots.
        wheel.arm(&session, Duration::from_secs(65_535));
        for _ in 0..3 * SLOTS {
            wheel.sweep();
        }
        assert!(!session.keep_alive.due.load(Ordering::Relaxed));
        assert_eq!(entries(&wheel), 1);
    }
}
