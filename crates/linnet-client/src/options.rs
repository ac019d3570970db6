//! Connection options: [`ConnectOptions`] (a builder that documents its defaults), the
//! [`Transport`], the [`LastWill`], the reconnect [`Backoff`], and URL parsing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use linnet_proto::{ConnectProperties, ProtocolVersion, QoS, WillProperties};

use crate::error::ClientError;
use crate::rand;

/// How bytes reach the server. TLS and WSS will join here (the seam is this enum and
/// `transport::open`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// MQTT over plain TCP.
    Tcp,
    /// MQTT over WebSocket (binary frames, subprotocol `mqtt`) at `path` (usually "/mqtt").
    WebSocket { path: String },
}

/// The Will Message the server publishes if the connection ends without a normal DISCONNECT.
#[derive(Clone, Debug)]
pub struct LastWill {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: WillProperties,
}

impl LastWill {
    /// A QoS 0, non-retained will without properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: WillProperties::default(),
        }
    }
}

/// Reconnect delays: attempt `n` (from 0) waits `min(max, initial * 2^n)`, of which the first
/// half is fixed and the second half random ("equal jitter"): clients that lost the same server
/// do not come back in lock step, and none comes back sooner than half the delay.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 100 ms doubling up to 30 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before reconnect attempt `attempt` (0 = the first one).
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self.max.max(Duration::from_millis(1));
        let exp = self
            .initial
            .checked_mul(1u32 << attempt.min(20))
            .unwrap_or(cap)
            .min(cap);
        let half = exp / 2;
        let jitter_range = exp - half;
        let nanos = jitter_range.as_nanos() as u64;
        let jitter = if nanos == 0 {
            0
        } else {
            rand::next_u64() % (nanos + 1)
        };
        half + Duration::from_nanos(jitter)
    }
}

/// Answers the server's challenges in MQTT 5.0 enhanced authentication (section 4.12): given
/// the server's Authentication Data (empty if none), returns the client's next data, or an
/// error text to give up (the client then ends the connection with DISCONNECT 0x87).
#[derive(Clone)]
pub struct AuthHandler(pub(crate) Arc<AuthFn>);

/// The function inside an [`AuthHandler`].
type AuthFn = dyn Fn(&[u8]) -> Result<Bytes, String> + Send + Sync;

impl fmt::Debug for AuthHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthHandler(..)")
    }
}

/// Everything about how to connect. Defaults (from [`ConnectOptions::new`]): a random client
/// id `linnet-<12 hex>`, MQTT 5.0, keep alive 60 s, clean start, TCP, no reconnect, an
/// offline queue of 1000 messages, automatic acknowledgement, a 10 s connect timeout.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) client_id: String,
    pub(crate) version: ProtocolVersion,
    pub(crate) keep_alive: Duration,
    pub(crate) clean_start: bool,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
    pub(crate) will: Option<LastWill>,
    pub(crate) properties: ConnectProperties,
    pub(crate) transport: Transport,
    pub(crate) reconnect: Option<Backoff>,
    pub(crate) offline_queue: usize,
    pub(crate) manual_ack: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) url_topic: Option<String>,
    pub(crate) auth: Option<AuthHandler>,
}

impl ConnectOptions {
    /// Options for `host:port` with the defaults listed on the type.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            client_id: rand::client_id(),
            version: ProtocolVersion::V5,
            keep_alive: Duration::from_secs(60),
            clean_start: true,
            username: None,
            password: None,
            will: None,
            properties: ConnectProperties::default(),
            transport: Transport::Tcp,
            reconnect: None,
            offline_queue: 1000,
            manual_ack: false,
            connect_timeout: Duration::from_secs(10),
            url_topic: None,
            auth: None,
        }
    }

    /// Parses `mqtt://[user[:pass]@]host[:port][/topic]` (port 1883) or
    /// `ws://[user[:pass]@]host[:port][/path]` (port 8083, path "/mqtt"). For `mqtt://` the
    /// path (without its leading '/') is kept as [`ConnectOptions::url_topic`].
    pub fn from_url(url: &str) -> Result<Self, ClientError> {
        let bad = |detail: &str| ClientError::invalid("url", format!("{url}: {detail}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected mqtt://host[:port] or ws://host[:port]/path"))?;
        let ws = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => false,
            "ws" => true,
            other => return Err(bad(&format!("unsupported scheme \"{other}\""))),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
            // [v6]:port
            let end = stripped.find(']').ok_or_else(|| bad("unclosed '['"))?;
            let host = &stripped[..end];
            let after = &stripped[end + 1..];
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("junk after ']'")),
            };
            (host, port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| bad("bad port"))?,
            None if ws => 8083,
            None => 1883,
        };
        let mut opts = Self::new(host, port);
        if let Some(info) = userinfo {
            let (user, pass) = match info.split_once(':') {
                Some((u, p)) => (u, Some(Bytes::copy_from_slice(p.as_bytes()))),
                None => (info, None),
            };
            opts = opts.credentials(user, pass);
        }
        if ws {
            let path = if path.is_empty() { "/mqtt" } else { path };
            opts = opts.transport(Transport::WebSocket { path: path.into() });
        } else if path.len() > 1 {
            opts.url_topic = Some(path[1..].to_owned());
        }
        Ok(opts)
    }

    /// The topic named by the path of an `mqtt://host/topic` URL.
    pub fn url_topic(&self) -> Option<&str> {
        self.url_topic.as_deref()
    }

    /// The client identifier; "" asks the server to assign one.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// The protocol version (3.1, 3.1.1 or 5.0).
    pub fn version(mut self, v: ProtocolVersion) -> Self {
        self.version = v;
        self
    }

    /// Keep alive, in whole seconds on the wire (0 turns it off; at most 65535 s).
    pub fn keep_alive(mut self, d: Duration) -> Self {
        self.keep_alive = d;
        self
    }

    /// Clean start (clean session in 3.1.1) for the first connection. Reconnects always ask
    /// to resume the session (clean start 0).
    pub fn clean_start(mut self, yes: bool) -> Self {
        self.clean_start = yes;
        self
    }

    /// User name and optional password.
    pub fn credentials(mut self, user: impl Into<String>, password: Option<Bytes>) -> Self {
        self.username = Some(user.into());
        self.password = password;
        self
    }

    /// The Will Message.
    pub fn will(mut self, will: LastWill) -> Self {
        self.will = Some(will);
        self
    }

    /// The v5 Session Expiry Interval in seconds (0: the session ends with the connection).
    pub fn session_expiry(mut self, secs: u32) -> Self {
        self.properties.session_expiry_interval = Some(secs);
        self
    }

    /// All v5 CONNECT properties at once (replaces any session expiry set before).
    pub fn connect_properties(mut self, p: ConnectProperties) -> Self {
        self.properties = p;
        self
    }

    /// MQTT 5.0 enhanced authentication: CONNECT carries Authentication Method `method` and
    /// `initial_data`; each AUTH 0x18 (continue) from the server is answered with what
    /// `respond` returns for the server's data, with the same method [MQTT-4.12.0-3]. Also
    /// used by [`Client::reauthenticate`](crate::Client::reauthenticate).
    pub fn authentication(
        mut self,
        method: impl Into<String>,
        initial_data: Option<Bytes>,
        respond: impl Fn(&[u8]) -> Result<Bytes, String> + Send + Sync + 'static,
    ) -> Self {
        self.properties.authentication_method = Some(method.into().into());
        self.properties.authentication_data = initial_data;
        self.auth = Some(AuthHandler(Arc::new(respond)));
        self
    }

    /// The Authentication Method, if enhanced authentication is configured (v5).
    pub(crate) fn auth_method(&self) -> Option<&str> {
        if !self.version.is_v5() {
            return None;
        }
        self.properties.authentication_method.as_deref()
    }

    /// TCP or WebSocket.
    pub fn transport(mut self, t: Transport) -> Self {
        self.transport = t;
        self
    }

    /// Reconnect after a lost connection with these delays (`None`: the client ends instead).
    pub fn reconnect(mut self, b: Option<Backoff>) -> Self {
        self.reconnect = b;
        self
    }

    /// The number of publishes that may wait while the client is disconnected; a publish that
    /// finds the queue full fails with [`ClientError::QueueFull`].
    pub fn offline_queue(mut self, max_messages: usize) -> Self {
        self.offline_queue = max_messages;
        self
    }

    /// Acknowledge received QoS 1/2 messages only when the application calls
    /// [`Client::ack`](crate::Client::ack).
    pub fn manual_ack(mut self, yes: bool) -> Self {
        self.manual_ack = yes;
        self
    }

    /// How long opening the transport plus CONNECT / CONNACK may take.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn client_id_str(&self) -> &str {
        &self.client_id
    }

    /// The protocol version these options connect with.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// Keep alive in seconds as sent in CONNECT.
    pub(crate) fn keep_alive_secs(&self) -> u16 {
        self.keep_alive.as_secs().min(u64::from(u16::MAX)) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let o = ConnectOptions::from_url("mqtt://user:pw@example.com:1999/a/b").unwrap();
        assert_eq!((o.host(), o.port()), ("example.com", 1999));
        assert_eq!(o.url_topic(), Some("a/b"));
        assert_eq!(o.username.as_deref(), Some("user"));
        assert_eq!(o.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(o.transport, Transport::Tcp);

        let o = ConnectOptions::from_url("mqtt://localhost").unwrap();
        assert_eq!(
            (o.host(), o.port(), o.url_topic()),
            ("localhost", 1883, None)
        );

        let o = ConnectOptions::from_url("ws://h").unwrap();
        assert_eq!(o.port(), 8083);
        assert_eq!(
            o.transport,
            Transport::WebSocket {
                path: "/mqtt".into()
            }
        );
        let o = ConnectOptions::from_url("ws://h:9001/ws").unwrap();
        assert_eq!(o.transport, Transport::WebSocket { path: "/ws".into() });
        let o = ConnectOptions::from_url("mqtt://[::1]:1884").unwrap();
        assert_eq!((o.host(), o.port()), ("::1", 1884));

        assert!(ConnectOptions::from_url("http://h").is_err());
        assert!(ConnectOptions::from_url("mqtt://h:99999").is_err());
        assert!(ConnectOptions::from_url("h:1883").is_err());
        assert!(ConnectOptions::from_url("mqtt://:1").is_err());
    }

    #[test]
    fn defaults_and_random_ids() {
        let a = ConnectOptions::new("h", 1);
        let b = ConnectOptions::new("h", 1);
        assert!(a.client_id_str().starts_with("linnet-"));
        assert_eq!(a.client_id_str().len(), "linnet-".len() + 12);
        assert_ne!(a.client_id_str(), b.client_id_str());
        assert_eq!(a.keep_alive_secs(), 60);
        assert_eq!(a.version, ProtocolVersion::V5);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 0..30 {
            let d = b.delay(attempt);
            let full = (Duration::from_millis(100) * (1u32 << attempt.min(20)))
                .min(Duration::from_secs(1));
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?} vs {full:?}");
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| b.delay(5)).collect();
        assert!(spread.len() > 1, "jitter varies");
    }
}
