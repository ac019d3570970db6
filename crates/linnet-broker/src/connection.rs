//! One client connection, from the first byte to the close, as an explicit state machine:
//! `AwaitingConnect` (CONNECT within the timeout, validated, answered with CONNACK), then
//! `Connected` (a loop that reads batches of packets, handles each synchronously and writes
//! everything pending in one call), then `Closing` (will message, session expiry). Packet
//! handlers never `.await` and never hold a lock across one.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use bytestring::ByteString;
use linnet_proto::{
    codec::read_varint, ConnAck, ConnAckProperties, Connect, DecodeError, Decoder, Disconnect,
    Packet, ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck, Subscribe, UnsubAck,
    Unsubscribe, Will,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use crate::message::{Message, Routed};
use crate::routing::{attach_session, discard_session, MatchCache};
use crate::session::FlushBatch;
use crate::session::{Link, Session, Stage};
use crate::transport::{read_when_ready, Transport};
use crate::{lock, Broker};

/// Why the connected phase ended.
#[derive(Debug)]
enum Exit {
    /// DISCONNECT from the client; `with_will` for v5 reason 0x04.
    ClientDisconnect { with_will: bool },
    /// The broker ends the connection; v5 clients are told with this reason first.
    ServerDisconnect(ReasonCode),
    /// Another connection took the session over.
    TakenOver,
    /// The peer closed the socket or it failed.
    Closed,
}

/// Read buffer sizes: small while a connection is idle (most of them are), doubled while
/// reads keep filling it, up to a batch size that amortises the syscall.
const READ_MIN: usize = 256;
const READ_MAX: usize = 64 * 1024;

/// Output buffers up to this capacity are freed after a write instead of kept for the next:
/// a small allocation costs far less than the write itself, and an idle connection then
/// holds no buffer at all.
const SPARE_KEEP_MIN: usize = 1024;

/// Reads at most this many keep-alive sweep ticks apart (about a second) follow each other
/// closely; after [`BUSY_READS`] such reads in a row a connection is busy: it keeps its read
/// buffer between reads, until a read comes after a longer pause. (A handshake followed by a
/// SUBSCRIBE is not busy: such a connection waits without a buffer.)
const BUSY_TICKS: u32 = 2;
const BUSY_READS: u8 = 3;

/// Per-connection state in the `Connected` phase.
struct Connection<S> {
    broker: Broker,
    stream: S,
    peer: SocketAddr,
    read_buf: BytesMut,
    /// Swapped with the session's output buffer on each flush, so steady state allocates
    /// nothing.
    spare: BytesMut,
    decoder: Decoder,
    version: ProtocolVersion,
    session: Arc<Session>,
    generation: u64,
    /// The broker's keep-alive tick at the last read (see [`crate::keep_alive`]): no clock
    /// is read per packet.
    read_tick: u32,
    /// Reads in a row that came at most [`BUSY_TICKS`] after the one before.
    close_reads: u8,
    /// Boxed: rare and large, it would size every connection.
    will: Option<Box<Will>>,
    /// v5 Topic Alias -> topic name, set by the client [MQTT-3.3.2-12]; grows on use.
    aliases: Vec<Option<ByteString>>,
    /// Highest alias the client may use (0 for 3.x: none).
    topic_alias_max: u16,
    /// The client's Maximum Packet Size, for the packets written straight to the socket.
    client_max_packet_size: u32,
    /// Why the broker is closing the connection, in words, for the v5 DISCONNECT's Reason
    /// String (set for protocol violations).
    reason_string: Option<String>,
    /// Subscribers this connection's current read batch gave output to.
    flush_batch: FlushBatch,
    /// What the topics this connection publishes to matched; from its first PUBLISH on.
    /// Entries that subscriptions have changed since are dropped on the first read after a
    /// pause, so a quiet connection does not hold sessions that have gone.
    match_cache: Option<Box<MatchCache>>,
}

/// Runs a connection to completion. Never panics on peer input: every decode error ends in a
/// reason code (v5) or a close, with a debug line.
///
/// The task's future stays small for the long `Connected` phase (it sizes every idle
/// connection): the handshake runs boxed and hands over a boxed [`Connection`].
pub(crate) fn run<S: Transport>(
    broker: Broker,
    stream: S,
    peer: SocketAddr,
) -> impl Future<Output = ()> + Send {
    // Not an `async fn`: its arguments would stay in the future for its whole life.
    let handshake = Box::pin(handshake(broker, stream, peer));
    async move {
        if let Some(connection) = handshake.await {
            connection.live().await;
        }
    }
}

/// `AwaitingConnect`: the CONNECT within the timeout, validated and answered. `None` when the
/// connection was refused or dropped.
async fn handshake<S: Transport>(
    broker: Broker,
    mut stream: S,
    peer: SocketAddr,
) -> Option<Box<Connection<S>>> {
    let mut read_buf = BytesMut::with_capacity(READ_MIN);
    let mut decoder = Decoder::new(ProtocolVersion::V3_1_1)
        .with_max_packet_size(broker.config().limits.max_packet_size);
    let timeout = Duration::from_secs(broker.config().limits.connect_timeout);
    let first = tokio::time::timeout(
        timeout,
        read_connect(&mut stream, &mut read_buf, &mut decoder),
    )
    .await;
    let connect = match first {
        Err(_) => {
            debug!(%peer, "no CONNECT within {timeout:?}; closing");
            return None;
        }
        Ok(Err(None)) => return None,
        Ok(Err(Some(refusal))) => {
            let _ = stream.write_all(&refusal).await;
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
            return None;
        }
        Ok(Ok(connect)) => connect,
    };
    accept(&broker, stream, peer, read_buf, decoder, *connect).await
}

/// Reads until the first packet. `Err(Some(bytes))`: refuse with these bytes, then close;
/// `Err(None)`: just close.
async fn read_connect<S: AsyncRead + Unpin>(
    stream: &mut S,
    read_buf: &mut BytesMut,
    decoder: &mut Decoder,
) -> Result<Box<Connect>, Option<Vec<u8>>> {
    loop {
        let level = peek_protocol_level(read_buf);
        match decoder.decode(read_buf) {
            Ok(Some(Packet::Connect(connect))) => return Ok(connect),
            Ok(Some(other)) => {
                debug!(
                    "first packet is {}, not CONNECT [MQTT-3.1.0-1]; closing",
                    other.packet_type()
                );
                return Err(None);
            }
            Ok(None) => {}
            Err(error) => {
                debug!("invalid CONNECT: {error}");
                return Err(connect_refusal(&error, level));
            }
        }
        read_buf.reserve(READ_MIN);
        match stream.read_buf(read_buf).await {
            Ok(0) | Err(_) => return Err(None),
            Ok(_) => {}
        }
    }
}

/// The protocol level byte of a CONNECT at the front of `buf`, if it has arrived.
fn peek_protocol_level(buf: &[u8]) -> Option<u8> {
    let (_, len_bytes) = read_varint(buf.get(1..)?).ok()??;
    let name_at = 1 + len_bytes;
    let name_len = usize::from(u16::from_be_bytes([
        *buf.get(name_at)?,
        *buf.get(name_at + 1)?,
    ]));
    buf.get(name_at + 2 + name_len).copied()
}

/// The CONNACK that refuses a CONNECT that failed to decode, if the spec asks for one.
fn connect_refusal(error: &DecodeError, level: Option<u8>) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    match error {
        // Unknown level: answer in the 3.1.1 layout, return code 0x01 [MQTT-3.1.2-2].
        DecodeError::UnsupportedProtocolLevel(_) => {
            let connack = ConnAck::new(false, ReasonCode::UNSUPPORTED_PROTOCOL_VERSION);
            Packet::ConnAck(connack)
                .encode(ProtocolVersion::V3_1_1, &mut out)
                .ok()?;
        }
        // A v5 client is told why with a reason code [MQTT-4.13.1-1].
        _ if level == Some(5) => {
            let connack = ConnAck::new(false, error.reason_code());
            Packet::ConnAck(connack)
                .encode(ProtocolVersion::V5, &mut out)
                .ok()?;
        }
        _ => return None,
    }
    Some(out.to_vec())
}

/// Sends a refusing CONNACK straight to the stream and closes it.
async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    version: ProtocolVersion,
    reason: ReasonCode,
) {
    debug!("refusing CONNECT: {reason}");
    let mut out = BytesMut::new();
    if Packet::ConnAck(ConnAck::new(false, reason))
        .encode(version, &mut out)
        .is_ok()
    {
        let _ = stream.write_all(&out).await;
        let _ = stream.flush().await;
    }
    let _ = stream.shutdown().await;
}

/// Validates a CONNECT, attaches (or creates) its session and writes CONNACK and any resent
/// messages. `None` when the connection was refused and closed.
async fn accept<S>(
    broker: &Broker,
    mut stream: S,
    peer: SocketAddr,
    read_buf: BytesMut,
    decoder: Decoder,
    connect: Connect,
) -> Option<Box<Connection<S>>>
where
    S: Transport,
{
    let config = broker.config();
    let version = connect.protocol;
    let v5 = version.is_v5();

    // Client identifier rules [MQTT-3.1.3-6..9].
    let mut assigned = false;
    let client_id = if connect.client_id.is_empty() {
        if version == ProtocolVersion::V3_1 || (!v5 && !connect.clean_start) {
            refuse(
                &mut stream,
                version,
                ReasonCode::CLIENT_IDENTIFIER_NOT_VALID,
            )
            .await;
            return None;
        }
        assigned = true;
        ByteString::from(format!(
            "linnet-{:016x}",
            broker.next_session_id() ^ 0x5eed_0000_0000
        ))
    } else {
        // A copy of its own: a slice would pin the whole read buffer for the session's life.
        ByteString::from(&*connect.client_id)
    };
    if v5 && connect.properties.authentication_method.is_some() {
        // No enhanced authentication method is supported yet [MQTT-4.12.0-1].
        refuse(&mut stream, version, ReasonCode::BAD_AUTHENTICATION_METHOD).await;
        return None;
    }
    if let Some(will) = &connect.will {
        if will.qos as u8 > config.mqtt.maximum_qos {
            refuse(&mut stream, version, qos_refusal(v5)).await;
            return None;
        }
        if will.retain && !config.mqtt.retain_available {
            refuse(&mut stream, version, retain_refusal(v5)).await;
            return None;
        }
        if will.topic.as_str().starts_with('$') {
            refuse(&mut stream, version, ReasonCode::NOT_AUTHORIZED).await;
            return None;
        }
    }
    let max_connections = config.limits.max_connections;
    if max_connections > 0
        && broker.inner.stats.clients_connected.load(Ordering::Relaxed) >= max_connections
    {
        refuse(&mut stream, version, ReasonCode::SERVER_UNAVAILABLE).await;
        return None;
    }

    // Session expiry: v5 asks; v3 clean session = 0 keeps the session "forever" (capped).
    let max_expiry = config.session.max_session_expiry_interval;
    let requested_expiry = if v5 {
        connect.properties.session_expiry_interval.unwrap_or(0)
    } else if connect.clean_start {
        0
    } else {
        u32::MAX
    };
    let expiry = requested_expiry.min(max_expiry);

    let generation = broker.next_generation();
    let (session, session_present, replaced) =
        attach_session(broker, &client_id, connect.clean_start);
    if let Some(old) = replaced {
        discard_session(broker, &old);
    }

    // Keep alive, possibly overridden by the server [MQTT-3.2.2-21].
    let max_keep_alive = config.limits.max_keep_alive;
    let mut keep_alive = connect.keep_alive;
    let mut server_keep_alive = None;
    if max_keep_alive > 0 && (keep_alive == 0 || keep_alive > max_keep_alive) && v5 {
        keep_alive = max_keep_alive;
        server_keep_alive = Some(keep_alive);
    }

    // Topic aliases towards the client only where it allows them (v5 Topic Alias Maximum).
    let client_topic_alias_max = if v5 {
        connect.properties.topic_alias_maximum.unwrap_or(0)
    } else {
        0
    };
    let client_receive_max = connect
        .properties
        .receive_maximum
        .map_or(u16::MAX, NonZeroU16::get);
    let window = usize::from(client_receive_max.min(config.limits.max_inflight_messages));
    let client_max_packet_size = connect
        .properties
        .maximum_packet_size
        .map_or(linnet_proto::MAX_PACKET_SIZE, |m| m.get());
    let link = Link {
        generation,
        version,
        max_packet_size: client_max_packet_size,
        window: if v5 {
            window
        } else {
            usize::from(config.limits.max_inflight_messages)
        },
    };

    let mut connack = ConnAck::new(session_present, ReasonCode::SUCCESS);
    if v5 {
        connack.properties = connack_properties(
            broker,
            expiry,
            requested_expiry,
            assigned.then(|| client_id.clone()),
            server_keep_alive,
        );
    }
    {
        let stats = &broker.inner.stats;
        let now = Instant::now();
        let mut state = lock(&session.state);
        state.expiry_interval = expiry;
        state.out.clear();
        state.aliases_out.reset(client_topic_alias_max);
        // Two connections took the session over at once and the other attached in between:
        // wake it (and any connection still leaving) so that it sees it is detached.
        if state
            .link
            .as_ref()
            .is_some_and(|other| other.generation != generation)
        {
            session.wake.notify_waiters();
        }
        state.link = Some(link);
        broker
            .inner
            .keep_alive
            .arm(&session, Duration::from_secs(u64::from(keep_alive)));
        state.socket = stream.shared_socket();
        state.writing = false;
        // CONNACK first [MQTT-3.2.0-1], then what the session still owes the client. If the
        // client's Maximum Packet Size cannot take the properties, they are left out rather
        // than the CONNACK [MQTT-3.1.2-24].
        let max_size = client_max_packet_size as usize;
        if connack.properties != ConnAckProperties::default()
            && Packet::ConnAck(connack.clone())
                .encoded_size(version)
                .unwrap_or(usize::MAX)
                > max_size
        {
            connack.properties = ConnAckProperties::default();
        }
        state.write_packet(&Packet::ConnAck(connack));
        if session_present {
            // resend_inflight also fills the rest of the window from the queue.
            state.resend_inflight(stats, now);
        } else {
            state.inflight.clear();
            state.queue.clear();
            state.incoming_qos2.clear();
        }
    }
    broker
        .inner
        .stats
        .clients_total
        .fetch_add(1, Ordering::Relaxed);
    broker.inner.store.session_started(&client_id, expiry);
    debug!(%peer, client_id = %client_id, %version, session_present, "client connected");

    let topic_alias_max = if v5 {
        config.mqtt.topic_alias_maximum
    } else {
        0
    };
    let mut connection = Box::new(Connection {
        broker: broker.clone(),
        stream,
        peer,
        read_buf,
        spare: BytesMut::new(),
        decoder,
        version,
        session,
        generation,
        read_tick: broker.tick(),
        close_reads: 0,
        will: connect.will.map(Box::new),
        aliases: Vec::new(),
        topic_alias_max,
        client_max_packet_size,
        reason_string: None,
        flush_batch: FlushBatch::default(),
        match_cache: None,
    });
    if connection.flush().await.is_err() {
        connection.close(Exit::Closed).await;
        return None;
    }
    Some(connection)
}

fn qos_refusal(v5: bool) -> ReasonCode {
    if v5 {
        ReasonCode::QOS_NOT_SUPPORTED
    } else {
        ReasonCode::NOT_AUTHORIZED
    }
}

fn retain_refusal(v5: bool) -> ReasonCode {
    if v5 {
        ReasonCode::RETAIN_NOT_SUPPORTED
    } else {
        ReasonCode::NOT_AUTHORIZED
    }
}

/// What the server tells a v5 client it supports (MQTT 5.0 3.2.2.3).
fn connack_properties(
    broker: &Broker,
    expiry: u32,
    requested_expiry: u32,
    assigned_client_id: Option<ByteString>,
    server_keep_alive: Option<u16>,
) -> ConnAckProperties {
    let config = broker.config();
    let mqtt = &config.mqtt;
    ConnAckProperties {
        session_expiry_interval: (expiry != requested_expiry).then_some(expiry),
        receive_maximum: NonZeroU16::new(config.limits.receive_maximum),
        maximum_qos: match mqtt.maximum_qos {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            _ => None,
        },
        retain_available: (!mqtt.retain_available).then_some(false),
        maximum_packet_size: std::num::NonZeroU32::new(config.limits.max_packet_size),
        assigned_client_identifier: assigned_client_id,
        topic_alias_maximum: (mqtt.topic_alias_maximum > 0).then_some(mqtt.topic_alias_maximum),
        wildcard_subscription_available: (!mqtt.wildcard_subscription_available).then_some(false),
        subscription_identifiers_available: (!mqtt.subscription_identifiers_available)
            .then_some(false),
        shared_subscription_available: (!mqtt.shared_subscription_available).then_some(false),
        server_keep_alive,
        ..ConnAckProperties::default()
    }
}

impl<S: Transport> Connection<S> {
    /// `Connected`, then `Closing`.
    async fn live(mut self: Box<Self>) {
        let stats = &self.broker.inner.stats;
        stats.clients_connected.fetch_add(1, Ordering::Relaxed);
        let exit = self.serve().await;
        let stats = &self.broker.inner.stats;
        stats.clients_connected.fetch_sub(1, Ordering::Relaxed);
        // Boxed: closing is rare and its state large.
        Box::pin((*self).close(exit)).await;
    }

    /// The `Connected` phase: read, handle, flush, until something ends it.
    async fn serve(&mut self) -> Exit {
        // Packets may follow CONNECT in the same read, before any CONNACK [MQTT-3.1.4].
        if let Err(exit) = self.handle_buffered() {
            return exit;
        }
        match self.flush().await {
            Ok(true) => {}
            Ok(false) => return Exit::TakenOver,
            Err(()) => return Exit::Closed,
        }
        if self.read_buf.is_empty() {
            // The handshake's buffer: idle connections wait without one.
            self.read_buf = BytesMut::new();
        }
        let mut read_size = READ_MIN;
        // One registration with the session's wake-up for as long as it does not fire, not
        // a new one (and a lock on the waiter list to drop it) on every turn of the loop.
        let session = Arc::clone(&self.session);
        let mut woken = pin!(session.wake.notified());
        loop {
            if self.broker.is_shutting_down() {
                return Exit::ServerDisconnect(ReasonCode::SERVER_SHUTTING_DOWN);
            }
            // Reads first: a subscriber flooded with output must still read its acks, and a
            // read batch ends with a flush anyway, so output cannot starve either. (Biased
            // also skips the random start an unbiased select draws on every turn.)
            tokio::select! {
                biased;
                read = read_when_ready(&mut self.stream, &mut self.read_buf, read_size) => {
                    match read {
                        Ok(0) | Err(_) => return Exit::Closed,
                        Ok(n) => {
                            self.broker.inner.stats.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                            let room = self.read_buf.capacity() - self.read_buf.len() + n;
                            read_size = next_read_size(read_size, n, room);
                        }
                    }
                    let tick = self.broker.tick();
                    self.close_reads = if tick.wrapping_sub(self.read_tick) <= BUSY_TICKS {
                        self.close_reads.saturating_add(1)
                    } else {
                        0
                    };
                    let busy = self.close_reads >= BUSY_READS;
                    self.read_tick = tick;
                    self.session.keep_alive.heard(tick);
                    if let Err(exit) = self.handle_buffered() {
                        return exit;
                    }
                    // Nothing partial left: a quiet connection holds no read buffer (the next
                    // read allocates once the socket is readable), and after a burst the
                    // large buffer goes back. A busy one keeps its buffer: reusing it saves
                    // two allocations per read (the buffer and its shared header).
                    if self.read_buf.is_empty()
                        && (!busy || self.read_buf.capacity() > 4 * read_size)
                    {
                        self.read_buf = BytesMut::new();
                    }
                    if self.close_reads == 0 {
                        // The first read after a pause.
                        self.forget_stale_matches();
                    }
                    match self.flush().await {
                        Ok(true) => {}
                        Ok(false) => return Exit::TakenOver,
                        Err(()) => return Exit::Closed,
                    }
                }
                // Output is pending, the keep-alive sweep found the client silent, or the
                // broker is shutting down (checked above).
                () = woken.as_mut() => {
                    woken.set(session.wake.notified());
                    // Before the flush: a silent peer may be one whose socket no longer
                    // drains, and the flush would wait on it.
                    if self.session.keep_alive.take_due(self.broker.tick()) {
                        debug!(peer = %self.peer, "keep alive expired");
                        return Exit::ServerDisconnect(ReasonCode::KEEP_ALIVE_TIMEOUT);
                    }
                    match self.flush().await {
                        Ok(true) => {}
                        Ok(false) => return Exit::TakenOver,
                        Err(()) => return Exit::Closed,
                    }
                }
            }
        }
    }

    /// Drops remembered matches that subscriptions have changed since, and the sessions they
    /// hold; a quiet connection keeps only what is still valid.
    fn forget_stale_matches(&mut self) {
        if let Some(cache) = &mut self.match_cache {
            let generation = self.broker.router_generation();
            if cache.forget_stale(generation) {
                self.match_cache = None;
            }
        }
    }

    /// Decodes and handles every whole packet in the read buffer.
    fn handle_buffered(&mut self) -> Result<(), Exit> {
        let result = self.handle_each_buffered();
        // Whatever was handled before an error still goes out.
        self.flush_batch.finish(&self.broker.inner.stats);
        result
    }

    fn handle_each_buffered(&mut self) -> Result<(), Exit> {
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(packet)) => self.handle(packet)?,
                Ok(None) => return Ok(()),
                Err(error) => {
                    debug!(peer = %self.peer, "protocol error: {error}");
                    self.reason_string = Some(error.to_string());
                    return Err(Exit::ServerDisconnect(error.reason_code()));
                }
            }
        }
    }

    /// Writes whatever the session has pending. `Ok(false)`: the session now belongs to
    /// another connection.
    async fn flush(&mut self) -> Result<bool, ()> {
        let mut pending = {
            let mut state = lock(&self.session.state);
            if !state.is_attached(self.generation) {
                return Ok(false);
            }
            if state.out.is_empty() {
                return Ok(true);
            }
            // Publishers must not write to the socket while this buffer is on its way.
            state.writing = true;
            std::mem::replace(&mut state.out, std::mem::take(&mut self.spare))
        };
        // flush: a no-op on TCP, it sends the frame on WebSocket.
        let result = match self.stream.write_all(&pending).await {
            Ok(()) => self.stream.flush().await,
            Err(error) => Err(error),
        };
        {
            let mut state = lock(&self.session.state);
            // Only while still attached: after a takeover the flag is the new connection's.
            if state.is_attached(self.generation) {
                state.writing = false;
            }
        }
        self.broker
            .inner
            .stats
            .bytes_sent
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        if pending.capacity() > SPARE_KEEP_MIN {
            pending.clear();
            self.spare = pending;
        }
        match result {
            Ok(()) => Ok(true),
            Err(_) => Err(()),
        }
    }

    /// Dispatches one packet from the client; state is checked first: only `Connected`
    /// reaches here, so a second CONNECT is a protocol error [MQTT-3.1.0-2].
    #[inline]
    fn handle(&mut self, packet: Packet) -> Result<(), Exit> {
        match packet {
            Packet::Connect(_) => Err(Exit::ServerDisconnect(ReasonCode::PROTOCOL_ERROR)),
            Packet::Publish(publish) => self.on_publish(publish),
            Packet::PubAck(ack) => {
                self.on_completed(ack, Stage::Published, QoS::AtLeastOnce);
                Ok(())
            }
            Packet::PubRec(rec) => {
                self.on_pubrec(rec);
                Ok(())
            }
            Packet::PubRel(rel) => {
                self.on_pubrel(rel);
                Ok(())
            }
            Packet::PubComp(comp) => {
                self.on_completed(comp, Stage::Released, QoS::ExactlyOnce);
                Ok(())
            }
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => {
                self.on_unsubscribe(unsubscribe);
                Ok(())
            }
            Packet::PingReq => {
                lock(&self.session.state).write_packet(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(disconnect) => self.on_disconnect(disconnect),
            // Server-to-client packets, and AUTH without a negotiated method.
            Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp
            | Packet::Auth(_) => {
                debug!(peer = %self.peer, "unexpected packet from client");
                Err(Exit::ServerDisconnect(ReasonCode::PROTOCOL_ERROR))
            }
        }
    }

    #[inline]
    fn on_publish(&mut self, mut publish: Publish) -> Result<(), Exit> {
        let config = self.broker.config();
        // A client never sends Subscription Identifiers [MQTT-3.3.4-6].
        if !publish.properties.subscription_identifiers.is_empty() {
            return Err(Exit::ServerDisconnect(ReasonCode::PROTOCOL_ERROR));
        }
        if publish.qos as u8 > config.mqtt.maximum_qos {
            return Err(Exit::ServerDisconnect(ReasonCode::QOS_NOT_SUPPORTED));
        }
        if publish.retain && !config.mqtt.retain_available {
            return Err(Exit::ServerDisconnect(ReasonCode::RETAIN_NOT_SUPPORTED));
        }
        // Topic Alias: map or resolve [MQTT-3.3.2-12].
        if let Some(alias) = publish.properties.topic_alias.take() {
            if alias.get() > self.topic_alias_max {
                return Err(Exit::ServerDisconnect(ReasonCode::TOPIC_ALIAS_INVALID));
            }
            let index = usize::from(alias.get()) - 1;
            if self.aliases.len() <= index {
                self.aliases.resize(index + 1, None);
            }
            let slot = &mut self.aliases[index];
            if publish.topic.is_empty() {
                match slot {
                    Some(topic) => publish.topic = topic.clone(),
                    None => return Err(Exit::ServerDisconnect(ReasonCode::PROTOCOL_ERROR)),
                }
            } else {
                *slot = Some(publish.topic.clone());
            }
        }
        let stats = &self.broker.inner.stats;
        stats.publish_received.fetch_add(1, Ordering::Relaxed);
        stats.messages_received.fetch_add(1, Ordering::Relaxed);

        let limits = &config.limits;
        // A topic of n bytes has at most n + 1 levels: short ones need no count.
        let topic_ok = publish.topic.len() <= limits.max_topic_length
            && (publish.topic.len() < limits.max_topic_levels
                || topic_levels(&publish.topic) <= limits.max_topic_levels);
        // Clients may not publish into $SYS; such messages are acknowledged and dropped.
        let allowed = !(publish.topic == "$SYS" || publish.topic.starts_with("$SYS/"));
        let packet_id = publish.packet_id;
        let qos = publish.qos;

        // QoS 2: a PUBLISH whose id already waits for PUBREL is a re-send, not routed again
        // [MQTT-4.3.3-9].
        if publish.qos == QoS::ExactlyOnce {
            if let Some(id) = packet_id {
                let mut state = lock(&self.session.state);
                if state.incoming_qos2.contains(&id.get()) {
                    state.write_packet(&Packet::PubRec(PubResponse::new(id)));
                    return Ok(());
                }
                if state.incoming_qos2.len() >= usize::from(config.limits.receive_maximum) {
                    return Err(Exit::ServerDisconnect(ReasonCode::RECEIVE_MAXIMUM_EXCEEDED));
                }
            }
        }

        let mut reason = ReasonCode::SUCCESS;
        if !topic_ok {
            reason = ReasonCode::TOPIC_NAME_INVALID;
        } else if !allowed {
            reason = ReasonCode::NOT_AUTHORIZED;
        } else {
            // Only an expiring message is timed on its way (its expiry is checked against
            // `now`): the others skip reading the clock, a large part of routing them.
            let now = if publish.properties.message_expiry_interval.is_some() {
                Instant::now()
            } else {
                self.broker.started()
            };
            let message = Routed::new(self.message_from(publish, now));
            let cache = self.match_cache.get_or_insert_with(Box::default);
            let matched =
                self.broker
                    .publish_into(message, &mut self.flush_batch, Some(cache), now);
            if matched == 0 && qos != QoS::AtMostOnce {
                reason = ReasonCode::NO_MATCHING_SUBSCRIBERS;
            }
        }
        if !reason.is_success() {
            debug!(peer = %self.peer, "PUBLISH not routed: {reason}");
        }
        let Some(id) = packet_id else { return Ok(()) };
        let mut state = lock(&self.session.state);
        if qos == QoS::ExactlyOnce {
            // Remembered until PUBREL so a re-sent PUBLISH is not routed twice [MQTT-4.3.3-9].
            if reason.is_success() {
                state.incoming_qos2.insert(id.get());
            }
            state.write_packet(&Packet::PubRec(PubResponse::with_reason(id, reason)));
        } else {
            state.write_packet(&Packet::PubAck(PubResponse::with_reason(id, reason)));
        }
        Ok(())
    }

    #[inline]
    fn message_from(&self, publish: Publish, now: Instant) -> Message {
        let mut properties = publish.properties;
        // Per hop (the alias was taken by `on_publish`): the expiry lives on as `expires_at`.
        let expires_at = properties
            .message_expiry_interval
            .take()
            .map(|secs| now + Duration::from_secs(u64::from(secs)));
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: Message::stored_properties(properties),
            expires_at,
            origin: self.session.id,
        }
    }

    fn on_pubrel(&mut self, rel: PubResponse) {
        let mut state = lock(&self.session.state);
        let known = state.incoming_qos2.remove(&rel.packet_id.get());
        let reason = if known {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        state.write_packet(&Packet::PubComp(PubResponse::with_reason(
            rel.packet_id,
            reason,
        )));
    }

    fn on_pubrec(&mut self, rec: PubResponse) {
        let stats = &self.broker.inner.stats;
        let mut state = lock(&self.session.state);
        if !rec.reason_code.is_success() {
            // The client refused it: the flow ends here (MQTT 5.0 4.3.3).
            state.complete(rec.packet_id, Stage::Published, QoS::ExactlyOnce);
            state.drain_queue(stats, Instant::now());
            return;
        }
        let reason = if state.release(rec.packet_id) {
            ReasonCode::SUCCESS
        } else {
            ReasonCode::PACKET_IDENTIFIER_NOT_FOUND
        };
        state.write_packet(&Packet::PubRel(PubResponse::with_reason(
            rec.packet_id,
            reason,
        )));
    }

    fn on_completed(&mut self, ack: PubResponse, stage: Stage, qos: QoS) {
        let stats = &self.broker.inner.stats;
        let mut state = lock(&self.session.state);
        if state.complete(ack.packet_id, stage, qos) {
            state.drain_queue(stats, Instant::now());
        }
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) -> Result<(), Exit> {
        let config = self.broker.config();
        let mqtt = &config.mqtt;
        let identifier = subscribe.properties.subscription_identifier;
        if identifier.is_some() && !mqtt.subscription_identifiers_available {
            return Err(Exit::ServerDisconnect(
                ReasonCode::SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED,
            ));
        }
        let mut codes = Vec::with_capacity(subscribe.subscriptions.len());
        let mut retained_for = Vec::new();
        for mut subscription in subscribe.subscriptions {
            let filter = &subscription.filter;
            let text = filter.as_str();
            let code = if text.len() > config.limits.max_topic_length
                || topic_levels(text) > config.limits.max_topic_levels
            {
                ReasonCode::TOPIC_FILTER_INVALID
            } else if filter.has_wildcards() && !mqtt.wildcard_subscription_available {
                ReasonCode::WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED
            } else if filter.shared().is_some() && !mqtt.shared_subscription_available {
                ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED
            } else {
                let granted = QoS::from_u8((subscription.options.qos as u8).min(mqtt.maximum_qos))
                    .unwrap_or(QoS::AtMostOnce);
                subscription.options.qos = granted;
                let existed = self
                    .broker
                    .subscribe(&self.session, &subscription, identifier);
                retained_for.push((subscription, existed));
                ReasonCode(granted as u8)
            };
            codes.push(code);
        }
        let suback = SubAck::new(subscribe.packet_id, codes);
        lock(&self.session.state).write_packet(&Packet::SubAck(suback));
        // Retained messages follow the SUBACK (MQTT 5.0 3.3.1.3, Retain Handling).
        for (subscription, existed) in retained_for {
            self.broker
                .send_retained(&self.session, &subscription, identifier, existed);
        }
        Ok(())
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let codes = unsubscribe
            .filters
            .iter()
            .map(|filter| {
                if self.broker.unsubscribe(&self.session, filter) {
                    ReasonCode::SUCCESS
                } else {
                    ReasonCode::NO_SUBSCRIPTION_EXISTED
                }
            })
            .collect();
        let unsuback = UnsubAck::new(unsubscribe.packet_id, codes);
        lock(&self.session.state).write_packet(&Packet::UnsubAck(unsuback));
    }

    fn on_disconnect(&mut self, disconnect: Disconnect) -> Result<(), Exit> {
        if let Some(expiry) = disconnect.properties.session_expiry_interval {
            let mut state = lock(&self.session.state);
            // Zero at CONNECT cannot become non-zero at DISCONNECT (MQTT 5.0 3.14.2.2.2).
            if state.expiry_interval == 0 && expiry != 0 {
                drop(state);
                return Err(Exit::ServerDisconnect(ReasonCode::PROTOCOL_ERROR));
            }
            state.expiry_interval =
                expiry.min(self.broker.config().session.max_session_expiry_interval);
        }
        let with_will = disconnect.reason_code == ReasonCode::DISCONNECT_WITH_WILL_MESSAGE;
        Err(Exit::ClientDisconnect { with_will })
    }

    /// The `Closing` phase: tell a v5 client why (when the server ends it), detach from the
    /// session, publish or schedule the will, and end or schedule the end of the session.
    async fn close(mut self, exit: Exit) {
        {
            // From here on only this task writes to the socket: a publisher's direct write
            // could otherwise land in the middle of the DISCONNECT below.
            let mut state = lock(&self.session.state);
            if state.is_attached(self.generation) {
                state.socket = None;
            }
        }
        let reason = match &exit {
            Exit::ServerDisconnect(reason) => Some(*reason),
            Exit::TakenOver => Some(ReasonCode::SESSION_TAKEN_OVER),
            _ => None,
        };
        if let Some(reason) = reason {
            if self.version.is_v5() && reason != ReasonCode::SUCCESS {
                let _ = self.flush().await;
                let mut out = BytesMut::new();
                let mut disconnect = Disconnect::new(reason);
                disconnect.properties.reason_string = self.reason_string.take().map(Into::into);
                let max = self.client_max_packet_size;
                let mut packet = Packet::Disconnect(disconnect);
                if packet.encoded_size(self.version).unwrap_or(usize::MAX) > max as usize {
                    // Too large for the client with its Reason String: send the code alone.
                    packet = Packet::Disconnect(Disconnect::new(reason));
                }
                if packet.encode_within(self.version, max, &mut out).is_ok() {
                    let _ = self.stream.write_all(&out).await;
                    let _ = self.stream.flush().await;
                }
            }
        }
        let _ = self.stream.shutdown().await;
        debug!(peer = %self.peer, client_id = %self.session.client_id, ?exit, "client disconnected");

        let publish_will = !matches!(exit, Exit::ClientDisconnect { with_will: false })
            && !matches!(
                exit,
                Exit::ServerDisconnect(ReasonCode::SERVER_SHUTTING_DOWN)
            );
        let taken_over = matches!(exit, Exit::TakenOver);
        let expiry = {
            let mut state = lock(&self.session.state);
            let still_mine = state.is_attached(self.generation);
            if still_mine {
                state.link = None;
                self.broker.inner.keep_alive.disarm(&self.session);
                state.socket = None;
                state.writing = false;
                state.out.clear();
                state.detached_generation = self.generation;
            }
            state.expiry_interval
        };
        if publish_will {
            if let Some(will) = self.will.take() {
                let delay = will.properties.will_delay_interval.unwrap_or(0).min(expiry);
                if taken_over && !self.broker.is_current_session(&self.session) {
                    // A clean start replaced the session: it has ended, so the will goes out
                    // now, whatever its delay (MQTT 5.0 3.1.3.2.2).
                    self.broker
                        .schedule_will(self.session.clone(), *will, 0, self.generation);
                } else if !(taken_over && delay > 0) {
                    // Taken over by a connection that resumed the session: a delayed will is
                    // cancelled [MQTT-3.1.3-9]; an immediate one still goes out.
                    self.broker
                        .schedule_will(self.session.clone(), *will, delay, self.generation);
                }
            }
        }
        if !taken_over {
            self.broker
                .schedule_session_end(self.session.clone(), expiry, self.generation);
        }
    }
}

/// Levels of a topic name or filter: one more than its separators (a byte count; cheaper than
/// splitting on every message).
fn topic_levels(topic: &str) -> usize {
    topic.bytes().filter(|&b| b == b'/').count() + 1
}

/// The next read buffer size: double when a read filled all the room it had, halve when it
/// used less than a quarter of the size.
fn next_read_size(size: usize, read: usize, room: usize) -> usize {
    if read >= room {
        (size * 2).min(READ_MAX)
    } else if read < size / 4 {
        (size / 2).max(READ_MIN)
    } else {
        size
    }
}
