//! `linnet rr`: request / response like mosquitto_rr. Subscribes to the response topic
//! (`-e`), publishes the request to `-t` with the Response Topic and Correlation Data
//! properties (MQTT 5.0, the default), waits for the reply with that correlation data and
//! prints it as `linnet sub` would (`-F`, `-v`, `-N`, `--pretty`).

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args};
use linnet_client::{
    Bytes, Client, Event, OutgoingMessage, ProtocolVersion, QoS, SubscriptionOptions, TopicFilter,
    TopicName,
};

use crate::client_args::{self, exit, finish, CliError, ConnArgs, RR_COMMANDS};
use crate::sub_cmd::{interrupted, lost, Printer};

pub(crate) const AFTER_HELP: &str = "Examples:
  linnet rr -t service/time -e replies/me -m now
  linnet rr -t service/echo -e replies/me -m hello -W 5 -v
  linnet rr -t service/echo -e replies/me -f request.json -F '%C %p'

The request carries Response Topic = -e and a fresh Correlation Data (unless -D publish
correlation-data is given); the first message on -e with that correlation data (or none)
is printed. MQTT 5.0 by default; with -V 311 the first message on -e is taken.";

/// `linnet rr` flags.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    group(ArgGroup::new("source").required(true).args(["message", "file", "null_message"])),
)]
pub(crate) struct RrArgs {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// Topic to send the request to.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    topic: Option<String>,
    /// Response topic: subscribed to, and sent as the request's Response Topic.
    #[arg(
        short = 'e',
        long = "response-topic",
        value_name = "TOPIC",
        required = true
    )]
    response_topic: String,
    /// Request payload.
    #[arg(
        short = 'm',
        long = "message",
        value_name = "MESSAGE",
        allow_hyphen_values = true
    )]
    message: Option<String>,
    /// Send the contents of a file as the request.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// Send a zero-length request.
    #[arg(short = 'n', long = "null-message")]
    null_message: bool,
    /// QoS of the request and of the response subscription.
    #[arg(short = 'q', long = "qos", value_name = "QOS", value_parser = client_args::parse_qos, default_value = "0")]
    qos: QoS,
    /// Exit (code 5) if no response came within SECONDS.
    #[arg(short = 'W', long = "timeout", value_name = "SECONDS")]
    timeout: Option<u32>,
    /// Print the topic and the payload.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Do not add a newline after the response.
    #[arg(short = 'N', long = "no-eol")]
    no_eol: bool,
    /// Output format, as `linnet sub -F`.
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
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

pub(crate) fn run(args: RrArgs) -> ExitCode {
    let quiet = args.conn.quiet;
    finish("rr", quiet, run_inner(args))
}

/// Correlation data unique to this request: process id and time.
fn correlation() -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Bytes::from(format!("linnet-rr-{}-{now:x}", std::process::id()).into_bytes())
}

fn run_inner(args: RrArgs) -> Result<(), CliError> {
    args.conn.init_debug();
    let resolved = args.conn.resolve(ProtocolVersion::V5, RR_COMMANDS)?;
    let topic = args
        .topic
        .clone()
        .or(resolved.url_topic.clone())
        .ok_or_else(|| CliError::usage("no topic: give -t TOPIC (or -L mqtt://host/TOPIC)"))?;
    TopicName::new(topic.clone())
        .map_err(|e| CliError::usage(format!("invalid topic {topic:?}: {e}")))?;
    let response = args.response_topic.clone();
    TopicName::new(response.clone())
        .map_err(|e| CliError::usage(format!("invalid -e topic {response:?}: {e}")))?;
    TopicFilter::new(response.clone())
        .map_err(|e| CliError::usage(format!("invalid -e topic {response:?}: {e}")))?;
    let payload = if let Some(m) = &args.message {
        Bytes::from(m.clone().into_bytes())
    } else if let Some(path) = &args.file {
        Bytes::from(
            std::fs::read(path)
                .map_err(|e| CliError::other(format!("cannot read {}: {e}", path.display())))?,
        )
    } else {
        Bytes::new()
    };
    let mut printer = Printer::new(client_args::message_output(
        args.format.as_deref(),
        args.verbose,
        args.no_eol,
        args.pretty,
    )?);
    let v5 = resolved.version == ProtocolVersion::V5;
    let mut props = resolved.props.publish.clone();
    let mut expected = None;
    if v5 {
        props.response_topic = TopicName::new(response.clone()).ok();
        let data = props.correlation_data.clone().unwrap_or_else(correlation);
        props.correlation_data = Some(data.clone());
        expected = Some(data);
    }
    let request = OutgoingMessage::new(topic, payload)
        .qos(args.qos)
        .properties(props);
    let subscribe_props = resolved.props.subscribe.clone();
    let disconnect_props = resolved.props.disconnect.clone();
    let debug = resolved.debug.clone();
    let runtime = client_args::runtime()?;
    runtime.block_on(async {
        debug.log("sending CONNECT");
        let (client, mut messages, connected) = Client::connect(resolved.options).await?;
        debug.log(format_args!("received CONNACK ({})", connected.reason.0));
        let deadline = args
            .timeout
            .map(|s| tokio::time::Instant::now() + Duration::from_secs(u64::from(s)));
        let work = async {
            let codes = client
                .subscribe_many(
                    vec![(response.clone(), SubscriptionOptions::qos(args.qos))],
                    subscribe_props,
                )
                .await?;
            if let Some(c) = codes.iter().find(|c| c.0 >= 0x80) {
                return Err(client_args::refused(resolved.version, *c));
            }
            debug.log("received SUBACK");
            debug.log(format_args!(
                "sending PUBLISH (request to '{}')",
                request.topic
            ));
            client.publish_message(request).await?;
            loop {
                let event = messages.next_event().await;
                let msg = match event {
                    Some(Event::Message(msg)) => msg,
                    Some(Event::Connected(_)) => continue,
                    other => return Err(lost(other)),
                };
                debug.received(&msg);
                if !linnet_proto::topic::topic_matches(&response, &msg.topic) {
                    continue;
                }
                let matches = match (&expected, &msg.properties.correlation_data) {
                    (Some(want), Some(got)) => want == got,
                    _ => true,
                };
                if matches {
                    printer.print(&msg)?; // a closed stdout ends rr the same way
                    return Ok(());
                }
            }
        };
        let result = tokio::select! {
            result = work => result,
            () = client_args::sleep_until(deadline) => {
                let secs = args.timeout.unwrap_or(0);
                Err(CliError::timeout(format!("no response within {secs} s (-W)")))
            }
            () = interrupted() => Ok(()),
        };
        match &result {
            Err(e) if e.code == exit::LOST => result,
            _ => client_args::disconnect_after(&client, v5, disconnect_props, result).await,
        }
    })
}
