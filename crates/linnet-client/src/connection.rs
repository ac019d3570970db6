//! The connection task: owns the transport, feeds received packets and application commands
//! into the sans-IO [`State`], writes what it produces, runs keep alive, and reconnects with
//! backoff. One task per client, spawned by [`start`] (so nothing depends on the application
//! polling anything).
//!
//! ```text
//! start: establish (CONNECT -> CONNACK) --spawn--> serve <-----------------+
//!                                                    | lost (I/O, keep alive,|
//!                                                    | DISCONNECT, violation)|
//!                                                    v                       |
//!                            no reconnect: end   reconnect: wait backoff --> establish
//!                                                (publishes queue offline)
//! serve / reconnect --Client::disconnect or all handles dropped--> DISCONNECT, end
//! ```

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use bytestring::ByteString;
use linnet_proto::{
    ConnAck, Connect, Decoder, DisconnectProperties, Packet, ProtocolVersion, ReasonCode,
    SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, Will,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{reason_text, ClientError};
use crate::options::{Backoff, ConnectOptions};
use crate::state::{Flow, Reply, State, Violation};
use crate::transport::{self, Conn};
use crate::{AckToken, Connected, Event, OutgoingMessage, PublishOutcome};

/// A request from a [`Client`](crate::Client) handle to the task.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        msg: OutgoingMessage,
        reply: Reply<PublishOutcome>,
    },
    Subscribe {
        subs: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
        reply: Reply<Vec<ReasonCode>>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        reply: Reply<Vec<ReasonCode>>,
    },
    Ack(AckToken),
    Route {
        filter: TopicFilter,
        tx: mpsc::UnboundedSender<crate::Message>,
    },
    Reauthenticate {
        data: Option<bytes::Bytes>,
        reply: Reply<()>,
    },
    Disconnect {
        reason: ReasonCode,
        properties: DisconnectProperties,
        reply: Reply<()>,
    },
}

/// An established connection: transport, unread bytes, decoder.
#[derive(Debug)]
struct Link {
    conn: Conn,
    rbuf: BytesMut,
    decoder: Decoder,
}

/// Why `serve` returned.
#[derive(Debug)]
enum End {
    /// The application disconnected (or dropped every handle): the task ends.
    Closed,
    /// The connection was lost; reconnect if configured.
    Lost {
        reason: Option<ReasonCode>,
        reason_string: Option<String>,
        error: ClientError,
    },
}

impl End {
    fn io(e: &io::Error) -> Self {
        tracing::debug!(error = %e, "connection lost");
        Self::Lost {
            reason: None,
            reason_string: Some(e.to_string()),
            error: ClientError::ConnectionLost,
        }
    }

    fn eof() -> Self {
        Self::Lost {
            reason: None,
            reason_string: Some("connection closed by the server".into()),
            error: ClientError::ConnectionLost,
        }
    }
}

/// Connects (first time, errors go to the caller) and spawns the task.
pub(crate) async fn start(
    opts: ConnectOptions,
) -> Result<
    (
        mpsc::UnboundedSender<Command>,
        mpsc::UnboundedReceiver<Event>,
        Connected,
    ),
    ClientError,
> {
    let version = opts.version;
    if !version.is_v5() && opts.client_id.is_empty() && !opts.clean_start {
        // [v311:MQTT-3.1.3-7]
        return Err(ClientError::invalid(
            "client id",
            "an empty client id needs clean session in MQTT 3.x",
        ));
    }
    let our_alias_max = if version.is_v5() {
        opts.properties.topic_alias_maximum.unwrap_or(0)
    } else {
        0
    };
    let mut state = State::new(
        version,
        opts.manual_ack,
        opts.offline_queue,
        our_alias_max,
        std::time::Instant::now(),
    );
    state.enhanced_auth = opts.auth_method().is_some();
    let (link, connack) = establish(&opts, &opts.client_id, opts.clean_start).await?;
    state.tick(std::time::Instant::now());
    let connected = state
        .on_connack(&connack, opts.clean_start)
        .map_err(|v| ClientError::Protocol(v.text))?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    let mut task = Task {
        client_id: opts.client_id.clone(),
        keep_alive: Duration::ZERO,
        opts,
        state,
        cmds: cmd_rx,
        cmds_open: true,
        events: event_tx,
        closing: false,
        closing_reply: None,
        reauth_reply: None,
        wbuf: BytesMut::new(),
        attempt: 0,
        connected_at: Instant::now(),
    };
    task.after_connack(&connected);
    tokio::spawn(task.run(link));
    Ok((cmd_tx, event_rx, connected))
}

/// The CONNECT packet for these options.
fn connect_packet(
    opts: &ConnectOptions,
    client_id: &str,
    clean_start: bool,
) -> Result<Connect, ClientError> {
    let mut connect = Connect::new(opts.version, client_id);
    connect.clean_start = clean_start;
    connect.keep_alive = opts.keep_alive_secs();
    connect.username = opts.username.as_deref().map(ByteString::from);
    connect.password = opts.password.clone();
    if opts.version.is_v5() {
        connect.properties = opts.properties.clone();
    }
    if let Some(will) = &opts.will {
        let topic = TopicName::new(will.topic.as_str())
            .map_err(|e| ClientError::invalid("will topic", format!("{:?}: {e}", will.topic)))?;
        let mut w = Will::new(topic, will.payload.clone());
        w.qos = will.qos;
        w.retain = will.retain;
        if opts.version.is_v5() {
            w.properties = will.properties.clone();
        }
        connect.will = Some(w);
    }
    Ok(connect)
}

/// Opens the transport and completes CONNECT / CONNACK within the connect timeout. The first
/// packet on the connection is CONNECT [MQTT-3.1.0-1].
async fn establish(
    opts: &ConnectOptions,
    client_id: &str,
    clean_start: bool,
) -> Result<(Link, ConnAck), ClientError> {
    let version = opts.version;
    let addr = format!("{}:{}", opts.host, opts.port);
    let connect = connect_packet(opts, client_id, clean_start)?;
    let handshake = async {
        let io_err = |source: io::Error| ClientError::Io {
            addr: addr.clone(),
            source,
        };
        let mut conn = transport::open(&opts.host, opts.port, &opts.transport)
            .await
            .map_err(io_err)?;
        let mut buf = BytesMut::new();
        Packet::Connect(Box::new(connect))
            .encode(version, &mut buf)
            .map_err(|e| ClientError::invalid("CONNECT", e))?;
        conn.write_all(buf.freeze()).await.map_err(io_err)?;
        let mut decoder = Decoder::new(version);
        if let Some(max) = opts.properties.maximum_packet_size {
            if version.is_v5() {
                decoder.set_max_packet_size(max.get());
            }
        }
        let mut rbuf = BytesMut::new();
        loop {
            match decoder.decode(&mut rbuf) {
                Ok(Some(Packet::ConnAck(connack))) => {
                    return Ok((
                        Link {
                            conn,
                            rbuf,
                            decoder,
                        },
                        connack,
                    ))
                }
                Ok(Some(Packet::Auth(auth))) => {
                    // Enhanced authentication: only AUTH (or DISCONNECT) goes out until
                    // CONNACK [MQTT-3.1.2-30].
                    let answer = match (opts.auth_method(), &opts.auth) {
                        (Some(method), Some(handler)) => auth_answer(method, handler, &auth),
                        _ => Err(Violation {
                            code: ReasonCode::PROTOCOL_ERROR,
                            text: "AUTH from the server, but no authentication method was sent"
                                .into(),
                        }),
                    };
                    let packet = match &answer {
                        Ok(auth) => Packet::Auth(auth.clone()),
                        Err(v) => Packet::Disconnect(linnet_proto::Disconnect::new(v.code)),
                    };
                    let mut buf = BytesMut::new();
                    packet
                        .encode(version, &mut buf)
                        .map_err(|e| ClientError::invalid("AUTH", e))?;
                    conn.write_all(buf.freeze()).await.map_err(io_err)?;
                    if let Err(v) = answer {
                        conn.close().await;
                        return Err(ClientError::Protocol(v.text));
                    }
                }
                Ok(Some(other)) => {
                    return Err(ClientError::Protocol(format!(
                        "expected CONNACK, got {}",
                        other.packet_type().name()
                    )))
                }
                Ok(None) => {}
                Err(e) => return Err(ClientError::Protocol(e.to_string())),
            }
            let n = conn.read(&mut rbuf).await.map_err(io_err)?;
            if n == 0 {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before CONNACK",
                )));
            }
        }
    };
    let (link, connack) = tokio::time::timeout(opts.connect_timeout, handshake)
        .await
        .map_err(|_| ClientError::Timeout("waiting for CONNACK"))??;
    if !connack.reason_code.is_success() {
        let code = if version.is_v5() {
            connack.reason_code.0
        } else {
            connack.reason_code.to_connect_return_code() as u8
        };
        return Err(ClientError::Refused {
            code,
            text: reason_text(version, code).to_owned(),
        });
    }
    Ok((link, connack))
}

/// The connection task's own state (the protocol state is in `state`).
#[derive(Debug)]
struct Task {
    opts: ConnectOptions,
    /// The id to reconnect with: the configured one, or the one the server assigned.
    client_id: String,
    state: State,
    cmds: mpsc::UnboundedReceiver<Command>,
    /// False once every `Client` handle is gone.
    cmds_open: bool,
    events: mpsc::UnboundedSender<Event>,
    /// The keep alive in force (the Server Keep Alive if CONNACK had one).
    keep_alive: Duration,
    /// A DISCONNECT is queued; end after writing it.
    closing: bool,
    closing_reply: Option<Reply<()>>,
    /// A re-authentication waiting for the server's AUTH 0x00.
    reauth_reply: Option<Reply<()>>,
    wbuf: BytesMut,
    /// Reconnect attempts since the last connection that stayed up for [`STABLE`].
    attempt: u32,
    /// When the current connection was accepted.
    connected_at: Instant,
}

/// A connection that stayed up this long resets the reconnect backoff; one the server accepts
/// and then drops at once keeps backing off.
const STABLE: Duration = Duration::from_secs(10);

impl Task {
    fn version(&self) -> ProtocolVersion {
        self.opts.version
    }

    /// Adopts what CONNACK decided: Server Keep Alive [MQTT-3.2.2-21], Assigned Client
    /// Identifier (used when reconnecting).
    fn after_connack(&mut self, connected: &Connected) {
        self.keep_alive = match connected.properties.server_keep_alive {
            Some(secs) if self.version().is_v5() => Duration::from_secs(u64::from(secs)),
            _ => Duration::from_secs(u64::from(self.opts.keep_alive_secs())),
        };
        if let Some(id) = &connected.assigned_client_id {
            self.client_id.clone_from(id);
        }
    }

    async fn run(mut self, mut link: Link) {
        loop {
            let end = self.serve(&mut link).await;
            self.deliver();
            if let Some(reply) = self.reauth_reply.take() {
                let _ = reply.send(Err(ClientError::ConnectionLost));
            }
            match end {
                End::Closed => {
                    self.state.fail_all(|| ClientError::Closed);
                    return;
                }
                End::Lost {
                    reason,
                    reason_string,
                    error,
                } => {
                    let _ = self.events.send(Event::Disconnected {
                        reason,
                        reason_string,
                    });
                    self.state.connection_lost();
                    if self.connected_at.elapsed() >= STABLE {
                        self.attempt = 0;
                    }
                    let Some(backoff) = self.opts.reconnect.clone() else {
                        self.state.fail_all(|| copy_error(&error));
                        return;
                    };
                    match self.reconnect(&backoff).await {
                        Some(new_link) => link = new_link,
                        None => {
                            self.state.fail_all(|| ClientError::Closed);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Hands the state's events to the application (ignored if `Messages` was dropped).
    fn deliver(&mut self) {
        for event in self.state.events.drain(..) {
            let _ = self.events.send(event);
        }
    }

    /// Applies one command. Returns false if the task should end now (disconnect while
    /// offline).
    fn command(&mut self, cmd: Command) -> bool {
        self.state.tick(std::time::Instant::now());
        match cmd {
            Command::Publish { msg, reply } => self.state.publish(msg, reply),
            Command::Subscribe {
                subs,
                properties,
                reply,
            } => self.state.subscribe(subs, properties, reply),
            Command::Unsubscribe { filters, reply } => self.state.unsubscribe(filters, reply),
            Command::Ack(token) => self.state.ack(token),
            Command::Route { filter, tx } => self.state.add_route(filter, tx),
            Command::Reauthenticate { data, reply } => {
                let Some(method) = self.opts.auth_method() else {
                    let _ = reply.send(Err(ClientError::invalid(
                        "reauthenticate",
                        "no authentication method was configured (ConnectOptions::authentication)",
                    )));
                    return true;
                };
                if !self.state.is_connected() {
                    let _ = reply.send(Err(ClientError::ConnectionLost));
                    return true;
                }
                if self.reauth_reply.is_some() {
                    let _ = reply.send(Err(ClientError::invalid(
                        "reauthenticate",
                        "a re-authentication is in progress",
                    )));
                    return true;
                }
                // [MQTT-4.12.1-1]: the original Authentication Method.
                let mut auth = linnet_proto::Auth::new(ReasonCode::RE_AUTHENTICATE);
                auth.properties.authentication_method = Some(method.into());
                auth.properties.authentication_data = data;
                self.state.out.push(Packet::Auth(auth));
                self.reauth_reply = Some(reply);
            }
            Command::Disconnect {
                reason,
                properties,
                reply,
            } => {
                if !self.state.is_connected() {
                    let _ = reply.send(Ok(()));
                    return false;
                }
                let packet = self.state.disconnect_packet(reason, properties);
                if let Err(e) = self.state.check_packet(&packet) {
                    // Too large (reason string, user properties): the call fails, the
                    // connection stays.
                    let _ = reply.send(Err(e));
                    return true;
                }
                self.state.out.push(packet);
                self.closing = true;
                self.closing_reply = Some(reply);
            }
        }
        true
    }

    /// Runs one connection until it ends.
    async fn serve(&mut self, link: &mut Link) -> End {
        let ka = self.keep_alive;
        let mut last_sent = Instant::now();
        let mut last_recv = Instant::now();
        let mut ping_out = false;
        // Packets that came in the same read as CONNACK.
        if let Some(end) = self.decode_buffered(link).await {
            return end;
        }
        loop {
            if !self.state.out.is_empty() {
                self.wbuf.clear();
                for packet in self.state.out.drain(..) {
                    if let Err(e) = packet.encode(self.opts.version, &mut self.wbuf) {
                        tracing::warn!(error = %e, "cannot encode {}", packet.packet_type().name());
                    }
                }
                let bytes = self.wbuf.split().freeze();
                if let Err(e) = write_bounded(&mut link.conn, bytes, ka).await {
                    if self.closing {
                        // The application is leaving anyway: do not reconnect.
                        self.closing = false;
                        if let Some(reply) = self.closing_reply.take() {
                            let _ = reply.send(Ok(()));
                        }
                        return End::Closed;
                    }
                    return End::io(&e);
                }
                last_sent = Instant::now();
                for reply in self.state.written.drain(..) {
                    let _ = reply.send(Ok(PublishOutcome {
                        reason: ReasonCode::SUCCESS,
                        properties: Default::default(),
                    }));
                }
            }
            self.deliver();
            if self.closing {
                self.closing = false;
                link.conn.close().await;
                if let Some(reply) = self.closing_reply.take() {
                    let _ = reply.send(Ok(()));
                }
                return End::Closed;
            }
            let deadline = if ka.is_zero() {
                Instant::now() + Duration::from_secs(86_400)
            } else {
                let mut d = (last_sent + ka).min(last_recv + ka * 3 / 2);
                if !ping_out {
                    d = d.min(last_recv + ka);
                }
                d
            };
            tokio::select! {
                read = link.conn.read(&mut link.rbuf) => {
                    match read {
                        Ok(0) => return End::eof(),
                        Err(e) => return End::io(&e),
                        Ok(_) => {}
                    }
                    last_recv = Instant::now();
                    ping_out = false;
                    if let Some(end) = self.decode_buffered(link).await {
                        return end;
                    }
                }
                cmd = self.cmds.recv(), if self.cmds_open => match cmd {
                    Some(cmd) => {
                        // Online, `command` never asks to stop: a disconnect is written first.
                        self.command(cmd);
                    }
                    None => self.cmds_open = false,
                },
                () = tokio::time::sleep_until(deadline), if !ka.is_zero() => {
                    let now = Instant::now();
                    if now >= last_recv + ka * 3 / 2 {
                        return End::Lost {
                            reason: Some(ReasonCode::KEEP_ALIVE_TIMEOUT),
                            reason_string: Some(
                                "no packet from the server within 1.5 times the keep alive".into(),
                            ),
                            error: ClientError::ConnectionLost,
                        };
                    }
                    // [MQTT-3.1.2-20]: PINGREQ when nothing was sent for a keep alive; also
                    // when nothing was received, so a silent server is noticed.
                    if now >= last_sent + ka || (!ping_out && now >= last_recv + ka) {
                        self.state.out.push(Packet::PingReq);
                        ping_out = true;
                    }
                }
                () = self.events.closed(), if !self.cmds_open => {
                    // Nobody holds a Client or Messages any more.
                    let packet = self
                        .state
                        .disconnect_packet(ReasonCode::NORMAL_DISCONNECTION, Default::default());
                    self.state.out.push(packet);
                    self.closing = true;
                }
            }
        }
    }

    /// Handles every whole packet in the read buffer; `Some` if the connection ends.
    async fn decode_buffered(&mut self, link: &mut Link) -> Option<End> {
        self.state.tick(std::time::Instant::now());
        loop {
            match link.decoder.decode(&mut link.rbuf) {
                Ok(Some(packet)) => match self.state.handle(packet) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Auth(auth)) => {
                        if let Err(v) = self.on_auth(&auth) {
                            return Some(self.violation(link, v).await);
                        }
                    }
                    Ok(Flow::ServerDisconnect(d)) => {
                        let reason_string =
                            d.properties.reason_string.as_ref().map(|s| s.to_string());
                        return Some(End::Lost {
                            reason: Some(d.reason_code),
                            reason_string,
                            error: ClientError::disconnected(d.reason_code),
                        });
                    }
                    Err(v) => return Some(self.violation(link, v).await),
                },
                Ok(None) => return None,
                Err(e) => {
                    let v = Violation {
                        code: e.reason_code(),
                        text: e.to_string(),
                    };
                    return Some(self.violation(link, v).await);
                }
            }
        }
    }

    /// AUTH after CONNACK (re-authentication): answer a challenge, or finish on success.
    fn on_auth(&mut self, auth: &linnet_proto::Auth) -> Result<(), Violation> {
        if auth.reason_code == ReasonCode::SUCCESS {
            if let Some(reply) = self.reauth_reply.take() {
                let _ = reply.send(Ok(()));
            }
            return Ok(());
        }
        let (Some(method), Some(handler)) = (self.opts.auth_method(), self.opts.auth.as_ref())
        else {
            return Err(Violation {
                code: ReasonCode::PROTOCOL_ERROR,
                text: "unexpected AUTH".into(),
            });
        };
        let answer = auth_answer(method, handler, auth)?;
        self.state.out.push(Packet::Auth(answer));
        Ok(())
    }

    /// The server broke the protocol: DISCONNECT with the reason (v5), close.
    async fn violation(&mut self, link: &mut Link, v: Violation) -> End {
        tracing::debug!(code = ?v.code, text = %v.text, "protocol violation by the server");
        if self.version().is_v5() {
            let mut d = linnet_proto::Disconnect::new(v.code);
            d.properties.reason_string = Some(ByteString::from(v.text.as_str()));
            let mut buf = BytesMut::new();
            if Packet::Disconnect(d.clone())
                .encode(self.opts.version, &mut buf)
                .is_err()
            {
                buf.clear();
                let _ = Packet::Disconnect(linnet_proto::Disconnect::new(v.code))
                    .encode(self.opts.version, &mut buf);
            }
            let _ = write_bounded(&mut link.conn, buf.freeze(), self.keep_alive).await;
        }
        link.conn.close().await;
        End::Lost {
            reason: Some(v.code),
            reason_string: Some(v.text.clone()),
            error: ClientError::Protocol(v.text),
        }
    }

    /// Waits out the backoff (serving commands: publishes go to the offline queue), then
    /// tries again, until connected; None if the application ended the client meanwhile.
    async fn reconnect(&mut self, backoff: &Backoff) -> Option<Link> {
        // MQTT 5.0 resumes the session; MQTT 3.x keeps the application's Clean Session
        // choice (a 3.x session would never expire).
        let clean_start = if self.version().is_v5() {
            false
        } else {
            self.opts.clean_start
        };
        loop {
            let attempt = self.attempt;
            let wake = Instant::now() + backoff.delay(attempt);
            self.attempt = attempt.saturating_add(1);
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(wake) => break,
                    cmd = self.cmds.recv(), if self.cmds_open => match cmd {
                        Some(cmd) => {
                            if !self.command(cmd) {
                                return None;
                            }
                        }
                        None => self.cmds_open = false,
                    },
                    () = self.events.closed(), if !self.cmds_open => return None,
                }
            }
            // The attempt runs while commands keep being served (so a full offline queue is
            // reported at once, not after a connect timeout).
            let attempt_fut =
                establish_owned(self.opts.clone(), self.client_id.clone(), clean_start);
            tokio::pin!(attempt_fut);
            let result = loop {
                tokio::select! {
                    result = &mut attempt_fut => break result,
                    cmd = self.cmds.recv(), if self.cmds_open => match cmd {
                        Some(cmd) => {
                            if !self.command(cmd) {
                                return None;
                            }
                        }
                        None => self.cmds_open = false,
                    },
                    () = self.events.closed(), if !self.cmds_open => return None,
                }
            };
            self.state.tick(std::time::Instant::now());
            match result {
                Ok((mut link, connack)) => match self.state.on_connack(&connack, clean_start) {
                    Ok(connected) => {
                        tracing::debug!(
                            attempt,
                            session_present = connected.session_present,
                            "reconnected"
                        );
                        self.after_connack(&connected);
                        self.connected_at = Instant::now();
                        return Some(link);
                    }
                    Err(v) => {
                        let text = v.text.clone();
                        let _ = self.violation(&mut link, v).await;
                        let _ = self.events.send(Event::ConnectFailed { code: None, text });
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, attempt, "reconnect failed");
                    let code = match &e {
                        ClientError::Refused { code, .. } => Some(*code),
                        _ => None,
                    };
                    let _ = self.events.send(Event::ConnectFailed {
                        code,
                        text: e.to_string(),
                    });
                }
            }
        }
    }
}

/// Writes `bytes`, giving up after 1.5 times the keep alive (`ka`, none if zero): a server
/// that stops reading must not stop keep alive, so an expired write is a lost connection.
async fn write_bounded(conn: &mut Conn, bytes: bytes::Bytes, ka: Duration) -> io::Result<()> {
    if ka.is_zero() {
        return conn.write_all(bytes).await;
    }
    match tokio::time::timeout(ka * 3 / 2, conn.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the server did not take our bytes within 1.5 times the keep alive",
        )),
    }
}

/// [`establish`] over owned options, for a future that borrows nothing from the task.
async fn establish_owned(
    opts: ConnectOptions,
    client_id: String,
    clean_start: bool,
) -> Result<(Link, ConnAck), ClientError> {
    establish(&opts, &client_id, clean_start).await
}

/// The answer to an AUTH 0x18 from the server: AUTH 0x18 with the same method and the
/// handler's data [MQTT-4.12.0-3].
fn auth_answer(
    method: &str,
    handler: &crate::options::AuthHandler,
    auth: &linnet_proto::Auth,
) -> Result<linnet_proto::Auth, Violation> {
    if auth.reason_code != ReasonCode::CONTINUE_AUTHENTICATION {
        return Err(Violation {
            code: ReasonCode::PROTOCOL_ERROR,
            text: format!("unexpected AUTH {}", auth.reason_code),
        });
    }
    if auth.properties.authentication_method.as_deref() != Some(method) {
        return Err(Violation {
            code: ReasonCode::PROTOCOL_ERROR,
            text: "AUTH with a different authentication method".into(),
        });
    }
    let data = auth
        .properties
        .authentication_data
        .as_deref()
        .unwrap_or(&[]);
    let ours = (handler.0)(data).map_err(|text| Violation {
        code: ReasonCode::NOT_AUTHORIZED,
        text: format!("authentication handler gave up: {text}"),
    })?;
    let mut answer = linnet_proto::Auth::new(ReasonCode::CONTINUE_AUTHENTICATION);
    answer.properties.authentication_method = Some(method.into());
    answer.properties.authentication_data = Some(ours);
    Ok(answer)
}

/// The error every waiting call gets when the client ends after `error`.
fn copy_error(error: &ClientError) -> ClientError {
    match error {
        ClientError::Disconnected { code, text } => ClientError::Disconnected {
            code: *code,
            text: text.clone(),
        },
        ClientError::Protocol(text) => ClientError::Protocol(text.clone()),
        _ => ClientError::ConnectionLost,
    }
}
