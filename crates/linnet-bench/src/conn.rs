//! One benchmark connection ([`Conn`]): the CONNECT / SUBSCRIBE handshakes, helpers the
//! traffic loops share, the idle loop of `conn` runs, and opening many connections at a pace
//! ([`connect_many`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use linnet_proto::{
    Connect, Decoder, Disconnect, Packet, PacketId, ProtocolVersion, QoS, ReasonCode, Subscribe,
    TopicFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::config::{Pacing, Target};
use crate::error::BenchError;
use crate::stats::LatencyHistogram;
use crate::stream::Stream;

/// Spare read-buffer room below which the buffer grows before a read.
const READ_RESERVE: usize = 16 * 1024;
/// How much it grows.
const READ_CHUNK: usize = 64 * 1024;

/// Live counters of a run, read once a second for progress lines.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connected: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) received: AtomicU64,
    /// Told after each read that delivered messages, for publishers held by the delivery
    /// window.
    pub(crate) delivered: tokio::sync::Notify,
    /// Deliveries the delivery window gave up waiting for (lost at the broker).
    pub(crate) written_off: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// An open, CONNACKed connection with its buffers.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) client_id: String,
    pub(crate) index: u32,
    pub(crate) stream: Stream,
    pub(crate) decoder: Decoder,
    pub(crate) rbuf: BytesMut,
    pub(crate) out: BytesMut,
    pub(crate) version: ProtocolVersion,
    /// The broker's Receive Maximum (65,535 when it sends none).
    pub(crate) receive_maximum: u16,
    /// Ping when nothing was written for this long; zero: never.
    pub(crate) ping_every: Duration,
}

impl Conn {
    /// Opens a TCP connection, sends CONNECT and waits for a successful CONNACK. Returns the
    /// connection and the time from the start of the TCP connect to the CONNACK.
    pub(crate) async fn open(
        addr: SocketAddr,
        target: &Target,
        index: u32,
        client_id: String,
    ) -> Result<(Self, Duration), BenchError> {
        let started = Instant::now();
        let deadline = started + target.connect_timeout;
        let stream = match timeout_at(deadline, tcp_connect(addr, target, index)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(BenchError::Connect {
                    client_id,
                    addr,
                    source,
                })
            }
            Err(_) => {
                return Err(BenchError::Timeout {
                    client_id,
                    what: "TCP connection",
                    within: target.connect_timeout,
                })
            }
        };
        if let Err(source) = stream.set_nodelay(true) {
            return Err(BenchError::Io { client_id, source });
        }
        let stream = match &target.ws_path {
            None => Stream::Tcp(stream),
            Some(path) => {
                let host = format!("{}:{}", target.host, target.port);
                match timeout_at(deadline, linnet_ws::connect(stream, &host, path)).await {
                    Ok(Ok(ws)) => Stream::Ws(Box::new(ws)),
                    Ok(Err(source)) => return Err(BenchError::Io { client_id, source }),
                    Err(_) => {
                        return Err(BenchError::Timeout {
                            client_id,
                            what: "WebSocket handshake",
                            within: target.connect_timeout,
                        })
                    }
                }
            }
        };
        let mut connect = Connect::new(target.version, client_id.clone());
        connect.keep_alive = target.keep_alive;
        connect.username = target.username.as_deref().map(Into::into);
        connect.password = target
            .password
            .as_ref()
            .map(|p| p.clone().into_bytes().into());
        let mut conn = Self {
            client_id,
            index,
            stream,
            decoder: Decoder::new(target.version),
            rbuf: BytesMut::with_capacity(4096),
            out: BytesMut::with_capacity(1024),
            version: target.version,
            receive_maximum: u16::MAX,
            ping_every: Duration::from_secs(u64::from(target.keep_alive) / 2),
        };
        conn.queue(&Packet::Connect(Box::new(connect)))?;
        conn.flush().await?;
        match conn.recv(deadline, "CONNACK").await? {
            Packet::ConnAck(ack) if ack.reason_code.is_success() => {
                conn.receive_maximum = ack.properties.receive_maximum.map_or(u16::MAX, |r| r.get());
                if let Some(keep_alive) = ack.properties.server_keep_alive {
                    conn.ping_every = Duration::from_secs(u64::from(keep_alive) / 2);
                }
                Ok((conn, started.elapsed()))
            }
            Packet::ConnAck(ack) => Err(BenchError::Refused {
                client_id: conn.client_id,
                reason: match ack.properties.reason_string {
                    Some(text) => format!("{} ({text})", ack.reason_code),
                    None => ack.reason_code.to_string(),
                },
            }),
            other => Err(conn.unexpected("CONNACK", &other)),
        }
    }

    /// Subscribes to `filter` and waits for a successful SUBACK.
    pub(crate) async fn subscribe(
        &mut self,
        filter: &str,
        qos: QoS,
        within: Duration,
    ) -> Result<(), BenchError> {
        let topic_filter = TopicFilter::new(filter)
            .map_err(|e| BenchError::Config(format!("invalid topic filter {filter:?}: {e}")))?;
        let id = PacketId::MIN;
        self.queue(&Packet::Subscribe(Subscribe::new(id, topic_filter, qos)))?;
        self.flush().await?;
        match self.recv(Instant::now() + within, "SUBACK").await? {
            Packet::SubAck(ack) => match ack.reason_codes.first() {
                Some(code) if code.is_success() => Ok(()),
                other => Err(BenchError::SubscribeRefused {
                    client_id: self.client_id.clone(),
                    filter: filter.to_owned(),
                    reason: other.map_or_else(|| "no reason code".into(), ToString::to_string),
                }),
            },
            other => Err(self.unexpected("SUBACK", &other)),
        }
    }

    /// Encodes `packet` at the end of the output buffer.
    pub(crate) fn queue(&mut self, packet: &Packet) -> Result<(), BenchError> {
        packet.encode(self.version, &mut self.out)?;
        Ok(())
    }

    /// Writes the whole output buffer.
    pub(crate) async fn flush(&mut self) -> Result<(), BenchError> {
        if let Err(source) = self.stream.write_all(&self.out).await {
            return Err(self.io_error(source));
        }
        self.out.clear();
        Ok(())
    }

    /// The next packet; an error if none comes before `deadline`.
    pub(crate) async fn recv(
        &mut self,
        deadline: Instant,
        what: &'static str,
    ) -> Result<Packet, BenchError> {
        let started = Instant::now();
        loop {
            if let Some(packet) = decode_next(&mut self.decoder, &mut self.rbuf, &self.client_id)? {
                return Ok(packet);
            }
            reserve_read(&mut self.rbuf);
            match timeout_at(deadline, self.stream.read_buf(&mut self.rbuf)).await {
                Ok(Ok(0)) => return Err(closed(&self.client_id, "")),
                Ok(Ok(_)) => {}
                Ok(Err(source)) => return Err(self.io_error(source)),
                Err(_) => {
                    return Err(BenchError::Timeout {
                        client_id: self.client_id.clone(),
                        what,
                        within: deadline.saturating_duration_since(started),
                    })
                }
            }
        }
    }

    /// Sends DISCONNECT and closes, best effort and within a second.
    pub(crate) async fn close(mut self) {
        if self
            .queue(&Packet::Disconnect(Disconnect::new(
                ReasonCode::NORMAL_DISCONNECTION,
            )))
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                let _ = self.flush().await;
                let _ = self.stream.shutdown().await;
            })
            .await;
        }
    }

    pub(crate) fn io_error(&self, source: std::io::Error) -> BenchError {
        BenchError::Io {
            client_id: self.client_id.clone(),
            source,
        }
    }

    fn unexpected(&self, expected: &'static str, got: &Packet) -> BenchError {
        BenchError::Unexpected {
            client_id: self.client_id.clone(),
            expected,
            got: format!("{:?}", got.packet_type()),
        }
    }
}

/// A TCP connection to `addr`, from the next of the target's source addresses when it has
/// some (each source address gives another 64k ephemeral ports).
async fn tcp_connect(addr: SocketAddr, target: &Target, index: u32) -> std::io::Result<TcpStream> {
    if target.source_addrs.is_empty() {
        return TcpStream::connect(addr).await;
    }
    let source = target.source_addrs[index as usize % target.source_addrs.len()];
    let socket = match source {
        std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// The next complete packet in `rbuf`, if any.
pub(crate) fn decode_next(
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
    client_id: &str,
) -> Result<Option<Packet>, BenchError> {
    decoder.decode(rbuf).map_err(|source| BenchError::Decode {
        client_id: client_id.to_owned(),
        source,
    })
}

/// Makes room in the read buffer before a read.
pub(crate) fn reserve_read(rbuf: &mut BytesMut) {
    if rbuf.capacity() - rbuf.len() < READ_RESERVE {
        rbuf.reserve(READ_CHUNK);
    }
}

/// The error for a connection the broker closed; `reason` follows the message.
pub(crate) fn closed(client_id: &str, reason: &str) -> BenchError {
    BenchError::Closed {
        client_id: client_id.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The error for a DISCONNECT from the broker.
pub(crate) fn disconnected(client_id: &str, disconnect: &Disconnect) -> BenchError {
    let reason = match &disconnect.properties.reason_string {
        Some(text) => format!(" with DISCONNECT {} ({text})", disconnect.reason_code),
        None => format!(" with DISCONNECT {}", disconnect.reason_code),
    };
    closed(client_id, &reason)
}

/// Advances the output buffer past `written` bytes, releasing its space when it empties.
pub(crate) fn consume(out: &mut BytesMut, written: usize) {
    out.advance(written);
    if out.is_empty() {
        out.clear();
    }
}

/// Resolves once `stop` is true or its sender is gone (cancel safe; holds no borrow of the
/// channel's value across the caller's awaits).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Holds an idle connection open until `stop` (or `hard`), answering and sending pings.
pub(crate) async fn hold_idle(
    mut conn: Conn,
    mut stop: watch::Receiver<bool>,
    hard: Instant,
) -> Result<(), BenchError> {
    let mut last_write = Instant::now();
    loop {
        let ping_at = if conn.ping_every.is_zero() {
            hard
        } else {
            (last_write + conn.ping_every).min(hard)
        };
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            read = conn.stream.read_buf(&mut conn.rbuf) => {
                match read {
                    Ok(0) => return Err(closed(&conn.client_id, "")),
                    Ok(_) => {}
                    Err(source) => return Err(conn.io_error(source)),
                }
                while let Some(packet) = decode_next(&mut conn.decoder, &mut conn.rbuf, &conn.client_id)? {
                    if let Packet::Disconnect(disconnect) = packet {
                        return Err(disconnected(&conn.client_id, &disconnect));
                    }
                }
                reserve_read(&mut conn.rbuf);
            }
            _ = sleep_until(ping_at) => {
                if Instant::now() >= hard {
                    break;
                }
                conn.queue(&Packet::PingReq)?;
                conn.flush().await?;
                last_write = Instant::now();
            }
        }
    }
    conn.close().await;
    Ok(())
}

/// One connection to open: its index, client id and optional subscription.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    pub(crate) index: u32,
    pub(crate) client_id: String,
    pub(crate) subscribe: Option<(String, QoS)>,
}

/// The connections [`connect_many`] opened, in the order asked.
#[derive(Debug)]
pub(crate) struct Connected {
    pub(crate) conns: Vec<Conn>,
    /// TCP connect to CONNACK, µs.
    pub(crate) latency: LatencyHistogram,
    /// From the first connection start to the last CONNACK (subscriptions included).
    pub(crate) elapsed: Duration,
}

/// Opens every connection in `handshakes` at `pacing`'s pace (and subscribes those that
/// ask); an error naming the first failure if any fails.
pub(crate) async fn connect_many(
    addr: SocketAddr,
    target: &Arc<Target>,
    pacing: &Pacing,
    handshakes: Vec<Handshake>,
    counters: &Arc<Counters>,
) -> Result<Connected, BenchError> {
    let total = handshakes.len();
    // Set by the first failure: no new connection starts after it.
    let abort = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let gap = pacing.gap();
    let permits = Arc::new(Semaphore::new(pacing.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut next_start = started;
    let mut attempted = 0;
    for (slot, handshake) in handshakes.into_iter().enumerate() {
        if !gap.is_zero() {
            sleep_until(next_start).await;
            next_start += gap;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        if abort.load(Ordering::Relaxed) {
            break;
        }
        attempted += 1;
        let target = Arc::clone(target);
        let counters = Arc::clone(counters);
        let abort = Arc::clone(&abort);
        tasks.spawn(async move {
            let result = async {
                let (mut conn, latency) =
                    Conn::open(addr, &target, handshake.index, handshake.client_id).await?;
                counters.connected.fetch_add(1, Ordering::Relaxed);
                if let Some((filter, qos)) = handshake.subscribe {
                    conn.subscribe(&filter, qos, target.connect_timeout).await?;
                }
                Ok::<_, BenchError>((slot, conn, latency))
            }
            .await;
            drop(permit);
            if result.is_err() {
                abort.store(true, Ordering::Relaxed);
            }
            result
        });
    }
    let mut slots: Vec<Option<Conn>> = (0..total).map(|_| None).collect();
    let mut latency = LatencyHistogram::new();
    let mut failed = 0;
    let mut first = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .map_err(|e| BenchError::Task(e.to_string()))
            .and_then(|r| r);
        match result {
            Ok((slot, conn, took)) => {
                latency.record_us(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
                slots[slot] = Some(conn);
            }
            Err(error) => {
                failed += 1;
                first.get_or_insert(error);
            }
        }
    }
    let elapsed = started.elapsed();
    if let Some(first) = first {
        for conn in slots.into_iter().flatten() {
            conn.close().await;
        }
        return Err(BenchError::ConnectFailed {
            failed,
            total: attempted,
            first: Box::new(first),
        });
    }
    Ok(Connected {
        conns: slots.into_iter().flatten().collect(),
        latency,
        elapsed,
    })
}
