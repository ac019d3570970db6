//! The process-wide clock of payload timestamps.
//!
//! Timestamps are nanoseconds since a process-wide monotonic [`Instant`] epoch, offset by the
//! wall-clock time read once at that epoch: monotonic within a process and comparable (to
//! within the precision of two reads of the system clock) between a `linnet bench pub` and a
//! `linnet bench sub` on the same host.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Epoch {
    instant: Instant,
    unix_ns: u64,
}

fn epoch() -> &'static Epoch {
    static EPOCH: OnceLock<Epoch> = OnceLock::new();
    EPOCH.get_or_init(|| Epoch {
        instant: Instant::now(),
        unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    })
}

/// The timestamp of `instant` (a std or tokio `Instant`; nanoseconds, see the module
/// documentation).
pub fn instant_to_ns(instant: impl Into<Instant>) -> u64 {
    let instant = instant.into();
    let epoch = epoch();
    let since = instant.saturating_duration_since(epoch.instant);
    let before = epoch.instant.saturating_duration_since(instant);
    let since = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
    let before = u64::try_from(before.as_nanos()).unwrap_or(u64::MAX);
    epoch.unix_ns.saturating_add(since).saturating_sub(before)
}

/// The timestamp of now.
pub fn now_ns() -> u64 {
    instant_to_ns(Instant::now())
}
