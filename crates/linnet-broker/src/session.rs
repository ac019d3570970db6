//! Session state: what outlives a connection (subscriptions, queued and in-flight QoS 1/2
//! messages, incoming QoS 2 packet ids) and the outgoing byte buffer that publishers append
//! to. One `Mutex` per session guards it; it is held only for short, non-`.await` sections
//! (and one non-blocking `write`). Publishers encode straight into the subscriber's buffer;
//! at the end of its read batch a publishing connection writes each such buffer to the
//! subscriber's socket itself when there are few ([`FlushBatch`]), or wakes the subscribers'
//! connection tasks, which write everything pending in one syscall.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::{NonZeroU16, NonZeroU32};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use bytestring::ByteString;
use linnet_proto::{
    Forward, Packet, PacketId, PerHop, ProtocolVersion, PubResponse, QoS, TopicFilter,
};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::message::{Message, Routed};
use crate::Stats;

/// A client session, shared by the registry, the router and its connection task.
#[derive(Debug)]
pub(crate) struct Session {
    /// Unique per session object (a clean start makes a new one).
    pub(crate) id: u64,
    pub(crate) client_id: ByteString,
    /// Wakes the owning connection: output is pending, it has been taken over, or its
    /// keep alive may have run out.
    pub(crate) wake: Notify,
    /// Keep-alive bookkeeping of the attached connection, read by the broker's sweep.
    pub(crate) keep_alive: crate::keep_alive::Watch,
    pub(crate) state: Mutex<SessionState>,
}

/// The connection currently attached to a session.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// Identifies the connection; a takeover changes it.
    pub(crate) generation: u64,
    pub(crate) version: ProtocolVersion,
    /// The client's Maximum Packet Size: larger packets are dropped [MQTT-3.1.2-25].
    pub(crate) max_packet_size: u32,
    /// QoS 1/2 messages in flight to the client at once.
    pub(crate) window: usize,
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// PUBLISH sent (QoS 1 waits for PUBACK, QoS 2 for PUBREC).
    Published,
    /// PUBREL sent, waiting for PUBCOMP.
    Released,
}

#[derive(Debug)]
pub(crate) struct Inflight {
    pub(crate) packet_id: PacketId,
    pub(crate) qos: QoS,
    pub(crate) stage: Stage,
    /// Owed a re-send on the current connection (after a reconnect), not yet sent.
    pub(crate) resend_pending: bool,
    pub(crate) delivery: Delivery,
}

/// One message on its way to one subscriber, with the per-subscriber parts.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) message: Arc<Message>,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) subscription_ids: Vec<NonZeroU32>,
    /// Set when it reached this session through a shared subscription: if the session ends
    /// before the client acknowledges it, another member of the group gets it.
    pub(crate) shared: Option<TopicFilter>,
}

impl Delivery {
    fn outgoing(&self) -> Outgoing<'_> {
        Outgoing {
            message: &self.message,
            qos: self.qos,
            retain: self.retain,
            subscription_ids: &self.subscription_ids,
        }
    }
}

/// A message offered to one session, with that session's parts, all by reference: written
/// out at once it costs no copy; kept (queued or in flight) it becomes a [`Delivery`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Offer<'a> {
    pub(crate) routed: &'a Routed,
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) subscription_ids: &'a [NonZeroU32],
    pub(crate) shared: Option<&'a TopicFilter>,
}

impl Offer<'_> {
    fn to_delivery(self) -> Delivery {
        Delivery {
            message: self.routed.shared(),
            qos: self.qos,
            retain: self.retain,
            subscription_ids: self.subscription_ids.to_vec(),
            shared: self.shared.cloned(),
        }
    }

    fn outgoing(&self) -> Outgoing<'_> {
        Outgoing {
            message: self.routed.message(),
            qos: self.qos,
            retain: self.retain,
            subscription_ids: self.subscription_ids,
        }
    }
}

/// What one PUBLISH to one client is made of.
struct Outgoing<'a> {
    message: &'a Message,
    qos: QoS,
    retain: bool,
    subscription_ids: &'a [NonZeroU32],
}

#[derive(Debug, Default)]
pub(crate) struct SessionState {
    pub(crate) link: Option<Link>,
    /// Encoded packets waiting to be written to the connection.
    pub(crate) out: BytesMut,
    /// The attached connection's TCP socket, for writes from other tasks (`None` for
    /// WebSocket connections and while detached).
    pub(crate) socket: Option<Arc<TcpStream>>,
    /// The connection task is writing a buffer it took from `out`: nobody else may write to
    /// the socket until it is done, or bytes would interleave.
    pub(crate) writing: bool,
    /// Topic aliases in use towards the attached connection.
    pub(crate) aliases_out: TopicAliases,
    /// Outgoing QoS 1/2 messages not yet completed, in the order they were sent.
    pub(crate) inflight: VecDeque<Inflight>,
    /// Messages waiting for room in the in-flight window or for a connection.
    pub(crate) queue: VecDeque<Delivery>,
    next_packet_id: u16,
    /// Incoming QoS 2 packet ids answered with PUBREC, waiting for PUBREL.
    pub(crate) incoming_qos2: HashSet<u16>,
    /// Filter text -> filter, to remove them from the router when the session ends (the
    /// router holds the options).
    pub(crate) subscriptions: HashMap<ByteString, TopicFilter>,
    /// Session Expiry Interval in seconds (u32::MAX: never).
    pub(crate) expiry_interval: u32,
    /// Generation of the connection that detached last; timers started at a disconnect act
    /// only if no connection has come and gone since.
    pub(crate) detached_generation: u64,
}

/// Limits that apply to every session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) max_queued: usize,
    pub(crate) max_outbound_bytes: usize,
}

impl Session {
    pub(crate) fn new(id: u64, client_id: ByteString) -> Self {
        Self {
            id,
            client_id,
            wake: Notify::new(),
            keep_alive: crate::keep_alive::Watch::default(),
            state: Mutex::new(SessionState::default()),
        }
    }

    /// Is a connection attached? For the router's choice among shared members.
    pub(crate) fn is_connected(&self) -> bool {
        crate::lock(&self.state).link.is_some()
    }

    /// Writes the pending output straight to the client's socket, if its connection is not
    /// writing itself. True when nothing is left for the connection task to do.
    fn write_inline(&self, stats: &Stats) -> bool {
        let mut guard = crate::lock(&self.state);
        let state = &mut *guard;
        if state.out.is_empty() {
            return true;
        }
        let Some(socket) = state.socket.as_ref().filter(|_| !state.writing) else {
            return false;
        };
        loop {
            match socket.try_write(&state.out) {
                Ok(written) if written > 0 => {
                    stats
                        .bytes_sent
                        .fetch_add(written as u64, Ordering::Relaxed);
                    if written == state.out.len() {
                        // Keeps the allocation: the next message reuses it.
                        state.out.clear();
                        return true;
                    }
                    state.out.advance(written);
                }
                // Full socket (the connection task waits for it to drain), or an error
                // the connection task will meet itself.
                _ => return false,
            }
        }
    }
}

/// Most subscribers one publishing connection writes to itself at the end of a read batch;
/// beyond it their connection tasks are woken to write in parallel.
const INLINE_FLUSH_MAX: usize = 4;

/// The subscriber sessions a connection's read batch gave output to (collected, then
/// written once per batch, as NATS does): no wake-up and no second task on the path of a
/// message when there are few of them.
#[derive(Debug, Default)]
pub(crate) struct FlushBatch {
    sessions: Vec<Arc<Session>>,
}

impl FlushBatch {
    /// `session`'s output went from empty to pending.
    pub(crate) fn add(&mut self, session: &Arc<Session>) {
        self.sessions.push(Arc::clone(session));
    }

    /// Writes or hands over everything collected.
    pub(crate) fn finish(&mut self, stats: &Stats) {
        let inline = self.sessions.len() <= INLINE_FLUSH_MAX;
        for session in self.sessions.drain(..) {
            if !(inline && session.write_inline(stats)) {
                session.wake.notify_one();
            }
        }
    }
}

impl SessionState {
    /// Is the connection with this generation the one attached? (A takeover attaches a new
    /// generation; the old connection must then leave the session's state alone.)
    pub(crate) fn is_attached(&self, generation: u64) -> bool {
        self.link
            .as_ref()
            .is_some_and(|link| link.generation == generation)
    }

    /// Hands `delivery` to the client now if connected and the window allows, else queues it
    /// (QoS 1/2 only; QoS 0 is not kept for offline or slow clients). Returns true when bytes
    /// were added to `out` while it was empty, i.e. the connection needs a wake-up.
    pub(crate) fn deliver(
        &mut self,
        delivery: Delivery,
        limits: QueueLimits,
        stats: &Stats,
        now: Instant,
    ) -> bool {
        let routed = Routed::from(delivery.message);
        let offer = Offer {
            routed: &routed,
            qos: delivery.qos,
            retain: delivery.retain,
            subscription_ids: &delivery.subscription_ids,
            shared: delivery.shared.as_ref(),
        };
        self.offer(offer, limits, stats, now)
    }

    /// [`SessionState::deliver`] for a message being routed: it is copied only if this
    /// session keeps it.
    pub(crate) fn offer(
        &mut self,
        offer: Offer<'_>,
        limits: QueueLimits,
        stats: &Stats,
        now: Instant,
    ) -> bool {
        let was_empty = self.out.is_empty();
        let Some(link) = self.link.clone() else {
            if offer.qos != QoS::AtMostOnce {
                self.enqueue(offer.to_delivery(), limits, stats);
            }
            return false;
        };
        if offer.qos == QoS::AtMostOnce {
            if self.out.len() >= limits.max_outbound_bytes {
                // Slow consumer: shed QoS 0 rather than grow without bound.
                stats.messages_dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            self.writer(&link, stats, now)
                .publish(offer.outgoing(), None, false);
        } else if self.inflight.len() < link.window && self.queue.is_empty() {
            self.send_inflight(&link, offer.to_delivery(), stats, now);
        } else {
            self.enqueue(offer.to_delivery(), limits, stats);
        }
        was_empty && !self.out.is_empty()
    }

    fn enqueue(&mut self, delivery: Delivery, limits: QueueLimits, stats: &Stats) {
        if self.queue.len() >= limits.max_queued {
            // Full: the new message is dropped so that those queued keep their order.
            stats.messages_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.queue.push_back(delivery);
    }

    fn allocate_packet_id(&mut self) -> PacketId {
        loop {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            if let Some(id) = NonZeroU16::new(self.next_packet_id) {
                if !self.inflight.iter().any(|i| i.packet_id == id) {
                    return id;
                }
            }
        }
    }

    fn writer<'a>(&'a mut self, link: &'a Link, stats: &'a Stats, now: Instant) -> Writer<'a> {
        Writer {
            out: &mut self.out,
            aliases: &mut self.aliases_out,
            link,
            stats,
            now,
        }
    }

    fn send_inflight(&mut self, link: &Link, delivery: Delivery, stats: &Stats, now: Instant) {
        let packet_id = self.allocate_packet_id();
        if self
            .writer(link, stats, now)
            .publish(delivery.outgoing(), Some(packet_id), false)
        {
            self.inflight.push_back(Inflight {
                packet_id,
                qos: delivery.qos,
                stage: Stage::Published,
                resend_pending: false,
                delivery,
            });
        }
    }

    /// Fills the window (after an ack, or on reconnect): first in-flight messages still
    /// waiting for their re-send, in order, then queued messages. Expired queued messages are
    /// discarded on the way.
    pub(crate) fn drain_queue(&mut self, stats: &Stats, now: Instant) {
        let Some(link) = self.link.clone() else {
            return;
        };
        let active = self.inflight.iter().filter(|i| !i.resend_pending).count();
        let room = link.window.saturating_sub(active);
        let mut writer = Writer {
            out: &mut self.out,
            aliases: &mut self.aliases_out,
            link: &link,
            stats,
            now,
        };
        for entry in self
            .inflight
            .iter_mut()
            .filter(|i| i.resend_pending)
            .take(room)
        {
            writer.resend(entry);
            entry.resend_pending = false;
        }
        if self.inflight.iter().any(|i| i.resend_pending) {
            return;
        }
        while self.inflight.len() < link.window {
            let Some(delivery) = self.queue.pop_front() else {
                break;
            };
            if delivery.message.is_expired(now) {
                continue;
            }
            self.send_inflight(&link, delivery, stats, now);
        }
    }

    /// On reconnect with a kept session: every unacknowledged message is re-sent, PUBLISH
    /// with DUP and PUBREL for those released, in the original order and with the original
    /// packet ids [MQTT-4.4.0-1], as far as the new connection's window allows; the rest
    /// follow as acks free the window [MQTT-3.3.4-9].
    pub(crate) fn resend_inflight(&mut self, stats: &Stats, now: Instant) {
        for entry in &mut self.inflight {
            entry.resend_pending = true;
        }
        self.drain_queue(stats, now);
    }

    /// PUBACK (QoS 1) or PUBCOMP (QoS 2) completes a message; true if it was in flight.
    pub(crate) fn complete(&mut self, packet_id: PacketId, expected: Stage, qos: QoS) -> bool {
        let found = self
            .inflight
            .iter()
            .position(|i| i.packet_id == packet_id && i.stage == expected && i.qos == qos);
        match found {
            Some(index) => {
                self.inflight.remove(index);
                true
            }
            None => false,
        }
    }

    /// PUBREC: the QoS 2 message moves to the released stage. False if unknown.
    pub(crate) fn release(&mut self, packet_id: PacketId) -> bool {
        match self.inflight.iter_mut().find(|i| {
            i.packet_id == packet_id && i.qos == QoS::ExactlyOnce && i.stage == Stage::Published
        }) {
            Some(entry) => {
                entry.stage = Stage::Released;
                true
            }
            // A duplicate PUBREC for one already released is answered with PUBREL again.
            None => self
                .inflight
                .iter()
                .any(|i| i.packet_id == packet_id && i.stage == Stage::Released),
        }
    }

    /// Appends a control packet (an ack) for the attached connection.
    pub(crate) fn write_packet(&mut self, packet: &Packet) {
        if let Some(link) = &self.link {
            // Acks are tiny; one too large for the client is dropped like any other packet.
            let _ = packet.encode_within_bytes(link.version, link.max_packet_size, &mut self.out);
        }
    }
}

/// Topic aliases the broker uses towards a v5 client that allows them (MQTT 5.0 3.3.2.3.4):
/// the first PUBLISH on a topic carries the topic and a new alias, later ones only the alias.
/// When the client's maximum is reached, further topics go out in full. Reset with each
/// connection [MQTT-3.3.2-7].
#[derive(Debug, Default)]
pub(crate) struct TopicAliases {
    max: u16,
    assigned: HashMap<ByteString, NonZeroU16, foldhash::fast::RandomState>,
}

impl TopicAliases {
    /// Starts over for a connection whose client accepts aliases up to `max`.
    pub(crate) fn reset(&mut self, max: u16) {
        self.max = max;
        self.assigned.clear();
    }
}

/// Encodes outgoing packets for one attached connection into its buffer.
struct Writer<'a> {
    out: &'a mut BytesMut,
    aliases: &'a mut TopicAliases,
    link: &'a Link,
    stats: &'a Stats,
    /// What message expiry is checked against, and nothing else: for a message without an
    /// expiry the router passes a stand-in rather than read the clock (see
    /// `Broker::publish_into`).
    now: Instant,
}

impl Writer<'_> {
    /// Re-sends one in-flight message: PUBLISH with DUP, or PUBREL once released.
    fn resend(&mut self, entry: &Inflight) {
        match entry.stage {
            Stage::Published => {
                self.publish(entry.delivery.outgoing(), Some(entry.packet_id), true);
            }
            Stage::Released => {
                let pubrel = Packet::PubRel(PubResponse::new(entry.packet_id));
                let _ = pubrel.encode(self.link.version, self.out);
            }
        }
    }

    /// Encodes one PUBLISH. False when it was dropped: expired before its first send, or
    /// larger than the client accepts (then it counts as delivered [MQTT-3.1.2-25]).
    fn publish(&mut self, delivery: Outgoing<'_>, packet_id: Option<PacketId>, dup: bool) -> bool {
        let message = delivery.message;
        // Expiry stops a message before its first send; once sent, a re-send (DUP) goes out
        // whatever its age [MQTT-4.3.3-7].
        if !dup && message.is_expired(self.now) {
            return false;
        }
        let mut topic: &str = &message.topic;
        let mut hop = PerHop::default();
        let mut new_alias = None;
        if self.link.version.is_v5() {
            // At least 1 s: a re-send of an expired message must not read as "already gone".
            hop.message_expiry_interval =
                message.remaining_expiry(self.now).map(|secs| secs.max(1));
            hop.subscription_identifiers = delivery.subscription_ids;
            if self.aliases.max > 0 {
                if let Some(&alias) = self.aliases.assigned.get(&message.topic) {
                    topic = "";
                    hop.topic_alias = Some(alias);
                } else if self.aliases.assigned.len() < usize::from(self.aliases.max) {
                    let alias = NonZeroU16::new(self.aliases.assigned.len() as u16 + 1);
                    hop.topic_alias = alias;
                    new_alias = alias;
                }
            }
        }
        let forward = Forward {
            dup,
            qos: delivery.qos,
            retain: delivery.retain,
            topic,
            packet_id,
            payload: &message.payload,
            properties: message.properties(),
            hop,
        };
        let fits = forward
            .encode_within(self.link.version, self.link.max_packet_size, self.out)
            .is_ok();
        if fits {
            // Only an alias the client has actually been sent may be used alone later.
            if let Some(alias) = new_alias {
                self.aliases.assigned.insert(message.topic.clone(), alias);
            }
            self.stats.publish_sent.fetch_add(1, Ordering::Relaxed);
            self.stats.messages_sent.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.messages_dropped.fetch_add(1, Ordering::Relaxed);
        }
        fits
    }
}
