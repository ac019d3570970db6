//! The seed scenario's subscriber in Rust, with the blocking paho-style facade: connect with
//! a random client id, check the CONNACK code in `on_connect`, subscribe to `python/mqtt` and
//! print every message as "Received `<payload>` from `<topic>` topic".
//!
//! ```text
//! cargo run -p linnet-client --example subscriber -- [--host 127.0.0.1] [--port 1883]
//!     [--ws] [--protocol 311|5] [--topic python/mqtt] [--count N]
//! ```
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use linnet_client::blocking::Client;
use linnet_client::{reason_text, ConnectOptions, ProtocolVersion, QoS, Transport};

fn main() {
    let mut host = "127.0.0.1".to_owned();
    let mut port = None;
    let mut ws = false;
    let mut version = ProtocolVersion::V3_1_1;
    let mut topic = "python/mqtt".to_owned();
    let mut count = 0u64;
    let mut it = std::env::args().skip(1);
    let usage = |msg: String| -> ! {
        eprintln!("subscriber: {msg}");
        std::process::exit(2)
    };
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--host" => host = value(),
            "--port" => {
                port = Some(
                    value()
                        .parse::<u16>()
                        .unwrap_or_else(|e| usage(e.to_string())),
                )
            }
            "--ws" => ws = true,
            "--protocol" => {
                version = match value().as_str() {
                    "5" => ProtocolVersion::V5,
                    _ => ProtocolVersion::V3_1_1,
                }
            }
            "--topic" => topic = value(),
            "--count" => {
                count = value()
                    .parse()
                    .unwrap_or_else(|e| usage(format!("--count: {e}")))
            }
            other => usage(format!("unknown flag {other}")),
        }
    }
    let port = port.unwrap_or(if ws { 8083 } else { 1883 });
    let mut opts = ConnectOptions::new(host.as_str(), port).version(version);
    if ws {
        opts = opts.transport(Transport::WebSocket {
            path: "/mqtt".into(),
        });
    }
    let client = Client::new(opts).unwrap_or_else(|e| usage(e.to_string()));
    client.on_connect(move |client, code| {
        if code == 0 {
            println!("Connected to MQTT Broker!");
            if let Err(e) = client.subscribe(&topic, QoS::AtMostOnce) {
                println!("Failed to subscribe: {e}");
            }
        } else {
            println!(
                "Failed to connect, return code {code} ({})",
                reason_text(version, code)
            );
        }
    });
    let received = Arc::new(AtomicU64::new(0));
    let seen = received.clone();
    client.on_message(move |client, msg| {
        println!(
            "Received `{}` from `{}` topic",
            msg.payload_str(),
            msg.topic
        );
        if seen.fetch_add(1, Ordering::SeqCst) + 1 == count {
            let _ = client.disconnect();
        }
    });
    if let Err(e) = client.connect() {
        println!("Failed to connect: {e}");
        std::process::exit(1);
    }
    if let Err(e) = client.loop_forever() {
        println!("Connection ended: {e}");
        std::process::exit(1);
    }
}
