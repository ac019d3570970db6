//! What `linnet pub`, `linnet sub` and `linnet rr` share: the connection flags of
//! mosquitto_pub / mosquitto_sub (`-h -p -i -I -u -P -k -V -c -x -d -D -L --ws`, the will),
//! `-D <command> <property> <value>` parsing into linnet-proto's property structs, `-L` URL
//! parsing, the exit codes and the error type the commands return, the `-F -v -N --pretty`
//! output of `sub` and `rr`, and how a command ends its session (DISCONNECT).

use std::num::{NonZeroU16, NonZeroU32};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use linnet_client::{
    Bytes, Client, ClientError, ConnectOptions, ConnectProperties, DisconnectProperties, LastWill,
    ProtocolVersion, PublishProperties, QoS, ReasonCode, SubscribeProperties, TopicName, Transport,
    WillProperties,
};

use crate::format::Output;

/// Exit codes of `pub`, `sub` and `rr` (also listed in each command's `--help` and the README).
pub(crate) mod exit {
    /// Everything worked.
    pub(crate) const OK: u8 = 0;
    /// Any other failure: a file that cannot be read, a protocol error.
    pub(crate) const OTHER: u8 = 1;
    /// Bad flags or values (clap uses 2 as well).
    pub(crate) const USAGE: u8 = 2;
    /// The server could not be reached (DNS, TCP or WebSocket handshake).
    pub(crate) const UNREACHABLE: u8 = 3;
    /// The server refused the connection (CONNACK with a failure code).
    pub(crate) const REFUSED: u8 = 4;
    /// `-W` ran out, or CONNACK did not come in time.
    pub(crate) const TIMEOUT: u8 = 5;
    /// The connection was lost or the server sent DISCONNECT.
    pub(crate) const LOST: u8 = 6;
    /// The server rejected a publish, subscribe or unsubscribe (failure reason code).
    pub(crate) const REJECTED: u8 = 7;
}

/// The exit code table, for `--help`.
pub(crate) const EXIT_CODES_HELP: &str = "Exit codes:
  0  success
  1  other error (unreadable file, protocol error)
  2  usage error (bad flag or value)
  3  cannot reach the server (DNS, TCP, WebSocket handshake)
  4  connection refused by the server (CONNACK reason code)
  5  timed out (-W, or no CONNACK within 10 s)
  6  connection lost, or DISCONNECT from the server
  7  publish / subscribe rejected by the server (reason code)";

/// A failed command: the message (without the program name) and the exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn other(message: impl Into<String>) -> Self {
        CliError {
            code: exit::OTHER,
            message: message.into(),
        }
    }

    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        CliError {
            code: exit::TIMEOUT,
            message: message.into(),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(error: ClientError) -> Self {
        let code = match &error {
            ClientError::Io { .. } => exit::UNREACHABLE,
            ClientError::Refused { .. } => exit::REFUSED,
            ClientError::Timeout(_) => exit::TIMEOUT,
            ClientError::Disconnected { .. }
            | ClientError::ConnectionLost
            | ClientError::Closed => exit::LOST,
            ClientError::Rejected { .. } => exit::REJECTED,
            ClientError::Invalid { .. } => exit::USAGE,
            _ => exit::OTHER,
        };
        CliError {
            code,
            message: error.to_string(),
        }
    }
}

/// Prints the error (unless `quiet`) as `linnet <command>: <message>` and turns the result
/// into the process exit code.
pub(crate) fn finish(command: &str, quiet: bool, result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            if !quiet {
                eprintln!("linnet {command}: {}", error.message);
            }
            ExitCode::from(error.code)
        }
    }
}

/// Sleeps until `deadline`, or forever without one (`-W` not given).
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Ends the session `result` came from with DISCONNECT (reason 0x00 and the `-D disconnect`
/// properties in MQTT 5.0). The command's own error matters more than the DISCONNECT's.
pub(crate) async fn disconnect_after(
    client: &Client,
    v5: bool,
    properties: DisconnectProperties,
    result: Result<(), CliError>,
) -> Result<(), CliError> {
    let sent = if v5 {
        client
            .disconnect_with(ReasonCode::NORMAL_DISCONNECTION, properties)
            .await
    } else {
        client.disconnect().await
    };
    result.and(sent.map_err(CliError::from))
}

/// The error for a SUBACK / UNSUBACK failure code.
pub(crate) fn refused(version: ProtocolVersion, code: ReasonCode) -> CliError {
    CliError::from(ClientError::Rejected {
        code: code.0,
        text: linnet_client::reason_text(version, code.0).to_owned(),
    })
}

/// How `linnet sub` and `linnet rr` print messages (`-F`, `-v`, `-N`, `--pretty`); an
/// invalid `-F` is a usage error.
pub(crate) fn message_output(
    format: Option<&str>,
    verbose: bool,
    no_eol: bool,
    pretty: bool,
) -> Result<Output, CliError> {
    if let Some(f) = format {
        crate::format::validate(f.as_bytes())
            .map_err(|e| CliError::usage(format!("-F {f:?}: {e}")))?;
    }
    Ok(Output {
        format: format.map(|f| f.as_bytes().to_vec()),
        verbose,
        eol: !no_eol,
        pretty,
    })
}

/// A current-thread runtime: the commands are one connection each.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::other(format!("cannot start the async runtime: {e}")))
}

/// The connection flags shared by `pub`, `sub` and `rr` (mosquitto's names).
#[derive(Debug, Args, Clone)]
pub(crate) struct ConnArgs {
    /// Host to connect to.
    #[arg(short = 'h', long = "host", value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// Port (default 1883; 8083 with --ws).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub(crate) port: Option<u16>,
    /// Connect with `mqtt://[user[:password]@]host[:port]/topic` or
    /// `ws://[user[:password]@]host[:port][/path]` (WebSocket; path default /mqtt).
    #[arg(short = 'L', long = "url", value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Use MQTT over WebSocket (path from --ws-path).
    #[arg(long = "ws")]
    pub(crate) ws: bool,
    /// WebSocket path for --ws.
    #[arg(long = "ws-path", value_name = "PATH", default_value = "/mqtt")]
    pub(crate) ws_path: String,
    /// Client identifier (default: a random `linnet-...` id).
    #[arg(short = 'i', long = "id", value_name = "ID")]
    pub(crate) id: Option<String>,
    /// Client identifier made of this prefix and the process id.
    #[arg(
        short = 'I',
        long = "id-prefix",
        value_name = "PREFIX",
        conflicts_with = "id"
    )]
    pub(crate) id_prefix: Option<String>,
    /// User name.
    #[arg(short = 'u', long = "username", value_name = "USER")]
    pub(crate) username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw", value_name = "PASSWORD")]
    pub(crate) password: Option<String>,
    /// Keep alive in seconds (0 turns it off).
    #[arg(
        short = 'k',
        long = "keepalive",
        value_name = "SECONDS",
        default_value_t = 60
    )]
    pub(crate) keepalive: u16,
    /// MQTT version: 31, 311 or 5 (also mqttv31, mqttv311, mqttv5).
    #[arg(short = 'V', long = "protocol-version", value_name = "VERSION", value_parser = parse_version)]
    pub(crate) version: Option<ProtocolVersion>,
    /// Disable clean session / clean start: keep the session (with -x for MQTT 5.0).
    #[arg(short = 'c', long = "disable-clean-session")]
    pub(crate) persistent: bool,
    /// Session expiry interval in seconds (MQTT 5.0); -1 or 4294967295 for never.
    #[arg(short = 'x', long = "session-expiry-interval", value_name = "SECONDS", value_parser = parse_expiry, allow_hyphen_values = true)]
    pub(crate) session_expiry: Option<u32>,
    /// Print debug messages (client library events) on stderr.
    #[arg(short = 'd', long = "debug")]
    pub(crate) debug: bool,
    /// Do not print error messages.
    #[arg(long = "quiet")]
    pub(crate) quiet: bool,
    /// MQTT 5.0 property: `-D COMMAND PROPERTY VALUE` (user-property takes NAME VALUE).
    /// Commands: connect, publish, subscribe, disconnect, will.
    #[arg(short = 'D', long = "property", num_args = 3..=4, value_names = ["COMMAND", "PROPERTY", "VALUE"], action = clap::ArgAction::Append)]
    pub(crate) properties: Vec<String>,
    /// Topic of the will (last will and testament).
    #[arg(long = "will-topic", value_name = "TOPIC")]
    pub(crate) will_topic: Option<String>,
    /// Payload of the will.
    #[arg(long = "will-payload", value_name = "PAYLOAD", requires = "will_topic")]
    pub(crate) will_payload: Option<String>,
    /// QoS of the will.
    #[arg(long = "will-qos", value_name = "QOS", value_parser = parse_qos, requires = "will_topic")]
    pub(crate) will_qos: Option<QoS>,
    /// Retain the will.
    #[arg(long = "will-retain", requires = "will_topic")]
    pub(crate) will_retain: bool,
}

pub(crate) fn parse_qos(s: &str) -> Result<QoS, String> {
    match s {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" => Ok(QoS::ExactlyOnce),
        _ => Err(format!("QoS must be 0, 1 or 2, not {s:?}")),
    }
}

pub(crate) fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "31" | "mqttv31" => Ok(ProtocolVersion::V3_1),
        "311" | "mqttv311" => Ok(ProtocolVersion::V3_1_1),
        "5" | "mqttv5" => Ok(ProtocolVersion::V5),
        _ => Err(format!("version must be 31, 311 or 5, not {s:?}")),
    }
}

fn parse_expiry(s: &str) -> Result<u32, String> {
    match s {
        "-1" | "∞" => Ok(u32::MAX),
        _ => s
            .parse::<u32>()
            .map_err(|_| format!("expected seconds from 0 to 4294967295 or -1, not {s:?}")),
    }
}

/// A `-L` URL taken apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) websocket: bool,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    /// mqtt://: the topic (path without its '/'); ws://: the WebSocket path.
    pub(crate) path: Option<String>,
}

/// `mqtt://[user[:pass]@]host[:port][/topic]` or `ws://[user[:pass]@]host[:port][/path]`.
pub(crate) fn parse_url(url: &str) -> Result<Url, CliError> {
    let bad = |why: &str| CliError::usage(format!("-L {url}: {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected mqtt://host[:port]/topic or ws://host[:port]/path"))?;
    let websocket = match scheme.to_ascii_lowercase().as_str() {
        "mqtt" | "tcp" => false,
        "ws" => true,
        "mqtts" | "wss" => return Err(bad("TLS is not supported yet")),
        other => return Err(bad(&format!("unknown scheme {other:?}"))),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6.find(']').ok_or_else(|| bad("missing ']'"))?;
        let after = &v6[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(bad("unexpected text after ']'")),
        };
        (&v6[..end], port)
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
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| bad(&format!("bad port {p:?}")))?,
        ),
        None => None,
    };
    let (username, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (Some(info.to_owned()), None),
        },
        None => (None, None),
    };
    let path = match path {
        Some(p) if websocket => Some(p.to_owned()),
        Some(p) if p.len() > 1 => Some(p[1..].to_owned()),
        _ => None,
    };
    Ok(Url {
        websocket,
        username,
        password,
        host: host.to_owned(),
        port,
        path,
    })
}

/// The v5 properties given with `-D`, one struct per packet.
#[derive(Clone, Debug, Default)]
pub(crate) struct V5Properties {
    pub(crate) connect: ConnectProperties,
    pub(crate) publish: PublishProperties,
    pub(crate) will: WillProperties,
    pub(crate) subscribe: SubscribeProperties,
    pub(crate) disconnect: DisconnectProperties,
    /// Whether any -D was given.
    pub(crate) any: bool,
}

/// Which `-D` commands a tool takes.
pub(crate) const PUB_COMMANDS: &[&str] = &["connect", "publish", "disconnect", "will"];
pub(crate) const SUB_COMMANDS: &[&str] = &["connect", "subscribe", "disconnect", "will"];
pub(crate) const RR_COMMANDS: &[&str] = &["connect", "publish", "subscribe", "disconnect", "will"];

fn num<T: std::str::FromStr>(name: &str, value: &str, range: &str) -> Result<T, CliError> {
    value.parse::<T>().map_err(|_| {
        CliError::usage(format!(
            "-D: invalid value {value:?} for {name} (expected {range})"
        ))
    })
}

fn flag(name: &str, value: &str) -> Result<bool, CliError> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(CliError::usage(format!(
            "-D: invalid value {value:?} for {name} (expected 0 or 1)"
        ))),
    }
}

fn nonzero_u16(name: &str, value: &str) -> Result<NonZeroU16, CliError> {
    num(name, value, "a number from 1 to 65535")
}

fn nonzero_u32(name: &str, value: &str) -> Result<NonZeroU32, CliError> {
    num(name, value, "a number from 1 to 4294967295")
}

fn topic_name(name: &str, value: &str) -> Result<TopicName, CliError> {
    TopicName::new(value.to_owned())
        .map_err(|e| CliError::usage(format!("-D: invalid {name} {value:?}: {e}")))
}

/// The commands `-D` may name in any tool (each tool takes some of them).
const ALL_COMMANDS: &[&str] = &[
    "connect",
    "publish",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "will",
    "auth",
];

/// Splits the values of every `-D` (clap hands them over as one list; each `-D` took 3 or 4)
/// back into one group per `-D`: `user-property` takes a name and a value, the rest one value.
pub(crate) fn group_properties(flat: &[String]) -> Result<Vec<Vec<String>>, CliError> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < flat.len() {
        let (command, name) = (&flat[i], flat.get(i + 1));
        let Some(name) = name.filter(|_| i + 2 < flat.len()) else {
            return Err(CliError::usage(format!(
                "-D {command}: expected -D COMMAND PROPERTY VALUE"
            )));
        };
        let take = if name == "user-property" { 4 } else { 3 };
        if i + take > flat.len() {
            return Err(CliError::usage(format!(
                "-D {command} user-property takes a name and a value"
            )));
        }
        if take == 3
            && flat
                .get(i + 3)
                .is_some_and(|next| !ALL_COMMANDS.contains(&next.as_str()))
        {
            return Err(CliError::usage(format!(
                "-D {command} {name} takes one value"
            )));
        }
        groups.push(flat[i..i + take].to_vec());
        i += take;
    }
    Ok(groups)
}

/// Parses every `-D` (already grouped) for a tool taking `allowed` commands.
pub(crate) fn parse_properties(
    given: &[Vec<String>],
    allowed: &[&str],
) -> Result<V5Properties, CliError> {
    let mut p = V5Properties {
        any: !given.is_empty(),
        ..V5Properties::default()
    };
    for d in given {
        let (command, name) = (d[0].as_str(), d[1].as_str());
        let is_user = name == "user-property";
        let wanted = if is_user { 4 } else { 3 };
        if d.len() != wanted {
            return Err(CliError::usage(if is_user {
                format!("-D {command} user-property takes a name and a value")
            } else {
                format!("-D {command} {name} takes one value")
            }));
        }
        if !allowed.contains(&command) {
            return Err(CliError::usage(format!(
                "-D: unknown or unsupported command {command:?} (use one of: {})",
                allowed.join(", ")
            )));
        }
        let value = d[2].as_str();
        let not_allowed = || {
            CliError::usage(format!(
                "-D: property {name} is not allowed in {command} (or unknown)"
            ))
        };
        match command {
            "connect" => {
                let c = &mut p.connect;
                match name {
                    "session-expiry-interval" => {
                        c.session_expiry_interval =
                            Some(num(name, value, "a number from 0 to 4294967295")?)
                    }
                    "receive-maximum" => c.receive_maximum = Some(nonzero_u16(name, value)?),
                    "maximum-packet-size" => {
                        c.maximum_packet_size = Some(nonzero_u32(name, value)?)
                    }
                    "topic-alias-maximum" => {
                        c.topic_alias_maximum = Some(num(name, value, "a number from 0 to 65535")?)
                    }
                    "request-response-information" => {
                        c.request_response_information = Some(flag(name, value)?)
                    }
                    "request-problem-information" => {
                        c.request_problem_information = Some(flag(name, value)?)
                    }
                    "authentication-method" => c.authentication_method = Some(value.into()),
                    "authentication-data" => {
                        c.authentication_data = Some(Bytes::copy_from_slice(value.as_bytes()))
                    }
                    "user-property" => c.user_properties.push((value.into(), d[3].as_str().into())),
                    _ => return Err(not_allowed()),
                }
            }
            "publish" => {
                let m = &mut p.publish;
                match name {
                    "payload-format-indicator" => {
                        m.payload_format_indicator = Some(flag(name, value)?)
                    }
                    "message-expiry-interval" => {
                        m.message_expiry_interval =
                            Some(num(name, value, "a number from 0 to 4294967295")?)
                    }
                    "topic-alias" => m.topic_alias = Some(nonzero_u16(name, value)?),
                    "content-type" => m.content_type = Some(value.into()),
                    "response-topic" => m.response_topic = Some(topic_name(name, value)?),
                    "correlation-data" => {
                        m.correlation_data = Some(Bytes::copy_from_slice(value.as_bytes()))
                    }
                    "user-property" => m.user_properties.push((value.into(), d[3].as_str().into())),
                    _ => return Err(not_allowed()),
                }
            }
            "will" => {
                let w = &mut p.will;
                match name {
                    "will-delay-interval" => {
                        w.will_delay_interval =
                            Some(num(name, value, "a number from 0 to 4294967295")?)
                    }
                    "payload-format-indicator" => {
                        w.payload_format_indicator = Some(flag(name, value)?)
                    }
                    "message-expiry-interval" => {
                        w.message_expiry_interval =
                            Some(num(name, value, "a number from 0 to 4294967295")?)
                    }
                    "content-type" => w.content_type = Some(value.into()),
                    "response-topic" => w.response_topic = Some(topic_name(name, value)?),
                    "correlation-data" => {
                        w.correlation_data = Some(Bytes::copy_from_slice(value.as_bytes()))
                    }
                    "user-property" => w.user_properties.push((value.into(), d[3].as_str().into())),
                    _ => return Err(not_allowed()),
                }
            }
            "subscribe" => {
                let s = &mut p.subscribe;
                match name {
                    "subscription-identifier" => {
                        s.subscription_identifier = Some(num(
                            name,
                            value,
                            "a number from 1 to 268435455",
                        )
                        .and_then(|v: NonZeroU32| {
                            if v.get() > 268_435_455 {
                                Err(CliError::usage(format!(
                                    "-D: invalid value {value:?} for {name} (expected a number from 1 to 268435455)"
                                )))
                            } else {
                                Ok(v)
                            }
                        })?)
                    }
                    "user-property" => s.user_properties.push((value.into(), d[3].as_str().into())),
                    _ => return Err(not_allowed()),
                }
            }
            "disconnect" => {
                let s = &mut p.disconnect;
                match name {
                    "session-expiry-interval" => {
                        s.session_expiry_interval =
                            Some(num(name, value, "a number from 0 to 4294967295")?)
                    }
                    "reason-string" => s.reason_string = Some(value.into()),
                    "user-property" => s.user_properties.push((value.into(), d[3].as_str().into())),
                    _ => return Err(not_allowed()),
                }
            }
            _ => return Err(not_allowed()),
        }
    }
    Ok(p)
}

/// `-d` lines on stderr in mosquitto's words ("Client ID sending CONNECT", "Client ID
/// received SUBACK"...), so scripts and tests can wait for a step.
#[derive(Clone, Debug)]
pub(crate) struct DebugLog {
    pub(crate) on: bool,
    pub(crate) client_id: String,
}

impl DebugLog {
    pub(crate) fn log(&self, what: impl std::fmt::Display) {
        if self.on {
            eprintln!("Client {} {what}", self.client_id);
        }
    }

    /// The line for a received PUBLISH.
    pub(crate) fn received(&self, msg: &linnet_client::Message) {
        if self.on {
            self.log(format_args!(
                "received PUBLISH (d{}, q{}, r{}, m{}, '{}', ... ({} bytes))",
                u8::from(msg.dup),
                msg.qos as u8,
                u8::from(msg.retain),
                msg.packet_id.unwrap_or(0),
                msg.topic,
                msg.payload.len()
            ));
        }
    }
}

/// Connection settings resolved from the flags (and -L).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) options: ConnectOptions,
    pub(crate) version: ProtocolVersion,
    pub(crate) props: V5Properties,
    /// The topic named by an `mqtt://host/topic` URL.
    pub(crate) url_topic: Option<String>,
    pub(crate) debug: DebugLog,
}

impl ConnArgs {
    /// Builds the client options; `default_version` is 3.1.1 for pub / sub and 5 for rr,
    /// like Mosquitto's tools.
    pub(crate) fn resolve(
        &self,
        default_version: ProtocolVersion,
        commands: &[&str],
    ) -> Result<Resolved, CliError> {
        let version = self.version.unwrap_or(default_version);
        let props = parse_properties(&group_properties(&self.properties)?, commands)?;
        if props.any && version != ProtocolVersion::V5 {
            return Err(CliError::usage(
                "-D properties need MQTT 5.0 (-V 5)".to_owned(),
            ));
        }
        let url = self.url.as_deref().map(parse_url).transpose()?;
        let websocket = self.ws || url.as_ref().is_some_and(|u| u.websocket);
        let host = match (&url, &self.host) {
            (Some(u), _) => u.host.clone(),
            (None, Some(h)) => h.clone(),
            (None, None) => "localhost".to_owned(),
        };
        let port = url
            .as_ref()
            .and_then(|u| u.port)
            .or(self.port)
            .unwrap_or(if websocket { 8083 } else { 1883 });
        let mut options = ConnectOptions::new(host, port)
            .version(version)
            .keep_alive(Duration::from_secs(u64::from(self.keepalive)))
            .clean_start(!self.persistent);
        if websocket {
            let path = match &url {
                Some(Url {
                    websocket: true,
                    path: Some(p),
                    ..
                }) => p.clone(),
                _ => self.ws_path.clone(),
            };
            options = options.transport(Transport::WebSocket { path });
        }
        if let Some(id) = &self.id {
            options = options.client_id(id.clone());
        } else if let Some(prefix) = &self.id_prefix {
            options = options.client_id(format!("{prefix}{}", std::process::id()));
        }
        let username = url
            .as_ref()
            .and_then(|u| u.username.clone())
            .or_else(|| self.username.clone());
        let password = url
            .as_ref()
            .and_then(|u| u.password.clone())
            .or_else(|| self.password.clone());
        match (username, password) {
            (Some(user), pass) => {
                options = options.credentials(user, pass.map(|p| Bytes::from(p.into_bytes())))
            }
            (None, Some(_)) => {
                return Err(CliError::usage("-P needs a user name (-u)".to_owned()));
            }
            (None, None) => {}
        }
        let forever = self.session_expiry == Some(u32::MAX)
            || (self.persistent && version == ProtocolVersion::V5 && self.session_expiry.is_none());
        if (self.persistent || forever) && self.id.is_none() {
            return Err(CliError::usage(
                "-c (or a session that never expires) needs a client id (-i)".to_owned(),
            ));
        }
        let mut connect = props.connect.clone();
        if let Some(secs) = self.session_expiry {
            if version != ProtocolVersion::V5 {
                return Err(CliError::usage("-x needs MQTT 5.0 (-V 5)".to_owned()));
            }
            connect.session_expiry_interval = Some(secs);
        } else if self.persistent
            && version == ProtocolVersion::V5
            && connect.session_expiry_interval.is_none()
        {
            // Like Mosquitto: -c without -x keeps the session forever.
            connect.session_expiry_interval = Some(u32::MAX);
        }
        options = options.connect_properties(connect);
        if let Some(topic) = &self.will_topic {
            let mut will = LastWill::new(
                topic.clone(),
                Bytes::from(self.will_payload.clone().unwrap_or_default().into_bytes()),
            );
            will.qos = self.will_qos.unwrap_or(QoS::AtMostOnce);
            will.retain = self.will_retain;
            will.properties = props.will.clone();
            options = options.will(will);
        }
        let url_topic = url.filter(|u| !u.websocket).and_then(|u| u.path);
        let debug = DebugLog {
            on: self.debug,
            client_id: options.client_id_str().to_owned(),
        };
        Ok(Resolved {
            options,
            version,
            props,
            url_topic,
            debug,
        })
    }

    /// `-d`: library debug events on stderr.
    pub(crate) fn init_debug(&self) {
        if self.debug {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "linnet_client=debug,linnet=debug",
                ))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .try_init();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn urls() {
        let u = parse_url("mqtt://user:pw@example.org:1999/a/b").unwrap();
        assert_eq!(
            u,
            Url {
                websocket: false,
                username: Some("user".into()),
                password: Some("pw".into()),
                host: "example.org".into(),
                port: Some(1999),
                path: Some("a/b".into()),
            }
        );
        let u = parse_url("mqtt://host").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path), ("host", None, None));
        let u = parse_url("ws://[::1]:8083/mqtt").unwrap();
        assert!(u.websocket);
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(8083)));
        assert_eq!(u.path.as_deref(), Some("/mqtt"));
        let u = parse_url("mqtt://me@h/t").unwrap();
        assert_eq!((u.username.as_deref(), u.password), (Some("me"), None));
        for bad in [
            "host:1883",
            "http://h",
            "mqtt://",
            "mqtt://h:99999/t",
            "mqtts://h/t",
            "mqtt://[::1/t",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.code, exit::USAGE, "{bad}");
            assert!(e.message.contains(bad), "{}", e.message);
        }
    }

    #[test]
    fn properties() {
        let p = parse_properties(
            &[
                d(&["publish", "user-property", "k", "v"]),
                d(&["publish", "user-property", "k", "w"]),
                d(&["publish", "content-type", "text/plain"]),
                d(&["publish", "response-topic", "re/ply"]),
                d(&["publish", "correlation-data", "abc"]),
                d(&["publish", "message-expiry-interval", "60"]),
                d(&["publish", "payload-format-indicator", "1"]),
                d(&["connect", "session-expiry-interval", "30"]),
                d(&["connect", "receive-maximum", "10"]),
                d(&["will", "will-delay-interval", "5"]),
                d(&["disconnect", "reason-string", "bye"]),
            ],
            PUB_COMMANDS,
        )
        .unwrap();
        assert!(p.any);
        assert_eq!(p.publish.user_properties.len(), 2);
        assert_eq!(p.publish.content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            p.publish.response_topic.as_ref().map(|t| t.as_str()),
            Some("re/ply")
        );
        assert_eq!(p.publish.correlation_data.as_deref(), Some(&b"abc"[..]));
        assert_eq!(p.publish.message_expiry_interval, Some(60));
        assert_eq!(p.publish.payload_format_indicator, Some(true));
        assert_eq!(p.connect.session_expiry_interval, Some(30));
        assert_eq!(p.connect.receive_maximum.map(|v| v.get()), Some(10));
        assert_eq!(p.will.will_delay_interval, Some(5));
        assert_eq!(p.disconnect.reason_string.as_deref(), Some("bye"));

        let s = parse_properties(
            &[d(&["subscribe", "subscription-identifier", "7"])],
            SUB_COMMANDS,
        )
        .unwrap();
        assert_eq!(
            s.subscribe.subscription_identifier.map(|v| v.get()),
            Some(7)
        );
    }

    #[test]
    fn bad_properties() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["publish", "user-property", "k"],
                "takes a name and a value",
            ),
            (&["publish", "content-type", "a", "b"], "takes one value"),
            (
                &["publish", "subscription-identifier", "1"],
                "not allowed in publish",
            ),
            (
                &["publish", "no-such-property", "1"],
                "not allowed in publish",
            ),
            (
                &["publish", "message-expiry-interval", "-5"],
                "invalid value \"-5\"",
            ),
            (
                &["publish", "payload-format-indicator", "2"],
                "expected 0 or 1",
            ),
            (
                &["publish", "response-topic", "a/#"],
                "invalid response-topic",
            ),
            (
                &["subscribe", "user-property", "k", "v"],
                "unknown or unsupported command",
            ),
            (
                &["auth", "reason-string", "x"],
                "unknown or unsupported command",
            ),
            (&["connect", "receive-maximum", "0"], "from 1 to 65535"),
        ];
        for (items, want) in cases {
            let e = parse_properties(&[d(items)], PUB_COMMANDS).unwrap_err();
            assert_eq!(e.code, exit::USAGE);
            assert!(e.message.contains(want), "{items:?}: {}", e.message);
        }
        let e = parse_properties(
            &[d(&["subscribe", "subscription-identifier", "268435456"])],
            SUB_COMMANDS,
        )
        .unwrap_err();
        assert!(e.message.contains("268435455"), "{}", e.message);
    }

    #[test]
    fn grouping_of_d_values() {
        let flat = d(&[
            "publish",
            "user-property",
            "k",
            "v",
            "publish",
            "content-type",
            "t",
            "connect",
            "user-property",
            "a",
            "b",
        ]);
        let groups = group_properties(&flat).unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[1], d(&["publish", "content-type", "t"]));
        let e = group_properties(&d(&["publish", "content-type", "a", "b"])).unwrap_err();
        assert!(e.message.contains("takes one value"), "{}", e.message);
        let e = group_properties(&d(&[
            "publish",
            "user-property",
            "k",
            "publish",
            "content-type",
            "t",
        ]))
        .unwrap_err();
        assert_eq!(e.code, exit::USAGE);
    }

    #[test]
    fn client_errors_map_to_exit_codes() {
        let refused = CliError::from(ClientError::Refused {
            code: 0x87,
            text: "not authorized".into(),
        });
        assert_eq!(refused.code, exit::REFUSED);
        assert_eq!(refused.message, "connection refused: not authorized (0x87)");
        assert_eq!(CliError::from(ClientError::ConnectionLost).code, exit::LOST);
        assert_eq!(
            CliError::from(ClientError::Timeout("CONNACK")).code,
            exit::TIMEOUT
        );
        let io = ClientError::Io {
            addr: "h:1".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(CliError::from(io).code, exit::UNREACHABLE);
    }
}
