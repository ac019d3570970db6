//! `linnet sub`: mosquitto_sub's flags on linnet-client. Subscribes to every `-t` filter in
//! one SUBSCRIBE, prints each message as `format.rs` renders it (payload, `-v` or `-F`),
//! and ends after `-C` messages, after `-W` seconds, on the first non-retained message with
//! `--retained-only`, at once with `-E`, or on Ctrl-C / SIGTERM.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use linnet_client::{
    Client, ClientError, Event, Message, ProtocolVersion, QoS, SubscriptionOptions, TopicFilter,
};

use crate::client_args::{self, exit, finish, CliError, ConnArgs, SUB_COMMANDS};
use crate::format::{FormatMessage, Output, Timestamp};

pub(crate) const AFTER_HELP: &str = "Examples:
  linnet sub -t 'sensors/#' -v
  linnet sub -t 'sensors/#' -C 3 -F '%t %p'
  linnet sub -t 'sensors/#' -W 10 -F '@Y-@m-@dT@H:@M:@S %t %q %r %p'
  linnet sub -t 'jobs/#' -V 5 -F '%j' --pretty
  linnet sub -t '#' --retained-only --remove-retained      # clear every retained message
  linnet sub -t 'a/#' -T 'a/noisy/#' -R                    # skip a subtree and stale messages
  linnet sub -c -i keeper -q 1 -t work -E                  # create a persistent session, exit
  linnet sub -L mqtt://broker.local/sensors/1

-F: %t topic  %p payload  %x/%X payload in hex  %l length  %q QoS  %r retain  %m message id
    %I ISO-8601 time  %U Unix time  %j/%J JSON (payload quoted / as JSON)  %% a '%'
    MQTT 5.0: %A topic alias  %C content type  %D correlation data  %E message expiry
    %F payload format  %P user properties  %R response topic  %S subscription identifier
    @Y @m @d @H @M @S @z @s... strftime fields (UTC), @N nanoseconds, @@ an '@'
    \\n \\t \\r \\0 \\e \\a \\v \\\\ escapes; %-10t %010l %.5t: flags, width, precision
    The output is byte for byte mosquitto_sub 2.0's (time fields in UTC).

Defaults as mosquitto_sub: host localhost, port 1883 (8083 with --ws), MQTT 3.1.1, QoS 0.
-h is the host; help is --help only. Unlike mosquitto_sub, a lost connection ends the
command (exit 6) unless --reconnect is given.";

/// `linnet sub` flags.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long = "topic", value_name = "FILTER")]
    topics: Vec<String>,
    /// Do not print messages on topics matching this filter (repeatable).
    #[arg(short = 'T', long = "filter-out", value_name = "FILTER")]
    filter_out: Vec<String>,
    /// Unsubscribe from this filter after connecting (repeatable; for persistent sessions).
    #[arg(short = 'U', long = "unsubscribe", value_name = "FILTER")]
    unsubscribe: Vec<String>,
    /// QoS of the subscriptions.
    #[arg(short = 'q', long = "qos", value_name = "QOS", value_parser = client_args::parse_qos, default_value = "0")]
    qos: QoS,
    /// Print the topic and the payload.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Exit after COUNT messages.
    #[arg(short = 'C', long = "count", value_name = "COUNT")]
    count: Option<u64>,
    /// Exit (code 5) when SECONDS have passed since connecting.
    #[arg(short = 'W', long = "timeout", value_name = "SECONDS")]
    timeout: Option<u32>,
    /// Do not print stale (retained) messages.
    #[arg(short = 'R', long = "no-stale")]
    no_stale: bool,
    /// Print only retained messages; exit at the first message that is not retained.
    #[arg(long = "retained-only")]
    retained_only: bool,
    /// Clear each retained message received (publish an empty retained message to its topic).
    #[arg(long = "remove-retained")]
    remove_retained: bool,
    /// Do not add a newline after each message.
    #[arg(short = 'N', long = "no-eol")]
    no_eol: bool,
    /// Exit once the subscriptions are acknowledged.
    #[arg(short = 'E', long = "exit-after-subscribe")]
    exit_after_subscribe: bool,
    /// Output format (see below).
    #[arg(
        short = 'F',
        long = "format",
        value_name = "FORMAT",
        allow_hyphen_values = true
    )]
    format: Option<String>,
    /// Indented JSON for %j / %J.
    #[arg(long = "pretty")]
    pretty: bool,
    /// Reconnect after a lost connection (backoff 0.1 s doubling to 30 s, with jitter) and
    /// resubscribe, as mosquitto_sub does, instead of exiting with code 6.
    #[arg(long = "reconnect")]
    reconnect: bool,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// Writes received messages to standard output, one flush per message.
#[derive(Debug)]
pub(crate) struct Printer {
    output: Output,
    buf: Vec<u8>,
}

impl Printer {
    pub(crate) fn new(output: Output) -> Self {
        Printer {
            output,
            buf: Vec::new(),
        }
    }

    /// Prints one message; `Ok(false)` when standard output was closed (`linnet sub | head`):
    /// the command then ends quietly, with exit code 0.
    pub(crate) fn print(&mut self, msg: &Message) -> Result<bool, CliError> {
        let view = FormatMessage {
            topic: msg.topic.clone(),
            payload: msg.payload.to_vec(),
            qos: msg.qos as u8,
            retain: msg.retain,
            mid: msg.packet_id.unwrap_or(0),
            properties: FormatMessage::props_from(&msg.properties),
        };
        self.buf.clear();
        let mut errors = Vec::new();
        self.output
            .render(&view, Timestamp::now(), &mut self.buf, &mut errors);
        for e in errors {
            eprintln!("{e}");
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(&self.buf).and_then(|()| out.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(CliError::other(format!(
                "cannot write to standard output: {e}"
            ))),
        }
    }
}

pub(crate) fn run(args: SubArgs) -> ExitCode {
    let quiet = args.conn.quiet;
    finish("sub", quiet, run_inner(args))
}

fn check_filter(f: &str, flag: &str) -> Result<(), CliError> {
    TopicFilter::new(f.to_owned())
        .map(|_| ())
        .map_err(|e| CliError::usage(format!("invalid {flag} filter {f:?}: {e}")))
}

/// What ended the wait for messages.
pub(crate) fn lost(event: Option<Event>) -> CliError {
    match event {
        Some(Event::Disconnected {
            reason: Some(code),
            reason_string,
        }) => {
            let mut text = code.name().to_owned();
            if let Some(s) = reason_string {
                text = format!("{text}: {s}");
            }
            CliError::from(ClientError::Disconnected { code: code.0, text })
        }
        _ => CliError::from(ClientError::ConnectionLost),
    }
}

/// SIGINT or SIGTERM.
pub(crate) async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn run_inner(args: SubArgs) -> Result<(), CliError> {
    args.conn.init_debug();
    let resolved = args.conn.resolve(ProtocolVersion::V3_1_1, SUB_COMMANDS)?;
    let mut topics = args.topics.clone();
    topics.extend(resolved.url_topic.clone());
    if topics.is_empty() && args.unsubscribe.is_empty() {
        return Err(CliError::usage(
            "no topic: give -t FILTER (or -L mqtt://host/FILTER)",
        ));
    }
    for t in &topics {
        check_filter(t, "-t")?;
    }
    for t in &args.filter_out {
        check_filter(t, "-T")?;
    }
    for t in &args.unsubscribe {
        check_filter(t, "-U")?;
    }
    if args.count == Some(0) {
        return Err(CliError::usage("-C must be at least 1"));
    }
    let mut printer = Printer::new(client_args::message_output(
        args.format.as_deref(),
        args.verbose,
        args.no_eol,
        args.pretty,
    )?);
    let version = resolved.version;
    let v5 = version == ProtocolVersion::V5;
    let subscribe_props = resolved.props.subscribe.clone();
    let disconnect_props = resolved.props.disconnect.clone();
    let debug = resolved.debug.clone();
    let mut options = resolved.options;
    if args.reconnect {
        options = options.reconnect(Some(linnet_client::Backoff::default()));
    }
    let runtime = client_args::runtime()?;
    runtime.block_on(async {
        debug.log("sending CONNECT");
        let (client, mut messages, connected) = Client::connect(options).await?;
        debug.log(format_args!("received CONNACK ({})", connected.reason.0));
        let deadline = args
            .timeout
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(u64::from(s)));
        let work = async {
            if !topics.is_empty() {
                let subs = topics
                    .iter()
                    .map(|t| (t.clone(), SubscriptionOptions::qos(args.qos)))
                    .collect();
                debug.log(format_args!(
                    "sending SUBSCRIBE (Topics: {}, QoS: {})",
                    topics.join(", "),
                    args.qos as u8
                ));
                let codes = client.subscribe_many(subs, subscribe_props).await?;
                debug.log("received SUBACK");
                if debug.on {
                    let codes: Vec<String> = codes.iter().map(|c| c.0.to_string()).collect();
                    eprintln!("Subscribed: {}", codes.join(", "));
                }
                let failed: Vec<_> = codes.iter().filter(|c| c.0 >= 0x80).collect();
                if !failed.is_empty() && failed.len() == codes.len() {
                    return Err(client_args::refused(version, *failed[0]));
                }
                for (t, c) in topics.iter().zip(&codes) {
                    if c.0 >= 0x80 && !args.conn.quiet {
                        eprintln!(
                            "linnet sub: subscription to {t:?} refused: {} ({:#04x})",
                            linnet_client::reason_text(version, c.0),
                            c.0
                        );
                    }
                }
            }
            if !args.unsubscribe.is_empty() {
                debug.log(format_args!(
                    "sending UNSUBSCRIBE (Topics: {})",
                    args.unsubscribe.join(", ")
                ));
                client.unsubscribe(args.unsubscribe.clone()).await?;
                debug.log("received UNSUBACK");
            }
            if args.exit_after_subscribe {
                return Ok(());
            }
            let mut printed = 0u64;
            loop {
                let event = messages.next_event().await;
                let msg = match event {
                    Some(Event::Message(msg)) => msg,
                    Some(Event::Connected(c)) => {
                        debug.log(format_args!(
                            "received CONNACK ({}) after reconnecting",
                            c.reason.0
                        ));
                        continue;
                    }
                    Some(Event::Disconnected { .. }) if args.reconnect => {
                        debug.log("lost the connection; reconnecting");
                        continue;
                    }
                    Some(Event::ConnectFailed { text, .. }) => {
                        debug.log(format_args!("reconnect failed: {text}"));
                        continue;
                    }
                    Some(Event::ResubscribeFailed { failed }) => {
                        // The other filters still deliver: say so and go on.
                        for (filter, code) in failed {
                            eprintln!(
                                "linnet sub: re-subscribe to {filter} refused: {} ({:#04x})",
                                code.name(),
                                code.0
                            );
                        }
                        continue;
                    }
                    other => return Err(lost(other)),
                };
                debug.received(&msg);
                if args.retained_only && !msg.retain {
                    return Ok(());
                }
                if msg.retain && args.no_stale {
                    continue;
                }
                if args
                    .filter_out
                    .iter()
                    .any(|f| linnet_proto::topic::topic_matches(f, &msg.topic))
                {
                    continue;
                }
                if args.remove_retained && msg.retain {
                    client
                        .publish(
                            &msg.topic,
                            linnet_client::Bytes::new(),
                            QoS::AtLeastOnce,
                            true,
                        )
                        .await?;
                }
                if !printer.print(&msg)? {
                    return Ok(());
                }
                printed += 1;
                if args.count.is_some_and(|c| printed >= c) {
                    return Ok(());
                }
            }
        };
        // -W bounds everything after CONNACK; Ctrl-C / SIGTERM end the command normally.
        let result = tokio::select! {
            result = work => result,
            () = client_args::sleep_until(deadline) => {
                let secs = args.timeout.unwrap_or(0);
                Err(CliError::timeout(format!("timed out after {secs} s (-W)")))
            }
            () = interrupted() => Ok(()),
        };
        match &result {
            Err(e) if e.code == exit::LOST => result,
            _ => {
                debug.log("sending DISCONNECT");
                client_args::disconnect_after(&client, v5, disconnect_props, result).await
            }
        }
    })
}
