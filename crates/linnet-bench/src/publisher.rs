//! The publisher loop: open-loop on a schedule or max rate within an in-flight window, one
//! write per batch, acknowledgements read with the same task.

use std::num::NonZeroU16;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use linnet_proto::{Packet, PacketId, PubResponse, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant};

use crate::clock::instant_to_ns;
use crate::conn::{closed, consume, decode_next, disconnected, reserve_read, Conn, Counters};
use crate::error::BenchError;
use crate::payload::{PublishTemplate, Stamp};

/// What one publisher sends and when.
#[derive(Debug, Clone)]
pub(crate) struct PubPlan {
    pub(crate) template: PublishTemplate,
    pub(crate) qos: QoS,
    /// Open loop: nanoseconds between two messages; `None`: max rate (messages are stamped
    /// when written).
    pub(crate) interval_ns: Option<u64>,
    /// Open loop: offset of this publisher's schedule, so publishers do not send in step.
    pub(crate) phase_ns: u64,
    pub(crate) limit: u64,
    pub(crate) inflight: u16,
    pub(crate) batch_bytes: usize,
    /// When sending starts and stops.
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    /// Last moment to wait for acknowledgements after `end`.
    pub(crate) drain_until: Instant,
    /// Open loop: woken by the [pacer](crate::pacer) when a message is due; `None`: the
    /// tokio timer (1 ms resolution) wakes the publisher instead.
    pub(crate) paced: Option<Arc<Notify>>,
    /// Max rate in a scenario: the bound on messages in flight end to end, across all
    /// publishers of the run.
    pub(crate) delivery_window: Option<DeliveryWindow>,
}

/// Messages sent but not yet delivered, across a run: `sent x copies - received` deliveries
/// may be outstanding at most `max_messages x copies`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeliveryWindow {
    /// Deliveries per message (subscribers of fan-out; 1 otherwise).
    pub(crate) copies: u64,
    pub(crate) max_messages: u64,
    /// A full window with no delivery for this long is taken as lost messages (a broker that
    /// drops them), and is emptied so the run goes on; the report still counts them as lost.
    pub(crate) stall: Duration,
}

impl DeliveryWindow {
    /// Deliveries owed: sent x copies, less received and less what was written off.
    fn outstanding(&self, counters: &Counters) -> u64 {
        let sent = counters.sent.load(Ordering::Relaxed);
        let received = counters.received.load(Ordering::Relaxed);
        let written_off = counters.written_off.load(Ordering::Relaxed);
        sent.saturating_mul(self.copies)
            .saturating_sub(received)
            .saturating_sub(written_off)
    }

    /// Writes off everything outstanding now (see [`DeliveryWindow::stall`]).
    fn write_off(&self, counters: &Counters) {
        let outstanding = self.outstanding(counters);
        counters
            .written_off
            .fetch_add(outstanding, Ordering::Relaxed);
    }

    /// Messages that may be sent now.
    fn room(&self, counters: &Counters) -> u64 {
        let outstanding = self.outstanding(counters);
        (self.max_messages.saturating_mul(self.copies)).saturating_sub(outstanding)
            / self.copies.max(1)
    }
}

/// What one publisher did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PubOutcome {
    pub(crate) index: u32,
    /// Messages sent (sequence numbers 0..sent).
    pub(crate) sent: u64,
    /// QoS 1/2 messages acknowledged (PUBACK / PUBCOMP).
    pub(crate) acked: u64,
    /// When the last message was handed to the socket.
    pub(crate) send_end: Instant,
}

/// Packet identifiers 1..=size: free ones on a stack, so the window is bounded and an
/// identifier is never reused while in flight.
#[derive(Debug)]
struct Window {
    free: Vec<PacketId>,
    in_use: Vec<bool>,
}

impl Window {
    fn new(size: u16) -> Self {
        Self {
            free: (1..=size).rev().filter_map(NonZeroU16::new).collect(),
            in_use: vec![false; usize::from(size) + 1],
        }
    }

    fn available(&self) -> u64 {
        self.free.len() as u64
    }

    fn busy(&self) -> bool {
        self.free.len() + 1 < self.in_use.len()
    }

    fn acquire(&mut self) -> Option<PacketId> {
        let id = self.free.pop()?;
        self.in_use[usize::from(id.get())] = true;
        Some(id)
    }

    /// Frees `id`; `false` if it was not in flight (a stray acknowledgement).
    fn release(&mut self, id: PacketId) -> bool {
        match self.in_use.get_mut(usize::from(id.get())) {
            Some(slot) if *slot => {
                *slot = false;
                self.free.push(id);
                true
            }
            _ => false,
        }
    }
}

/// Resolves when the pacer says a message is due; never without a pacer.
async fn notified(pacer: Option<&Notify>) {
    match pacer {
        Some(notify) => notify.notified().await,
        None => std::future::pending().await,
    }
}

/// Runs one publisher to the end of its plan, then disconnects.
pub(crate) async fn run_publisher(
    mut conn: Conn,
    plan: PubPlan,
    counters: Arc<Counters>,
) -> Result<PubOutcome, BenchError> {
    let qos = plan.qos;
    let window_size = plan.inflight.min(conn.receive_maximum).max(1);
    let mut window = Window::new(window_size);
    let msg_len = plan.template.len().max(1);
    let base_ns = instant_to_ns(plan.start) + plan.phase_ns;
    let first_due = plan.start + Duration::from_nanos(plan.phase_ns);
    let mut seq: u64 = 0;
    let mut acked: u64 = 0;
    let mut send_end = None;
    // Open loop: due messages could not be sent because of the broker (window, socket).
    let mut held_back = false;
    // Max rate: the delivery window is full; wait for subscribers.
    let mut window_full = false;
    // Since when the window is full, and the deliveries counted then.
    let mut stalled: Option<(Instant, u64)> = None;
    let mut last_write = Instant::now();

    sleep_until(plan.start).await;
    let Conn {
        client_id,
        index,
        stream,
        decoder,
        rbuf,
        out,
        version,
        ping_every,
        ..
    } = &mut conn;
    let index = *index;
    let version = *version;
    let (mut reader, mut writer) = stream.split();

    loop {
        let now = Instant::now();
        let sending = seq < plan.limit && now < plan.end;
        if sending {
            // Messages this publisher may send now: all that are due (open loop) or as many
            // as fit (max rate), within the limit, the window and the batch.
            let due = match plan.interval_ns {
                Some(interval) if now >= first_due => {
                    let elapsed = u64::try_from((now - first_due).as_nanos()).unwrap_or(u64::MAX);
                    (elapsed / interval + 1).saturating_sub(seq)
                }
                Some(_) => 0,
                None => u64::MAX,
            }
            .min(plan.limit - seq);
            let room = if out.len() < plan.batch_bytes {
                ((plan.batch_bytes - out.len()) / msg_len).max(1) as u64
            } else {
                0
            };
            let mut n = due.min(room);
            if qos != QoS::AtMostOnce {
                n = n.min(window.available());
            }
            window_full = false;
            if let Some(delivery) = &plan.delivery_window {
                let mut room = delivery.room(&counters);
                if room == 0 {
                    let received = counters.received.load(Ordering::Relaxed);
                    match stalled {
                        Some((since, seen))
                            if seen == received && now - since >= delivery.stall =>
                        {
                            delivery.write_off(&counters);
                            stalled = None;
                            room = delivery.room(&counters);
                        }
                        Some((_, seen)) if seen == received => {}
                        _ => stalled = Some((now, received)),
                    }
                } else {
                    stalled = None;
                }
                window_full = room == 0;
                n = n.min(room);
            }
            let now_ns = instant_to_ns(now);
            for _ in 0..n {
                let packet_id = if qos == QoS::AtMostOnce {
                    None
                } else {
                    window.acquire()
                };
                // Open loop: a message the broker held back (full window, unwritable socket)
                // is stamped with its scheduled time, so that wait counts as latency (no
                // coordinated omission); any other is stamped now, so this process's own
                // timer jitter does not.
                let sent_ns = match plan.interval_ns {
                    Some(interval) if held_back => base_ns + seq * interval,
                    _ => now_ns,
                };
                let stamp = Stamp {
                    sent_ns,
                    publisher: index,
                    seq,
                };
                plan.template.append(out, packet_id, &stamp);
                seq += 1;
            }
            Counters::add(&counters.sent, n);
            held_back = plan.interval_ns.is_some() && n < due;
        } else if send_end.is_none() {
            send_end = Some(now);
        }
        if !sending && out.is_empty() && !window.busy() {
            break;
        }
        if !sending && now >= plan.drain_until {
            break;
        }

        // When to wake up if neither the socket nor the broker has news.
        let mut wake = if sending {
            match plan.interval_ns {
                Some(interval)
                    if plan.paced.is_none()
                        && out.len() < plan.batch_bytes
                        && (qos == QoS::AtMostOnce || window.available() > 0) =>
                {
                    (first_due + Duration::from_nanos(seq.saturating_mul(interval))).min(plan.end)
                }
                _ => plan.end,
            }
        } else {
            plan.drain_until
        };
        if window_full {
            // Woken by the subscribers; this only bounds a missed wake-up.
            wake = wake.min(now + Duration::from_millis(1));
        }
        let ping_at = (!ping_every.is_zero()).then(|| last_write + *ping_every);
        if let Some(ping_at) = ping_at {
            wake = wake.min(ping_at);
        }

        tokio::select! {
            biased;
            read = reader.read_buf(rbuf) => {
                match read {
                    Ok(0) => return Err(closed(client_id, "")),
                    Ok(_) => {}
                    Err(source) => return Err(BenchError::Io { client_id: client_id.clone(), source }),
                }
                let mut freed = 0;
                while let Some(packet) = decode_next(decoder, rbuf, client_id)? {
                    match packet {
                        Packet::PubAck(ack) | Packet::PubComp(ack) => {
                            freed += u64::from(window.release(ack.packet_id));
                        }
                        Packet::PubRec(rec) if !rec.reason_code.is_success() => {
                            freed += u64::from(window.release(rec.packet_id));
                        }
                        Packet::PubRec(rec) => {
                            Packet::PubRel(PubResponse::new(rec.packet_id)).encode(version, out)?;
                        }
                        Packet::Disconnect(disconnect) => {
                            return Err(disconnected(client_id, &disconnect));
                        }
                        _ => {}
                    }
                }
                acked += freed;
                Counters::add(&counters.acked, freed);
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
            _ = notified(plan.paced.as_deref()), if sending => {}
            _ = counters.delivered.notified(), if sending && window_full => {}
            _ = sleep_until(wake) => {
                if ping_at.is_some_and(|at| Instant::now() >= at) {
                    Packet::PingReq.encode(version, out)?;
                    last_write = Instant::now();
                }
            }
        }
    }
    let send_end = send_end.unwrap_or_else(Instant::now);
    conn.close().await;
    Ok(PubOutcome {
        index,
        sent: seq,
        acked,
        send_end,
    })
}
