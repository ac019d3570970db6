//! The seed scenario's publisher in Rust (async API): connect with a random client id, check
//! the CONNACK code, then publish `messages: N` to `python/mqtt` once a second.
//!
//! ```text
//! cargo run -p linnet-client --example publisher -- [--host 127.0.0.1] [--port 1883]
//!     [--ws] [--protocol 311|5] [--topic python/mqtt] [--count N] [--interval SECONDS]
//! ```
#![allow(clippy::print_stdout)]

use std::time::Duration;

use linnet_client::{Client, ClientError, ConnectOptions, ProtocolVersion, QoS, Transport};

/// Command-line options (std only, to keep the example small).
struct Args {
    host: String,
    port: Option<u16>,
    ws: bool,
    version: ProtocolVersion,
    topic: String,
    count: u64,
    interval: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: None,
        ws: false,
        version: ProtocolVersion::V3_1_1,
        topic: "python/mqtt".into(),
        count: 0,
        interval: Duration::from_secs(1),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = value()?,
            "--port" => args.port = Some(value()?.parse().map_err(|e| format!("--port: {e}"))?),
            "--ws" => args.ws = true,
            "--protocol" => {
                args.version = match value()?.as_str() {
                    "311" => ProtocolVersion::V3_1_1,
                    "5" => ProtocolVersion::V5,
                    other => return Err(format!("--protocol: 311 or 5, not {other}")),
                }
            }
            "--topic" => args.topic = value()?,
            "--count" => args.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--interval" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--interval: {e}"))?;
                args.interval = Duration::from_secs_f64(secs);
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("publisher: {e}");
            std::process::exit(2);
        }
    };
    let port = args.port.unwrap_or(if args.ws { 8083 } else { 1883 });
    // ConnectOptions::new picks a random client id ("linnet-<12 hex>").
    let mut opts = ConnectOptions::new(args.host.as_str(), port).version(args.version);
    if args.ws {
        opts = opts.transport(Transport::WebSocket {
            path: "/mqtt".into(),
        });
    }
    let client = match Client::connect(opts).await {
        Ok((client, _messages, connected)) if connected.reason.is_success() => {
            println!("Connected to MQTT Broker!");
            client
        }
        Ok((_, _, connected)) => {
            println!("Failed to connect, return code {}", connected.reason.0);
            std::process::exit(1);
        }
        Err(ClientError::Refused { code, text }) => {
            println!("Failed to connect, return code {code} ({text})");
            std::process::exit(1);
        }
        Err(e) => {
            println!("Failed to connect: {e}");
            std::process::exit(1);
        }
    };
    let mut n = 1u64;
    while args.count == 0 || n <= args.count {
        tokio::time::sleep(args.interval).await;
        let msg = format!("messages: {n}");
        match client
            .publish(&args.topic, msg.clone(), QoS::AtMostOnce, false)
            .await
        {
            Ok(_) => println!("Send `{msg}` to topic `{}`", args.topic),
            Err(e) => println!("Failed to send message to topic {}: {e}", args.topic),
        }
        n += 1;
    }
    let _ = client.disconnect().await;
}
