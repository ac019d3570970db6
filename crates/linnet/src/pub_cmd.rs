//! `linnet pub`: mosquitto_pub's flags on linnet-client. One connection; the message(s) from
//! `-m`, `-f`, `-s`, `-n` (repeated with `--repeat`) or one per line of standard input (`-l`);
//! each QoS 1/2 publish is awaited to its PUBACK / PUBCOMP before the next; then DISCONNECT.

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args};
use linnet_client::{Bytes, Client, OutgoingMessage, ProtocolVersion, QoS, TopicName};

use crate::client_args::{self, finish, CliError, ConnArgs, PUB_COMMANDS};

pub(crate) const AFTER_HELP: &str = "Examples:
  linnet pub -t sensors/1 -m 21.5
  linnet pub -h broker.local -t sensors/1 -m 21.5 -q 1 -r
  tail -f app.log | linnet pub -t logs/app -l
  linnet pub -t big/file -f firmware.bin -q 2
  linnet pub -V 5 -t jobs -m go -D publish user-property origin cli -D publish message-expiry-interval 60
  linnet pub -L mqtt://user:secret@broker.local:1883/sensors/1 -m 21.5
  linnet pub --ws -p 8083 -t sensors/1 -m 21.5 --repeat 10 --repeat-delay 0.5

Defaults as mosquitto_pub: host localhost, port 1883 (8083 with --ws), MQTT 3.1.1, QoS 0.
-h is the host; help is --help only.";

/// `linnet pub` flags.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    group(ArgGroup::new("source").required(true).args(["message", "file", "stdin_line", "stdin_file", "null_message"])),
)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
    /// Topic to publish to.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    topic: Option<String>,
    /// Message payload.
    #[arg(
        short = 'm',
        long = "message",
        value_name = "MESSAGE",
        allow_hyphen_values = true
    )]
    message: Option<String>,
    /// Send the contents of a file as the message.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Send each line of standard input as a message (blank lines as empty messages).
    #[arg(short = 'l', long = "stdin-line")]
    stdin_line: bool,
    /// Send all of standard input as one message.
    #[arg(short = 's', long = "stdin-file")]
    stdin_file: bool,
    /// Send a zero-length message.
    #[arg(short = 'n', long = "null-message")]
    null_message: bool,
    /// Retain the message.
    #[arg(short = 'r', long = "retain")]
    retain: bool,
    /// QoS of the messages.
    #[arg(short = 'q', long = "qos", value_name = "QOS", value_parser = client_args::parse_qos, default_value = "0")]
    qos: QoS,
    /// Publish the message N times (-m, -f, -s, -n).
    #[arg(long = "repeat", value_name = "N", default_value_t = 1)]
    repeat: u32,
    /// Seconds to wait between repeats (fractions allowed).
    #[arg(long = "repeat-delay", value_name = "SECONDS", default_value_t = 0.0)]
    repeat_delay: f64,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

enum Source {
    One(Bytes),
    Lines,
}

pub(crate) fn run(args: PubArgs) -> ExitCode {
    let quiet = args.conn.quiet;
    finish("pub", quiet, run_inner(args))
}

fn run_inner(args: PubArgs) -> Result<(), CliError> {
    args.conn.init_debug();
    let resolved = args.conn.resolve(ProtocolVersion::V3_1_1, PUB_COMMANDS)?;
    let topic = args
        .topic
        .clone()
        .or(resolved.url_topic.clone())
        .ok_or_else(|| CliError::usage("no topic: give -t TOPIC (or -L mqtt://host/TOPIC)"))?;
    TopicName::new(topic.clone())
        .map_err(|e| CliError::usage(format!("invalid topic {topic:?}: {e}")))?;
    if !(args.repeat_delay >= 0.0 && args.repeat_delay.is_finite()) {
        return Err(CliError::usage(
            "--repeat-delay must be a number of seconds >= 0",
        ));
    }
    if args.repeat == 0 {
        return Err(CliError::usage("--repeat must be at least 1"));
    }
    let source = if let Some(m) = &args.message {
        Source::One(Bytes::from(m.clone().into_bytes()))
    } else if let Some(path) = &args.file {
        let data = std::fs::read(path)
            .map_err(|e| CliError::other(format!("cannot read {}: {e}", path.display())))?;
        Source::One(Bytes::from(data))
    } else if args.stdin_file {
        let mut data = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut data)
            .map_err(|e| CliError::other(format!("cannot read standard input: {e}")))?;
        Source::One(Bytes::from(data))
    } else if args.null_message {
        Source::One(Bytes::new())
    } else {
        Source::Lines
    };
    let props = resolved.props.publish.clone();
    let disconnect_props = resolved.props.disconnect.clone();
    let v5 = resolved.version == ProtocolVersion::V5;
    let message = |payload: Bytes| {
        OutgoingMessage::new(topic.clone(), payload)
            .qos(args.qos)
            .retain(args.retain)
            .properties(props.clone())
    };
    let debug = resolved.debug.clone();
    let runtime = client_args::runtime()?;
    runtime.block_on(async {
        debug.log("sending CONNECT");
        let (client, _messages, connected) = Client::connect(resolved.options).await?;
        debug.log(format_args!("received CONNACK ({})", connected.reason.0));
        let result = async {
            match source {
                Source::One(payload) => {
                    for n in 0..args.repeat {
                        if n > 0 && args.repeat_delay > 0.0 {
                            tokio::time::sleep(Duration::from_secs_f64(args.repeat_delay)).await;
                        }
                        publish(&client, message(payload.clone()), &debug).await?;
                    }
                }
                Source::Lines => {
                    let mut lines = stdin_lines();
                    while let Some(line) = lines.recv().await {
                        let line = line.map_err(|e| {
                            CliError::other(format!("cannot read standard input: {e}"))
                        })?;
                        publish(&client, message(Bytes::from(line)), &debug).await?;
                    }
                }
            }
            Ok::<(), CliError>(())
        }
        .await;
        // A failed publish (rejected, too large...) still ends with DISCONNECT 0x00, so the
        // broker does not publish the will, as mosquitto_pub does; unless the connection is
        // already gone.
        let connection_gone =
            client.is_closed() || matches!(&result, Err(e) if e.code == client_args::exit::LOST);
        if connection_gone {
            return result;
        }
        debug.log("sending DISCONNECT");
        client_args::disconnect_after(&client, v5, disconnect_props, result).await
    })
}

async fn publish(
    client: &Client,
    message: OutgoingMessage,
    debug: &client_args::DebugLog,
) -> Result<(), CliError> {
    if debug.on {
        debug.log(format_args!(
            "sending PUBLISH (q{}, r{}, '{}', ... ({} bytes))",
            message.qos as u8,
            u8::from(message.retain),
            message.topic,
            message.payload.len()
        ));
    }
    let outcome = client.publish_message(message).await?;
    // 0x10 "no matching subscribers" is a success code.
    if outcome.reason.0 >= 0x80 {
        return Err(CliError::from(linnet_client::ClientError::Rejected {
            code: outcome.reason.0,
            text: outcome.reason.name().to_owned(),
        }));
    }
    Ok(())
}

/// Lines of standard input, without their `\n`, read on a thread (stdin blocks).
fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    rx
}
