//! linnet-client against Mosquitto (the `mosquitto` broker binary, started by each test on
//! free ports with a generated config): every QoS both ways in 3.1.1 and 5.0, v5 properties,
//! automatic topic aliases (Mosquitto allows 10), WebSocket, and reconnect with re-subscribe
//! and the offline queue across a Mosquitto restart on the same port.
//!
//! Without the binary these tests print a skip line and pass, unless
//! `LINNET_REQUIRE_MOSQUITTO=1` (set by scripts/test), which makes them fail.

use std::net::TcpListener as StdListener;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use linnet_client::{
    ConnectOptions, OutgoingMessage, ProtocolVersion, PublishProperties, QoS, SubscribeProperties,
    SubscriptionOptions, TopicName, Transport,
};
use linnet_testkit::client_support::{
    connect, fast_backoff, next_message, within, RestartScenario, LIMIT,
};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

fn mosquitto_binary() -> Option<PathBuf> {
    let candidates = [
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/usr/bin/mosquitto",
    ];
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(found);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("mosquitto"))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A Mosquitto process on 127.0.0.1 (TCP and WebSocket listeners), killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    ws_port: u16,
    dir: PathBuf,
}

impl Mosquitto {
    /// Starts Mosquitto, or returns None (after printing a skip line) if it is not installed
    /// and not required.
    async fn start(test: &str) -> Option<Self> {
        let Some(bin) = mosquitto_binary() else {
            if std::env::var("LINNET_REQUIRE_MOSQUITTO").as_deref() == Ok("1") {
                panic!("mosquitto is not installed and LINNET_REQUIRE_MOSQUITTO=1");
            }
            eprintln!("skip {test}: mosquitto is not installed (apt-get install mosquitto)");
            return None;
        };
        let dir =
            std::env::temp_dir().join(format!("linnet-mosquitto-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Some(Self::start_on(bin, dir, free_port(), free_port()).await)
    }

    async fn start_on(bin: PathBuf, dir: PathBuf, port: u16, ws_port: u16) -> Self {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\n\
                 listener {ws_port} 127.0.0.1\nprotocol websockets\n\
                 persistence false\n"
            ),
        )
        .expect("write config");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let me = Self {
            child,
            port,
            ws_port,
            dir,
        };
        me.wait_ready().await;
        me
    }

    /// Waits (without blocking the runtime: the clients' tasks keep running) until both
    /// listeners accept.
    async fn wait_ready(&self) {
        let deadline = Instant::now() + LIMIT;
        for port in [self.port, self.ws_port] {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                assert!(
                    Instant::now() < deadline,
                    "mosquitto did not start on {port}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    fn opts(&self, version: ProtocolVersion) -> ConnectOptions {
        ConnectOptions::new("127.0.0.1", self.port).version(version)
    }

    /// Kills Mosquitto and starts a new one on the same ports (sessions are lost).
    async fn restart(mut self) -> Self {
        self.stop();
        let bin = mosquitto_binary().expect("binary");
        let dir = std::mem::take(&mut self.dir);
        Self::start_on(bin, dir, self.port, self.ws_port).await
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[tokio::test]
async fn mosquitto_every_qos_both_ways() {
    let Some(mq) = Mosquitto::start("qos").await else {
        return;
    };
    for version in VERSIONS {
        let (sub, mut messages) = connect(mq.opts(version)).await;
        let (publisher, _) = connect(mq.opts(version)).await;
        for sub_qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let filter = format!("mq/{version:?}/{}", sub_qos as u8);
            let granted = within("subscribe", sub.subscribe(&filter, sub_qos))
                .await
                .expect("granted");
            assert_eq!(granted.0, sub_qos as u8);
            for pub_qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let payload = format!("{sub_qos:?}/{pub_qos:?}");
                within(
                    "publish",
                    publisher.publish(&filter, payload.clone(), pub_qos, false),
                )
                .await
                .expect("published");
                let m = next_message(&mut messages).await;
                assert_eq!(
                    (m.topic.as_str(), &*m.payload_str()),
                    (filter.as_str(), payload.as_str())
                );
                assert_eq!(m.qos, sub_qos.min(pub_qos));
            }
        }
        let codes = within(
            "unsubscribe",
            sub.unsubscribe(vec![format!("mq/{version:?}/1")]),
        )
        .await
        .expect("unsuback");
        assert_eq!(codes.len(), 1);
        within("disconnect", sub.disconnect()).await.expect("ok");
        within("disconnect", publisher.disconnect())
            .await
            .expect("ok");
    }
}

#[tokio::test]
async fn mosquitto_v5_properties_and_automatic_topic_aliases() {
    let Some(mq) = Mosquitto::start("props").await else {
        return;
    };
    let v5 = ProtocolVersion::V5;
    let (sub, mut messages) = connect(mq.opts(v5)).await;
    within(
        "subscribe",
        sub.subscribe_many(
            vec![("p/#".into(), SubscriptionOptions::qos(QoS::ExactlyOnce))],
            SubscribeProperties {
                subscription_identifier: NonZeroU32::new(7),
                ..Default::default()
            },
        ),
    )
    .await
    .expect("granted");
    let (publisher, _) = connect(mq.opts(v5)).await;
    let properties = PublishProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(600),
        response_topic: Some(TopicName::new("p/reply").expect("topic")),
        correlation_data: Some(Bytes::from_static(b"c0rr")),
        user_properties: vec![("a".into(), "1".into()), ("b".into(), "2".into())],
        content_type: Some("application/json".into()),
        ..Default::default()
    };
    // The same topic several times: after the first, the client sends only the alias.
    for i in 0..4 {
        let msg = OutgoingMessage::new("p/x", format!("{{\"n\":{i}}}"))
            .qos(QoS::AtLeastOnce)
            .properties(properties.clone());
        within("publish", publisher.publish_message(msg))
            .await
            .expect("acked");
    }
    for i in 0..4 {
        let m = next_message(&mut messages).await;
        assert_eq!(m.topic, "p/x", "alias resolved by mosquitto");
        assert_eq!(m.payload_str(), format!("{{\"n\":{i}}}"));
        let p = &m.properties;
        assert_eq!(p.response_topic, properties.response_topic);
        assert_eq!(p.correlation_data, properties.correlation_data);
        assert_eq!(p.user_properties, properties.user_properties);
        assert_eq!(p.content_type, properties.content_type);
        assert_eq!(p.payload_format_indicator, Some(true));
        assert!(p.message_expiry_interval.is_some_and(|s| s <= 600));
        assert_eq!(
            p.subscription_identifiers,
            vec![NonZeroU32::new(7).expect("id")]
        );
    }
}

#[tokio::test]
async fn mosquitto_websocket() {
    let Some(mq) = Mosquitto::start("ws").await else {
        return;
    };
    for version in VERSIONS {
        let ws = ConnectOptions::new("127.0.0.1", mq.ws_port)
            .version(version)
            .transport(Transport::WebSocket {
                path: "/mqtt".into(),
            });
        let (client, mut messages) = connect(ws).await;
        within("subscribe", client.subscribe("ws/#", QoS::ExactlyOnce))
            .await
            .expect("granted");
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            within(
                "publish",
                client.publish("ws/t", format!("{qos:?}"), qos, false),
            )
            .await
            .expect("published");
            assert_eq!(
                next_message(&mut messages).await.payload_str(),
                format!("{qos:?}")
            );
        }
        within("disconnect", client.disconnect()).await.expect("ok");
    }
}

#[tokio::test]
async fn mosquitto_restart_resubscribes_and_drains_the_offline_queue_once() {
    let Some(mq) = Mosquitto::start("restart").await else {
        return;
    };
    let scenario = RestartScenario {
        topic: "restart/t",
        outage_messages: 4,
        broker_port: mq.port,
        subscriber: mq
            .opts(ProtocolVersion::V5)
            .session_expiry(300)
            .reconnect(fast_backoff()),
        publisher_version: ProtocolVersion::V3_1_1,
    };
    let mq = scenario
        .run(
            mq,
            |mut mq| async move {
                mq.stop();
                mq
            },
            Mosquitto::restart,
        )
        .await;
    drop(mq);
}
