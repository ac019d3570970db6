//! The subscriber loop and the measurement [`Group`] it records into: one per subscriber, or
//! one for all members of a shared subscription, so "exactly once across the group" is checked
//! by the same sequence trackers.

use std::sync::{Arc, Mutex, PoisonError};

use linnet_proto::{Packet, PubResponse, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

use crate::clock::instant_to_ns;
use crate::conn::{
    closed, consume, decode_next, disconnected, reserve_read, stopped, Conn, Counters,
};
use crate::error::BenchError;
use crate::payload::Stamp;
use crate::stats::{LatencyHistogram, SeqTracker, TrackStart};

/// Highest publisher index tracked; stamps from beyond it count as untracked.
const MAX_TRACKED_PUBLISHERS: usize = 1 << 20;

/// Totals of a [`Group`] once its publishers' sent counts are known.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct GroupTotals {
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) reordered: u64,
}

/// Per-publisher order as one member of a shared subscription sees it. Members of a group
/// receive interleaved slices of each publisher's stream, so order is only defined within a
/// member: an arrival below the highest number this member has seen is reordered.
#[derive(Debug, Default)]
pub(crate) struct MemberOrder {
    next: Vec<u64>,
}

impl MemberOrder {
    /// Records `seq` from `publisher`; true if it arrived after a higher one.
    fn reordered(&mut self, publisher: u32, seq: u64) -> bool {
        let slot = publisher as usize;
        if slot >= MAX_TRACKED_PUBLISHERS {
            return false;
        }
        if self.next.len() <= slot {
            self.next.resize(slot + 1, 0);
        }
        let next = &mut self.next[slot];
        if seq < *next {
            true
        } else {
            *next = seq + 1;
            false
        }
    }
}

/// What one subscriber, or one shared-subscription group, received.
#[derive(Debug)]
pub(crate) struct Group {
    start: TrackStart,
    /// A shared-subscription group: order is checked per member ([`MemberOrder`]), loss and
    /// duplicates across the group.
    pub(crate) shared: bool,
    member_reordered: u64,
    trackers: Vec<Option<SeqTracker>>,
    pub(crate) latency: LatencyHistogram,
    pub(crate) received: u64,
    /// Messages without a stamp (too short): counted, not measured.
    pub(crate) foreign: u64,
    /// Stamped messages from a publisher index beyond the tracked range.
    pub(crate) untracked: u64,
    pub(crate) first_receive: Option<Instant>,
    pub(crate) last_receive: Option<Instant>,
}

impl Group {
    pub(crate) fn new(start: TrackStart, shared: bool) -> Self {
        Self {
            start,
            shared,
            member_reordered: 0,
            trackers: Vec::new(),
            latency: LatencyHistogram::new(),
            received: 0,
            foreign: 0,
            untracked: 0,
            first_receive: None,
            last_receive: None,
        }
    }

    /// Records one received payload at `now_ns`; `member` is the receiving member's order
    /// in a shared group.
    pub(crate) fn record(&mut self, payload: &[u8], now_ns: u64, member: Option<&mut MemberOrder>) {
        self.received += 1;
        let Some(stamp) = Stamp::read(payload) else {
            self.foreign += 1;
            return;
        };
        self.latency.record_since(stamp.sent_ns, now_ns);
        if let Some(member) = member {
            self.member_reordered += u64::from(member.reordered(stamp.publisher, stamp.seq));
        }
        let slot = stamp.publisher as usize;
        if slot >= MAX_TRACKED_PUBLISHERS {
            self.untracked += 1;
            return;
        }
        if self.trackers.len() <= slot {
            self.trackers.resize_with(slot + 1, || None);
        }
        let start = self.start;
        self.trackers[slot]
            .get_or_insert_with(|| SeqTracker::new(start))
            .record(stamp.seq);
    }

    /// Lost, duplicated and reordered messages. `expected` lists the publishers this group
    /// should have heard from with what each sent; `None` when unknown (a lone `sub`).
    pub(crate) fn totals(&self, expected: Option<&[(u32, u64)]>) -> GroupTotals {
        let mut totals = GroupTotals::default();
        for tracker in self.trackers.iter().flatten() {
            totals.duplicated += tracker.duplicated();
            totals.reordered += tracker.reordered();
        }
        if self.shared {
            totals.reordered = self.member_reordered;
        }
        match expected {
            Some(expected) => {
                for &(publisher, sent) in expected {
                    totals.lost += match self.trackers.get(publisher as usize) {
                        Some(Some(tracker)) => tracker.lost(Some(sent)),
                        _ => sent,
                    };
                }
            }
            None => {
                for tracker in self.trackers.iter().flatten() {
                    totals.lost += tracker.lost(None);
                }
            }
        }
        totals
    }
}

/// Reads and acknowledges deliveries into `group` until `stop` (or `hard`), then disconnects.
pub(crate) async fn run_subscriber(
    mut conn: Conn,
    group: Arc<Mutex<Group>>,
    counters: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
    hard: Instant,
) -> Result<(), BenchError> {
    let mut last_write = Instant::now();
    let mut member = group
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .shared
        .then(MemberOrder::default);
    let Conn {
        client_id,
        stream,
        decoder,
        rbuf,
        out,
        version,
        ping_every,
        ..
    } = &mut conn;
    let version = *version;
    let (mut reader, mut writer) = stream.split();
    loop {
        let wake = if ping_every.is_zero() {
            hard
        } else {
            (last_write + *ping_every).min(hard)
        };
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            read = reader.read_buf(rbuf) => {
                match read {
                    Ok(0) => return Err(closed(client_id, "")),
                    Ok(_) => {}
                    Err(source) => return Err(BenchError::Io { client_id: client_id.clone(), source }),
                }
                let now = Instant::now();
                let now_ns = instant_to_ns(now);
                let mut delivered = 0;
                {
                    let mut group = group.lock().unwrap_or_else(PoisonError::into_inner);
                    while let Some(packet) = decode_next(decoder, rbuf, client_id)? {
                        match packet {
                            Packet::Publish(publish) => {
                                group.record(&publish.payload, now_ns, member.as_mut());
                                delivered += 1;
                                match (publish.qos, publish.packet_id) {
                                    (QoS::AtLeastOnce, Some(id)) => {
                                        Packet::PubAck(PubResponse::new(id)).encode(version, out)?;
                                    }
                                    (QoS::ExactlyOnce, Some(id)) => {
                                        Packet::PubRec(PubResponse::new(id)).encode(version, out)?;
                                    }
                                    _ => {}
                                }
                            }
                            Packet::PubRel(rel) => {
                                Packet::PubComp(PubResponse::new(rel.packet_id)).encode(version, out)?;
                            }
                            Packet::Disconnect(disconnect) => {
                                return Err(disconnected(client_id, &disconnect));
                            }
                            _ => {}
                        }
                    }
                    if delivered > 0 {
                        group.first_receive.get_or_insert(now);
                        group.last_receive = Some(now);
                    }
                }
                Counters::add(&counters.received, delivered);
                if delivered > 0 {
                    counters.delivered.notify_waiters();
                }
                reserve_read(rbuf);
            }
            written = writer.write(out), if !out.is_empty() => {
                match written {
                    Ok(0) => return Err(closed(client_id, "")),
                    Ok(n) => consume(out, n),
                    Err(source) => return Err(BenchError::Io { client_id: client_id.clone(), source }),
                }
                last_write = Instant::now();
            }
            _ = sleep_until(wake) => {
                if Instant::now() >= hard {
                    break;
                }
                Packet::PingReq.encode(version, out)?;
                last_write = Instant::now();
            }
        }
    }
    conn.close().await;
    Ok(())
}
