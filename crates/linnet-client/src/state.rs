//! The client's protocol state, without sockets or clocks (sans-IO): packet identifiers, the
//! outgoing in-flight window (QoS 1/2 awaiting acks, bounded by the server's Receive Maximum),
//! the queue of publishes not yet sent (the offline queue), pending SUBSCRIBE / UNSUBSCRIBE,
//! the subscriptions to restore after a session loss, incoming QoS 2 ids, ordered manual acks
//! and topic aliases both ways.
//!
//! Inputs are method calls (`publish`, `subscribe`, `handle` for a received packet,
//! `on_connack`, `connection_lost`...); outputs are the packets in `out` (to be written in
//! order), `events` (for the application) and `written` (QoS 0 replies completed once `out`
//! is written). The connection task drains the three after every input.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Instant;

use bytestring::ByteString;
use linnet_proto::{
    AckProperties, ConnAck, Disconnect, Packet, PacketId, ProtocolVersion, PubResponse, Publish,
    QoS, ReasonCode, SubAck, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions,
    TopicFilter, UnsubAck, Unsubscribe,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ClientError;
use crate::{AckToken, Connected, Event, Message, OutgoingMessage, PublishOutcome};

/// Where a call's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// Answers a call; the caller may have gone away, which is fine.
pub(crate) fn answer<T>(reply: Option<Reply<T>>, value: Result<T, ClientError>) {
    if let Some(reply) = reply {
        let _ = reply.send(value);
    }
}

/// A publish not yet sent.
#[derive(Debug)]
struct Queued {
    msg: OutgoingMessage,
    reply: Option<Reply<PublishOutcome>>,
    /// When it started waiting (for its Message Expiry Interval).
    since: Instant,
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// PUBLISH sent, PUBACK / PUBREC awaited.
    Published,
    /// QoS 2: PUBREC (with this reason) received, PUBREL sent, PUBCOMP awaited.
    Released(ReasonCode),
}

/// An outgoing QoS 1/2 message holding a packet id.
#[derive(Debug)]
struct Inflight {
    /// Order of first sending, for re-sending in the original order [MQTT-4.6.0-1].
    seq: u64,
    /// The message as the application gave it (never an alias-only topic), so it can be
    /// re-sent on a new connection whose aliases start empty.
    msg: OutgoingMessage,
    stage: Stage,
    reply: Option<Reply<PublishOutcome>>,
}

/// SUBSCRIBE or UNSUBSCRIBE, waiting for a connection or for its ack.
#[derive(Debug)]
enum Control {
    Subscribe {
        subs: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        /// None for the client's own re-subscribe after a session loss.
        reply: Option<Reply<Vec<ReasonCode>>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        reply: Option<Reply<Vec<ReasonCode>>>,
    },
}

/// A received QoS 1/2 PUBLISH whose ack is owed, in arrival order.
#[derive(Debug)]
struct OwedAck {
    packet_id: PacketId,
    qos: QoS,
    /// The application acknowledged it (manual mode); always true in automatic mode.
    ready: bool,
}

/// What the server allows, from CONNACK.
#[derive(Debug, Clone)]
struct ServerLimits {
    receive_maximum: u16,
    topic_alias_maximum: u16,
    maximum_packet_size: u32,
    maximum_qos: QoS,
    retain_available: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            receive_maximum: u16::MAX,
            topic_alias_maximum: 0,
            maximum_packet_size: u32::MAX,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
        }
    }
}

/// A protocol violation by the server: the connection ends with DISCONNECT `code` (v5).
#[derive(Debug)]
pub(crate) struct Violation {
    pub(crate) code: ReasonCode,
    pub(crate) text: String,
}

impl Violation {
    fn new(code: ReasonCode, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
}

/// What a handled packet means for the connection.
#[derive(Debug)]
pub(crate) enum Flow {
    Continue,
    /// The server sent DISCONNECT.
    ServerDisconnect(Disconnect),
    /// An AUTH packet, for the connection task's authentication handler.
    Auth(linnet_proto::Auth),
}

/// The client's session and connection state; see the module docs.
#[derive(Debug)]
pub(crate) struct State {
    version: ProtocolVersion,
    manual_ack: bool,
    /// At most this many publishes may wait while disconnected.
    offline_limit: usize,
    /// The Topic Alias Maximum this client declared in CONNECT (incoming aliases).
    our_alias_max: u16,
    /// The time of the current input, from [`State::tick`].
    now: Instant,
    /// CONNECT carried an Authentication Method, so AUTH packets may come.
    pub(crate) enhanced_auth: bool,
    connected: bool,
    /// Counts connections; manual ack tokens carry it.
    generation: u64,
    server: ServerLimits,
    /// Packet ids in use (in-flight publishes and pending SUBSCRIBE / UNSUBSCRIBE).
    ids_in_use: HashSet<u16>,
    next_id: u16,
    next_seq: u64,
    inflight: HashMap<u16, Inflight>,
    /// In-flight PUBLISHes of a resumed session not yet re-sent on this connection (the
    /// server's new Receive Maximum held them back [MQTT-3.3.4-7]), in original order.
    resend: VecDeque<u16>,
    queue: VecDeque<Queued>,
    /// Sent SUBSCRIBE / UNSUBSCRIBE by packet id.
    controls: HashMap<u16, Control>,
    /// SUBSCRIBE / UNSUBSCRIBE waiting for a connection or a free packet id.
    deferred: VecDeque<Control>,
    /// Granted subscriptions (filter -> options, subscription id), restored after a session
    /// loss.
    subscriptions: BTreeMap<ByteString, (TopicFilter, SubscriptionOptions, Option<NonZeroU32>)>,
    /// Incoming QoS 2 ids between PUBLISH and PUBREL -> whether PUBREC was sent.
    incoming_qos2: HashMap<u16, bool>,
    owed_acks: VecDeque<OwedAck>,
    aliases_out: HashMap<ByteString, u16>,
    next_alias: u16,
    aliases_in: HashMap<u16, ByteString>,
    /// Per-filter handlers: matching messages go to these receivers instead of `events`.
    routes: Vec<(TopicFilter, mpsc::UnboundedSender<Message>)>,
    /// Packets to write, in order.
    pub(crate) out: Vec<Packet>,
    /// Events for the application, in order.
    pub(crate) events: Vec<Event>,
    /// QoS 0 publishes to answer once `out` has been written.
    pub(crate) written: Vec<Reply<PublishOutcome>>,
}

impl State {
    pub(crate) fn new(
        version: ProtocolVersion,
        manual_ack: bool,
        offline_limit: usize,
        our_alias_max: u16,
        now: Instant,
    ) -> Self {
        Self {
            now,
            version,
            manual_ack,
            offline_limit,
            our_alias_max,
            enhanced_auth: false,
            connected: false,
            generation: 0,
            server: ServerLimits::default(),
            ids_in_use: HashSet::new(),
            next_id: 1,
            next_seq: 0,
            inflight: HashMap::new(),
            resend: VecDeque::new(),
            queue: VecDeque::new(),
            controls: HashMap::new(),
            deferred: VecDeque::new(),
            subscriptions: BTreeMap::new(),
            incoming_qos2: HashMap::new(),
            owed_acks: VecDeque::new(),
            aliases_out: HashMap::new(),
            next_alias: 1,
            aliases_in: HashMap::new(),
            routes: Vec::new(),
            out: Vec::new(),
            events: Vec::new(),
            written: Vec::new(),
        }
    }

    /// The time of the inputs that follow (the state reads no clock itself).
    pub(crate) fn tick(&mut self, now: Instant) {
        self.now = now;
    }

    /// A queued message whose Message Expiry Interval ran out while it waited is answered
    /// with an error and dropped; otherwise the interval is reduced by the time it waited.
    fn unexpired(&self, mut queued: Queued) -> Option<Queued> {
        let Some(secs) = queued.msg.properties.message_expiry_interval else {
            return Some(queued);
        };
        if !self.version.is_v5() {
            return Some(queued);
        }
        let waited = self.now.saturating_duration_since(queued.since).as_secs();
        if waited >= u64::from(secs) {
            answer(
                queued.reply.take(),
                Err(ClientError::Timeout(
                    "the message expired in the offline queue",
                )),
            );
            return None;
        }
        queued.msg.properties.message_expiry_interval = Some(secs - waited as u32);
        queued.since = self.now;
        Some(queued)
    }

    // ----- connection lifecycle -----

    /// A CONNACK accepted the connection (`clean_start` as sent in CONNECT). Restores the
    /// session per `session_present` and sends what waited.
    pub(crate) fn on_connack(
        &mut self,
        connack: &ConnAck,
        clean_start: bool,
    ) -> Result<Connected, Violation> {
        if clean_start && connack.session_present {
            // [MQTT-3.2.2-4]: the client has no session state the server could have kept.
            return Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "CONNACK session present after a clean start",
            ));
        }
        let p = &connack.properties;
        self.server = ServerLimits {
            receive_maximum: p.receive_maximum.map_or(u16::MAX, NonZeroU16::get),
            topic_alias_maximum: if self.version.is_v5() {
                p.topic_alias_maximum.unwrap_or(0)
            } else {
                0
            },
            maximum_packet_size: p.maximum_packet_size.map_or(u32::MAX, NonZeroU32::get),
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available.unwrap_or(true),
        };
        self.connected = true;
        self.generation += 1;
        self.aliases_out.clear();
        self.next_alias = 1;
        self.aliases_in.clear();
        self.owed_acks.clear();

        // Everything that held a packet id, in original order.
        let mut inflight: Vec<(u16, Inflight)> = self.inflight.drain().collect();
        inflight.sort_by_key(|(_, f)| f.seq);
        let controls: Vec<(u16, Control)> = self.controls.drain().collect();
        self.resend.clear();
        let mut resubscribe = false;

        if connack.session_present {
            // [MQTT-4.4.0-1]: re-send unacknowledged PUBLISH (DUP) and PUBREL, same ids, in
            // the original order; PUBLISHes only as far as the server's Receive Maximum
            // allows [MQTT-3.3.4-7], the rest as acks free the window (see `pump`).
            let quota = usize::from(self.server.receive_maximum);
            let mut in_window = 0usize;
            for (id, flight) in inflight {
                let stage = flight.stage;
                self.inflight.insert(id, flight);
                match stage {
                    Stage::Published if in_window < quota && self.resend.is_empty() => {
                        if self.resend_publish(id) {
                            in_window += 1;
                        }
                    }
                    Stage::Published => self.resend.push_back(id),
                    Stage::Released(_) => {
                        in_window += 1;
                        self.out.push(Packet::PubRel(PubResponse::new(pid(id))));
                    }
                }
            }
        } else {
            // [MQTT-3.2.2-5]: the server has no session; drop ours. Messages it never
            // acknowledged are sent again as new messages; QoS 2 messages past PUBREC reached
            // the server and complete now.
            self.ids_in_use.clear();
            self.incoming_qos2.clear();
            let mut resend = Vec::new();
            for (_, flight) in inflight {
                match flight.stage {
                    Stage::Published => resend.push(Queued {
                        msg: flight.msg,
                        reply: flight.reply,
                        since: self.now,
                    }),
                    Stage::Released(reason) => answer(
                        flight.reply,
                        Ok(PublishOutcome {
                            reason,
                            properties: AckProperties::default(),
                        }),
                    ),
                }
            }
            for queued in resend.into_iter().rev() {
                self.queue.push_front(queued);
            }
            resubscribe = true;
        }
        // SUBSCRIBE / UNSUBSCRIBE that never got their ack go out again.
        let mut controls = controls;
        controls.sort_by_key(|(id, _)| *id);
        for (id, control) in controls.into_iter().rev() {
            self.ids_in_use.remove(&id);
            self.deferred.push_front(control);
        }
        if resubscribe {
            // Re-subscribe what the session held, before the SUBSCRIBE / UNSUBSCRIBE the
            // application issued since: a pending UNSUBSCRIBE is not undone.
            self.resubscribe();
        }
        self.pump();
        let properties = connack.properties.clone();
        let connected = Connected {
            session_present: connack.session_present,
            reason: connack.reason_code,
            assigned_client_id: properties
                .assigned_client_identifier
                .as_ref()
                .map(|s| s.to_string()),
            properties,
        };
        self.events.push(Event::Connected(connected.clone()));
        Ok(connected)
    }

    /// One SUBSCRIBE per subscription identifier for every granted filter, at the front of
    /// the deferred SUBSCRIBE / UNSUBSCRIBE.
    fn resubscribe(&mut self) {
        let mut groups: BTreeMap<Option<NonZeroU32>, Vec<(TopicFilter, SubscriptionOptions)>> =
            BTreeMap::new();
        for (filter, options, sub_id) in self.subscriptions.values() {
            groups
                .entry(*sub_id)
                .or_default()
                .push((filter.clone(), *options));
        }
        for (sub_id, subs) in groups.into_iter().rev() {
            self.deferred.push_front(Control::Subscribe {
                subs,
                properties: SubscribeProperties {
                    subscription_identifier: sub_id,
                    ..SubscribeProperties::default()
                },
                reply: None,
            });
        }
    }

    /// The connection is gone: keep the session (in-flight, queue, subscriptions), drop what
    /// belongs to the connection (aliases, owed acks: the server re-sends those messages).
    pub(crate) fn connection_lost(&mut self) {
        self.connected = false;
        self.out.clear();
        self.aliases_out.clear();
        self.aliases_in.clear();
        self.owed_acks.clear();
        // QoS 2 messages never acknowledged (manual mode) will come again: take them as new
        // then, or they would wait forever for an ack token of this dead connection.
        self.incoming_qos2.retain(|_, rec_sent| *rec_sent);
        // QoS 0 publishes whose bytes may not have left: they are lost, as QoS 0 allows.
        for reply in self.written.drain(..) {
            let _ = reply.send(Err(ClientError::ConnectionLost));
        }
    }

    /// The client is ending: every waiting call gets `err()`.
    pub(crate) fn fail_all(&mut self, err: impl Fn() -> ClientError) {
        self.resend.clear();
        for (_, flight) in self.inflight.drain() {
            answer(flight.reply, Err(err()));
        }
        for queued in self.queue.drain(..) {
            answer(queued.reply, Err(err()));
        }
        for control in self
            .controls
            .drain()
            .map(|(_, c)| c)
            .chain(self.deferred.drain(..))
        {
            match control {
                Control::Subscribe { reply, .. } | Control::Unsubscribe { reply, .. } => {
                    answer(reply, Err(err()));
                }
            }
        }
        for reply in self.written.drain(..) {
            let _ = reply.send(Err(err()));
        }
        self.ids_in_use.clear();
    }

    // ----- application calls -----

    /// Publishes now, or queues (window full, disconnected); answers with an error if the
    /// server does not accept the message or the offline queue is full.
    pub(crate) fn publish(&mut self, mut msg: OutgoingMessage, reply: Reply<PublishOutcome>) {
        if msg.topic.is_empty() {
            // Topic aliases are the client's own business: an alias-only message could not be
            // re-sent on a new connection, whose aliases start empty.
            let _ = reply.send(Err(ClientError::invalid(
                "topic",
                "empty (topic aliases are automatic)",
            )));
            return;
        }
        msg.properties.topic_alias = None;
        if self.connected {
            if let Err(e) = self.check_allowed(&msg) {
                let _ = reply.send(Err(e));
                return;
            }
        } else if self.queue.len() >= self.offline_limit {
            let _ = reply.send(Err(ClientError::QueueFull));
            return;
        }
        self.queue.push_back(Queued {
            msg,
            reply: Some(reply),
            since: self.now,
        });
        self.pump();
    }

    /// What the server said it accepts [MQTT-3.2.2-11] [MQTT-3.2.2-14] [MQTT-3.3.2-9].
    fn check_allowed(&self, msg: &OutgoingMessage) -> Result<(), ClientError> {
        if msg.qos > self.server.maximum_qos {
            return Err(ClientError::rejected(ReasonCode::QOS_NOT_SUPPORTED));
        }
        if msg.retain && !self.server.retain_available {
            return Err(ClientError::rejected(ReasonCode::RETAIN_NOT_SUPPORTED));
        }
        Ok(())
    }

    pub(crate) fn subscribe(
        &mut self,
        subs: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        reply: Reply<Vec<ReasonCode>>,
    ) {
        self.deferred.push_back(Control::Subscribe {
            subs,
            properties,
            reply: Some(reply),
        });
        self.pump();
    }

    pub(crate) fn unsubscribe(&mut self, filters: Vec<TopicFilter>, reply: Reply<Vec<ReasonCode>>) {
        self.deferred.push_back(Control::Unsubscribe {
            filters,
            reply: Some(reply),
        });
        self.pump();
    }

    /// The application acknowledged a message (manual mode).
    pub(crate) fn ack(&mut self, token: AckToken) {
        if token.generation != self.generation || !self.connected {
            return;
        }
        if let Some(owed) = self
            .owed_acks
            .iter_mut()
            .find(|o| o.packet_id.get() == token.packet_id && !o.ready && o.qos == token.qos)
        {
            owed.ready = true;
        }
        self.flush_acks();
    }

    /// The DISCONNECT packet for the application's disconnect.
    pub(crate) fn disconnect_packet(
        &self,
        reason: ReasonCode,
        properties: linnet_proto::DisconnectProperties,
    ) -> Packet {
        let mut d = Disconnect::new(reason);
        if self.version.is_v5() {
            d.properties = properties;
        }
        Packet::Disconnect(d)
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected
    }

    // ----- sending -----

    /// A free packet id [MQTT-2.2.1-3], or None if all 65535 are in use.
    fn alloc_id(&mut self) -> Option<u16> {
        if self.ids_in_use.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.checked_add(1).unwrap_or(1);
            if self.ids_in_use.insert(id) {
                return Some(id);
            }
        }
    }

    /// Sends what can be sent: deferred SUBSCRIBE / UNSUBSCRIBE (not held back by a full
    /// publish window [MQTT-3.3.4-8]), then queued publishes while the server's Receive
    /// Maximum allows [MQTT-3.3.4-7].
    fn pump(&mut self) {
        if !self.connected {
            return;
        }
        while !self.deferred.is_empty() {
            let Some(id) = self.alloc_id() else { break };
            let Some(control) = self.deferred.pop_front() else {
                break;
            };
            let packet = match &control {
                Control::Subscribe {
                    subs, properties, ..
                } => {
                    let mut s = Subscribe::new(pid(id), subs[0].0.clone(), subs[0].1.qos);
                    s.subscriptions = subs
                        .iter()
                        .map(|(filter, options)| Subscription {
                            filter: filter.clone(),
                            options: *options,
                        })
                        .collect();
                    if self.version.is_v5() {
                        s.properties = properties.clone();
                    }
                    Packet::Subscribe(s)
                }
                Control::Unsubscribe { filters, .. } => {
                    Packet::Unsubscribe(Unsubscribe::new(pid(id), filters.clone()))
                }
            };
            if let Err(e) = self.check_packet(&packet) {
                // Too large for the server (or for MQTT): the call fails, nothing is sent.
                self.ids_in_use.remove(&id);
                match control {
                    Control::Subscribe {
                        subs, reply: None, ..
                    } => self.events.push(Event::ResubscribeFailed {
                        failed: subs
                            .iter()
                            .map(|(f, _)| (f.as_str().to_owned(), ReasonCode::PACKET_TOO_LARGE))
                            .collect(),
                    }),
                    Control::Subscribe { reply, .. } | Control::Unsubscribe { reply, .. } => {
                        answer(reply, Err(e));
                    }
                }
                continue;
            }
            self.out.push(packet);
            self.controls.insert(id, control);
        }
        // Messages of a resumed session first, in their original order.
        while let Some(&id) = self.resend.front() {
            if self.inflight.len() - self.resend.len() >= usize::from(self.server.receive_maximum) {
                break;
            }
            self.resend.pop_front();
            self.resend_publish(id);
        }
        while let Some(front) = self.queue.front() {
            if front.msg.qos == QoS::AtMostOnce {
                let Some(queued) = self.queue.pop_front() else {
                    break;
                };
                if let Some(queued) = self.unexpired(queued) {
                    self.send_qos0(queued);
                }
                continue;
            }
            if self.inflight.len() >= usize::from(self.server.receive_maximum) {
                break;
            }
            let Some(queued) = self.queue.pop_front() else {
                break;
            };
            let Some(queued) = self.unexpired(queued) else {
                continue;
            };
            if let Err(e) = self.check_allowed(&queued.msg) {
                answer(queued.reply, Err(e));
                continue;
            }
            let Some(id) = self.alloc_id() else {
                self.queue.push_front(queued);
                break;
            };
            let publish = match self.build(&queued.msg, Some(pid(id)), false) {
                Ok(publish) => publish,
                Err(e) => {
                    self.ids_in_use.remove(&id);
                    answer(queued.reply, Err(e));
                    continue;
                }
            };
            self.out.push(publish);
            let seq = self.next_seq;
            self.next_seq += 1;
            self.inflight.insert(
                id,
                Inflight {
                    seq,
                    msg: queued.msg,
                    stage: Stage::Published,
                    reply: queued.reply,
                },
            );
        }
    }

    fn send_qos0(&mut self, queued: Queued) {
        if let Err(e) = self.check_allowed(&queued.msg) {
            answer(queued.reply, Err(e));
            return;
        }
        let publish = match self.build(&queued.msg, None, false) {
            Ok(publish) => publish,
            Err(e) => {
                answer(queued.reply, Err(e));
                return;
            }
        };
        self.out.push(publish);
        if let Some(reply) = queued.reply {
            self.written.push(reply);
        }
    }

    /// Re-sends in-flight PUBLISH `id` (DUP, same id) on a resumed session; a message that
    /// no longer fits the server's limits fails its call and leaves. False if nothing was sent.
    fn resend_publish(&mut self, id: u16) -> bool {
        let Some(msg) = self.inflight.get(&id).map(|f| f.msg.clone()) else {
            return false;
        };
        match self.build(&msg, Some(pid(id)), true) {
            Ok(publish) => {
                self.out.push(publish);
                true
            }
            Err(e) => {
                if let Some(flight) = self.inflight.remove(&id) {
                    self.ids_in_use.remove(&id);
                    answer(flight.reply, Err(e));
                }
                false
            }
        }
    }

    /// Every outgoing packet is measured: nothing larger than the server's Maximum Packet
    /// Size [MQTT-3.2.2-15], nothing MQTT cannot encode (a field or the whole packet too long).
    pub(crate) fn check_packet(&self, packet: &Packet) -> Result<(), ClientError> {
        match packet.encoded_size(self.version) {
            Ok(size) if size as u64 <= u64::from(self.server.maximum_packet_size) => Ok(()),
            Ok(_) => Err(ClientError::rejected(ReasonCode::PACKET_TOO_LARGE)),
            Err(e) => Err(ClientError::invalid(packet.packet_type().name(), e)),
        }
    }

    /// The PUBLISH for `msg`, measured ([`State::check_packet`]), with an automatic topic
    /// alias when the server allows them: the first message on a topic carries topic + new
    /// alias, later ones the alias and an empty topic [MQTT-3.2.2-17] [MQTT-3.2.2-18]. A new
    /// alias is registered only once the packet is known to fit.
    fn build(
        &mut self,
        msg: &OutgoingMessage,
        id: Option<PacketId>,
        dup: bool,
    ) -> Result<Packet, ClientError> {
        let mut publish = Publish::new(msg.topic.as_str(), msg.payload.clone())
            .with_qos(msg.qos, id)
            .with_retain(msg.retain);
        publish.dup = dup && msg.qos != QoS::AtMostOnce;
        let mut new_alias = None;
        if self.version.is_v5() {
            publish.properties = msg.properties.clone();
            // Aliases are automatic: one the application set is not used.
            publish.properties.topic_alias = None;
            if let Some(&alias) = self.aliases_out.get(msg.topic.as_str()) {
                publish.topic = ByteString::new();
                publish.properties.topic_alias = NonZeroU16::new(alias);
            } else if self.next_alias <= self.server.topic_alias_maximum {
                // Aliases are handed out in order and never reused on a connection: once
                // they run out, this is one comparison.
                new_alias = Some(self.next_alias);
                publish.properties.topic_alias = NonZeroU16::new(self.next_alias);
            }
        }
        let packet = Packet::Publish(publish);
        self.check_packet(&packet)?;
        if let Some(alias) = new_alias {
            self.next_alias += 1;
            self.aliases_out
                .insert(ByteString::from(msg.topic.as_str()), alias);
        }
        Ok(packet)
    }

    /// Sends the owed acks from the front of the list that are ready, keeping arrival order
    /// [MQTT-4.6.0-2] [MQTT-4.6.0-3].
    fn flush_acks(&mut self) {
        while self.owed_acks.front().is_some_and(|o| o.ready) {
            let Some(owed) = self.owed_acks.pop_front() else {
                break;
            };
            match owed.qos {
                QoS::AtLeastOnce => self
                    .out
                    .push(Packet::PubAck(PubResponse::new(owed.packet_id))),
                _ => {
                    self.incoming_qos2.insert(owed.packet_id.get(), true);
                    self.out
                        .push(Packet::PubRec(PubResponse::new(owed.packet_id)));
                }
            }
        }
    }

    // ----- received packets -----

    /// Handles one packet from the server.
    pub(crate) fn handle(&mut self, packet: Packet) -> Result<Flow, Violation> {
        match packet {
            Packet::Publish(p) => self.on_publish(p)?,
            Packet::PubAck(r) => self.on_puback(r),
            Packet::PubRec(r) => self.on_pubrec(r),
            Packet::PubRel(r) => self.on_pubrel(r),
            Packet::PubComp(r) => self.on_pubcomp(r),
            Packet::SubAck(s) => self.on_suback(s)?,
            Packet::UnsubAck(u) => self.on_unsuback(u),
            Packet::PingResp => {}
            Packet::Disconnect(d) => return Ok(Flow::ServerDisconnect(d)),
            Packet::Auth(a) if self.enhanced_auth => return Ok(Flow::Auth(a)),
            Packet::Auth(_) => {
                // No Authentication Method was sent, so no AUTH may come.
                return Err(Violation::new(
                    ReasonCode::PROTOCOL_ERROR,
                    "AUTH without an authentication method",
                ));
            }
            other => {
                return Err(Violation::new(
                    ReasonCode::PROTOCOL_ERROR,
                    format!("unexpected {} from the server", other.packet_type().name()),
                ))
            }
        }
        Ok(Flow::Continue)
    }

    fn on_publish(&mut self, p: Publish) -> Result<(), Violation> {
        let topic = match p.properties.topic_alias {
            Some(alias) if self.version.is_v5() => {
                if alias.get() > self.our_alias_max {
                    // [MQTT-3.3.2-10] is the other side: above what we declared is an error.
                    return Err(Violation::new(
                        ReasonCode::TOPIC_ALIAS_INVALID,
                        format!(
                            "topic alias {alias} above our maximum {}",
                            self.our_alias_max
                        ),
                    ));
                }
                if p.topic.is_empty() {
                    self.aliases_in.get(&alias.get()).cloned().ok_or_else(|| {
                        Violation::new(
                            ReasonCode::PROTOCOL_ERROR,
                            format!("unknown topic alias {alias}"),
                        )
                    })?
                } else {
                    self.aliases_in.insert(alias.get(), p.topic.clone());
                    p.topic.clone()
                }
            }
            _ => p.topic.clone(),
        };
        if topic.is_empty() {
            return Err(Violation::new(
                ReasonCode::PROTOCOL_ERROR,
                "PUBLISH with an empty topic and no topic alias",
            ));
        }
        let id = p.packet_id;
        if let (QoS::ExactlyOnce, Some(id)) = (p.qos, id) {
            if let Some(&rec_sent) = self.incoming_qos2.get(&id.get()) {
                // A re-sent QoS 2 PUBLISH we already have: not a new message.
                if rec_sent {
                    self.out.push(Packet::PubRec(PubResponse::new(id)));
                }
                return Ok(());
            }
            self.incoming_qos2.insert(id.get(), false);
        }
        let ack = match (p.qos, id) {
            (QoS::AtMostOnce, _) | (_, None) => None,
            (qos, Some(id)) => {
                self.owed_acks.push_back(OwedAck {
                    packet_id: id,
                    qos,
                    ready: !self.manual_ack,
                });
                Some(AckToken {
                    generation: self.generation,
                    packet_id: id.get(),
                    qos,
                })
            }
        };
        self.deliver(Message {
            topic: topic.to_string(),
            payload: p.payload,
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            packet_id: id.map(NonZeroU16::get),
            properties: p.properties,
            ack: if self.manual_ack { ack } else { None },
        });
        // [MQTT-4.5.0-2]: acknowledged even if the application never reads it.
        self.flush_acks();
        Ok(())
    }

    /// Hands a message to the handlers whose filter matches it, or else to the application's
    /// `Messages`. Handlers whose receiver was dropped are forgotten.
    fn deliver(&mut self, message: Message) {
        let mut routed = false;
        self.routes.retain(|(filter, tx)| {
            if tx.is_closed() {
                return false;
            }
            if filter.matches(&message.topic) && tx.send(message.clone()).is_ok() {
                routed = true;
            }
            true
        });
        if !routed {
            self.events.push(Event::Message(message));
        }
    }

    /// Routes messages matching `filter` to `tx` (see [`State::deliver`]).
    pub(crate) fn add_route(&mut self, filter: TopicFilter, tx: mpsc::UnboundedSender<Message>) {
        self.routes.push((filter, tx));
    }

    fn on_puback(&mut self, r: PubResponse) {
        let id = r.packet_id.get();
        if !matches!(self.inflight.get(&id), Some(f) if f.msg.qos == QoS::AtLeastOnce) {
            tracing::debug!(id, "PUBACK for no QoS 1 message in flight; ignored");
            return;
        }
        if let Some(flight) = self.finish_flight(id) {
            answer(flight.reply, self.outcome(r.reason_code, r.properties));
        }
        self.pump();
    }

    /// Takes in-flight message `id` out of the window, freeing its packet id.
    fn finish_flight(&mut self, id: u16) -> Option<Inflight> {
        let flight = self.inflight.remove(&id)?;
        self.ids_in_use.remove(&id);
        if !self.resend.is_empty() {
            self.resend.retain(|&r| r != id);
        }
        Some(flight)
    }

    fn on_pubrec(&mut self, r: PubResponse) {
        let id = r.packet_id.get();
        let stage = match self.inflight.get(&id) {
            Some(f) if f.msg.qos == QoS::ExactlyOnce => f.stage,
            _ => {
                // Not ours: answer so the server can free the id.
                let mut rel = PubResponse::new(r.packet_id);
                if self.version.is_v5() {
                    rel.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
                }
                self.out.push(Packet::PubRel(rel));
                return;
            }
        };
        if !r.reason_code.is_success() {
            // The server refused the message: the flow ends here, no PUBREL.
            if let Some(flight) = self.finish_flight(id) {
                answer(flight.reply, self.outcome(r.reason_code, r.properties));
            }
            self.pump();
            return;
        }
        if let Some(flight) = self.inflight.get_mut(&id) {
            if stage == Stage::Published {
                flight.stage = Stage::Released(r.reason_code);
            }
        }
        // [MQTT-4.6.0-4]: PUBRELs in the order the PUBRECs arrived.
        self.out.push(Packet::PubRel(PubResponse::new(r.packet_id)));
    }

    fn on_pubrel(&mut self, r: PubResponse) {
        let known = self.incoming_qos2.remove(&r.packet_id.get()).is_some();
        let mut comp = PubResponse::new(r.packet_id);
        if !known && self.version.is_v5() {
            comp.reason_code = ReasonCode::PACKET_IDENTIFIER_NOT_FOUND;
        }
        self.out.push(Packet::PubComp(comp));
    }

    fn on_pubcomp(&mut self, r: PubResponse) {
        let id = r.packet_id.get();
        let rec_reason = match self.inflight.get(&id) {
            Some(Inflight {
                stage: Stage::Released(reason),
                ..
            }) => *reason,
            _ => {
                tracing::debug!(id, "PUBCOMP for no QoS 2 message in flight; ignored");
                return;
            }
        };
        if let Some(flight) = self.finish_flight(id) {
            let reason = if rec_reason.0 != 0 {
                rec_reason
            } else {
                r.reason_code
            };
            let result = if reason.is_success() {
                Ok(PublishOutcome {
                    reason,
                    properties: r.properties,
                })
            } else {
                Err(ClientError::rejected(reason))
            };
            answer(flight.reply, result);
        }
        self.pump();
    }

    fn outcome(
        &self,
        reason: ReasonCode,
        properties: AckProperties,
    ) -> Result<PublishOutcome, ClientError> {
        if reason.is_success() {
            Ok(PublishOutcome { reason, properties })
        } else {
            Err(ClientError::Rejected {
                code: reason.0,
                text: reason.name().to_owned(),
            })
        }
    }

    fn on_suback(&mut self, s: SubAck) -> Result<(), Violation> {
        let id = s.packet_id.get();
        match self.controls.remove(&id) {
            Some(Control::Subscribe {
                subs,
                properties,
                reply,
            }) => {
                self.ids_in_use.remove(&id);
                if s.reason_codes.len() != subs.len() {
                    // [MQTT-3.9.3-1]: one code per filter.
                    answer(
                        reply,
                        Err(ClientError::Protocol(format!(
                            "SUBACK has {} codes for {} filters",
                            s.reason_codes.len(),
                            subs.len()
                        ))),
                    );
                } else {
                    let mut failed = Vec::new();
                    for ((filter, options), code) in subs.iter().zip(&s.reason_codes) {
                        if code.is_success() {
                            self.subscriptions.insert(
                                ByteString::from(filter.as_str()),
                                (filter.clone(), *options, properties.subscription_identifier),
                            );
                        } else if reply.is_none() {
                            // The server refused a filter it had granted before: forget it,
                            // and tell the application.
                            self.subscriptions.remove(filter.as_str());
                            failed.push((filter.as_str().to_owned(), *code));
                        }
                    }
                    if !failed.is_empty() {
                        self.events.push(Event::ResubscribeFailed { failed });
                    }
                    answer(reply, Ok(s.reason_codes));
                }
                self.pump();
                Ok(())
            }
            Some(other) => {
                self.controls.insert(id, other);
                Err(Violation::new(
                    ReasonCode::PROTOCOL_ERROR,
                    format!("SUBACK for UNSUBSCRIBE {id}"),
                ))
            }
            None => {
                tracing::debug!(id, "SUBACK for no SUBSCRIBE; ignored");
                Ok(())
            }
        }
    }

    fn on_unsuback(&mut self, u: UnsubAck) {
        let id = u.packet_id.get();
        match self.controls.remove(&id) {
            Some(Control::Unsubscribe { filters, reply }) => {
                self.ids_in_use.remove(&id);
                for f in &filters {
                    self.subscriptions.remove(f.as_str());
                }
                self.routes.retain(|(route, _)| !filters.contains(route));
                let codes = if self.version.is_v5() {
                    u.reason_codes
                } else {
                    vec![ReasonCode::SUCCESS; filters.len()]
                };
                answer(reply, Ok(codes));
                self.pump();
            }
            Some(other) => {
                self.controls.insert(id, other);
                tracing::debug!(id, "UNSUBACK for a SUBSCRIBE; ignored");
            }
            None => tracing::debug!(id, "UNSUBACK for no UNSUBSCRIBE; ignored"),
        }
    }
}

/// A packet id from a non-zero u16 (ids handed out by `alloc_id` never are zero).
fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap_or(PacketId::MIN)
}

#[cfg(test)]
mod tests {
    //! The state driven directly, without sockets: inputs in, packets and events out.
    use super::*;
    use linnet_proto::ConnAckProperties;

    fn connack(session_present: bool, props: ConnAckProperties) -> ConnAck {
        let mut c = ConnAck::new(session_present, ReasonCode::SUCCESS);
        c.properties = props;
        c
    }

    fn publish(
        state: &mut State,
        topic: &str,
        qos: QoS,
    ) -> oneshot::Receiver<Result<PublishOutcome, ClientError>> {
        let (tx, rx) = oneshot::channel();
        state.publish(OutgoingMessage::new(topic, "x").qos(qos), tx);
        rx
    }

    fn sent_publishes(state: &mut State) -> Vec<(u16, bool)> {
        state
            .out
            .drain(..)
            .filter_map(|p| match p {
                Packet::Publish(p) => Some((p.packet_id.map_or(0, NonZeroU16::get), p.dup)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn offline_queue_limit_then_drain_in_order_on_connack() {
        let mut state = State::new(ProtocolVersion::V5, false, 2, 0, Instant::now());
        let _a = publish(&mut state, "a", QoS::AtLeastOnce);
        let _b = publish(&mut state, "b", QoS::AtMostOnce);
        let mut c = publish(&mut state, "c", QoS::AtLeastOnce);
        assert!(matches!(c.try_recv(), Ok(Err(ClientError::QueueFull))));
        assert!(
            state.out.is_empty(),
            "nothing is written while disconnected"
        );
        state
            .on_connack(&connack(false, Default::default()), true)
            .unwrap();
        assert_eq!(sent_publishes(&mut state), vec![(1, false), (0, false)]);
    }

    #[test]
    fn session_present_resends_with_dup_in_send_order_and_pubrel_for_released() {
        let mut state = State::new(ProtocolVersion::V5, false, 10, 0, Instant::now());
        state
            .on_connack(&connack(false, Default::default()), true)
            .unwrap();
        let _r: Vec<_> = (0..3)
            .map(|_| publish(&mut state, "t", QoS::ExactlyOnce))
            .collect();
        assert_eq!(
            sent_publishes(&mut state),
            vec![(1, false), (2, false), (3, false)]
        );
        state
            .handle(Packet::PubRec(PubResponse::new(pid(2))))
            .unwrap();
        state.out.clear();
        state.connection_lost();
        state
            .on_connack(&connack(true, Default::default()), false)
            .unwrap();
        let kinds: Vec<_> = state
            .out
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => format!("PUBLISH {} dup={}", p.packet_id.unwrap(), p.dup),
                Packet::PubRel(r) => format!("PUBREL {}", r.packet_id),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            ["PUBLISH 1 dup=true", "PUBREL 2", "PUBLISH 3 dup=true"]
        );
    }

    #[test]
    fn receive_maximum_holds_back_publishes_not_subscribes() {
        let mut state = State::new(ProtocolVersion::V5, false, 10, 0, Instant::now());
        let props = ConnAckProperties {
            receive_maximum: NonZeroU16::new(1),
            ..Default::default()
        };
        state.on_connack(&connack(false, props), true).unwrap();
        let _a = publish(&mut state, "a", QoS::AtLeastOnce);
        let _b = publish(&mut state, "b", QoS::AtLeastOnce);
        assert_eq!(sent_publishes(&mut state), vec![(1, false)]);
        let (tx, _rx) = oneshot::channel();
        let filter = TopicFilter::new("f").unwrap();
        state.subscribe(
            vec![(filter, SubscriptionOptions::qos(QoS::AtMostOnce))],
            Default::default(),
            tx,
        );
        assert!(matches!(state.out.as_slice(), [Packet::Subscribe(_)]));
        state.out.clear();
        state
            .handle(Packet::PubAck(PubResponse::new(pid(1))))
            .unwrap();
        assert_eq!(
            sent_publishes(&mut state),
            vec![(3, false)],
            "id 2 is the SUBSCRIBE's"
        );
    }

    #[test]
    fn unacknowledged_manual_qos2_is_new_again_after_a_reconnect() {
        let mut state = State::new(ProtocolVersion::V5, true, 10, 0, Instant::now());
        state
            .on_connack(&connack(false, Default::default()), true)
            .unwrap();
        let p = Publish::new("t", "x").with_qos(QoS::ExactlyOnce, Some(pid(4)));
        state.handle(Packet::Publish(p.clone())).unwrap();
        assert_eq!(state.events.len(), 2, "Connected + the message");
        assert!(state.out.is_empty(), "no PUBREC before the ack");
        state.connection_lost();
        state.events.clear();
        state
            .on_connack(&connack(true, Default::default()), false)
            .unwrap();
        let mut again = p;
        again.dup = true;
        state.handle(Packet::Publish(again)).unwrap();
        let token = state.events.iter().find_map(|e| match e {
            Event::Message(m) => m.ack,
            _ => None,
        });
        let token = token.expect("delivered again with a fresh ack token");
        state.ack(token);
        assert_eq!(state.out, vec![Packet::PubRec(PubResponse::new(pid(4)))]);
    }

    #[test]
    fn message_expiry_counts_the_time_spent_in_the_offline_queue() {
        let t0 = Instant::now();
        let mut state = State::new(ProtocolVersion::V5, false, 10, 0, t0);
        let mut short = OutgoingMessage::new("t", "short").qos(QoS::AtLeastOnce);
        short.properties.message_expiry_interval = Some(5);
        let mut long = OutgoingMessage::new("t", "long").qos(QoS::AtLeastOnce);
        long.properties.message_expiry_interval = Some(60);
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, _rx2) = oneshot::channel();
        state.publish(short, tx1);
        state.publish(long, tx2);
        state.tick(t0 + std::time::Duration::from_secs(10));
        state
            .on_connack(&connack(false, Default::default()), true)
            .unwrap();
        assert!(matches!(rx1.try_recv(), Ok(Err(ClientError::Timeout(_)))));
        let sent: Vec<_> = state
            .out
            .iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => {
                    Some((p.payload.clone(), p.properties.message_expiry_interval))
                }
                _ => None,
            })
            .collect();
        assert_eq!(sent, vec![(bytes::Bytes::from("long"), Some(50))]);
    }

    #[test]
    fn peer_violations_are_errors_not_panics() {
        let mut state = State::new(ProtocolVersion::V5, false, 10, 3, Instant::now());
        state
            .on_connack(&connack(false, Default::default()), true)
            .unwrap();
        let mut p = Publish::new("", "x");
        p.properties.topic_alias = NonZeroU16::new(1);
        assert_eq!(
            state.handle(Packet::Publish(p)).unwrap_err().code,
            ReasonCode::PROTOCOL_ERROR
        );
        assert_eq!(
            state
                .handle(Packet::ConnAck(ConnAck::new(false, ReasonCode::SUCCESS)))
                .unwrap_err()
                .code,
            ReasonCode::PROTOCOL_ERROR
        );
        // Acks for ids we never used are ignored or answered, never a panic.
        state
            .handle(Packet::PubAck(PubResponse::new(pid(9))))
            .unwrap();
        state
            .handle(Packet::PubComp(PubResponse::new(pid(9))))
            .unwrap();
        state
            .handle(Packet::PubRec(PubResponse::new(pid(9))))
            .unwrap();
        state
            .handle(Packet::SubAck(SubAck::new(pid(9), vec![])))
            .unwrap();
        state
            .handle(Packet::UnsubAck(UnsubAck::new(pid(9), vec![])))
            .unwrap();
    }

    #[test]
    fn a_packet_id_in_use_is_skipped_when_the_counter_wraps() {
        // [MQTT-2.2.1-3]: id 1 stays in flight while 70,000 others are used and acknowledged.
        let mut state = State::new(ProtocolVersion::V5, false, 10, 0, Instant::now());
        state
            .on_connack(&connack(false, Default::default()), true)
            .unwrap();
        let _held = publish(&mut state, "held", QoS::AtLeastOnce);
        assert_eq!(sent_publishes(&mut state), vec![(1, false)]);
        let mut wrapped = false;
        let mut last = 1;
        for _ in 0..70_000 {
            let _rx = publish(&mut state, "t", QoS::AtLeastOnce);
            let [(id, _)] = sent_publishes(&mut state)[..] else {
                panic!("one PUBLISH per publish")
            };
            assert_ne!(id, 1, "the held id was reused");
            wrapped |= id < last;
            last = id;
            state
                .handle(Packet::PubAck(PubResponse::new(pid(id))))
                .unwrap();
        }
        assert!(wrapped, "the counter went around");
        state
            .handle(Packet::PubAck(PubResponse::new(pid(1))))
            .unwrap();
        let _rx = publish(&mut state, "t", QoS::AtLeastOnce);
        assert_eq!(state.inflight.len(), 1);
    }

    #[test]
    fn automatic_aliases_stop_when_the_server_maximum_is_used_up() {
        let mut state = State::new(ProtocolVersion::V5, false, 10, 0, Instant::now());
        let props = ConnAckProperties {
            topic_alias_maximum: Some(2),
            ..Default::default()
        };
        state.on_connack(&connack(false, props), true).unwrap();
        for topic in ["a", "b", "c", "a", "c"] {
            let _rx = publish(&mut state, topic, QoS::AtMostOnce);
        }
        let sent: Vec<_> = state
            .out
            .drain(..)
            .filter_map(|p| match p {
                Packet::Publish(p) => Some((
                    p.topic.to_string(),
                    p.properties.topic_alias.map_or(0, NonZeroU16::get),
                )),
                _ => None,
            })
            .collect();
        let expect = [("a", 1), ("b", 2), ("c", 0), ("", 1), ("c", 0)];
        let expect: Vec<_> = expect.iter().map(|(t, a)| (t.to_string(), *a)).collect();
        assert_eq!(sent, expect);
        assert_eq!(state.next_alias, 3, "no scan past the maximum");
    }
}
