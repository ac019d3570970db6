//! A tiny xorshift generator for client ids and reconnect jitter (no `rand` dependency):
//! seeded from the clock, the process id, a per-process counter and a stack address.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh pseudo-random number; not for cryptography.
pub(crate) fn next_u64() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let addr = std::ptr::addr_of!(local) as u64;
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ addr.rotate_left(17);
    if x == 0 {
        x = 0x2545_F491_4F6C_DD1D;
    }
    // A few rounds of xorshift64* mix the seed well enough for ids and jitter.
    for _ in 0..4 {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
    }
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// "linnet-" and 12 hex digits.
pub(crate) fn client_id() -> String {
    format!("linnet-{:012x}", next_u64() & 0xFFFF_FFFF_FFFF)
}
