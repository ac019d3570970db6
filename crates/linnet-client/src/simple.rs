//! One-shot async helpers: connect, do one thing, disconnect (paho's `publish.single`,
//! `publish.multiple` and `subscribe.simple`).

use std::time::Duration;

use bytes::Bytes;
use linnet_proto::QoS;

use crate::{Client, ClientError, ConnectOptions, Message, OutgoingMessage, PublishOutcome};

/// Connects, publishes one message (waiting for its QoS flow), disconnects.
pub async fn publish_single(
    opts: ConnectOptions,
    topic: &str,
    payload: impl Into<Bytes>,
    qos: QoS,
    retain: bool,
) -> Result<PublishOutcome, ClientError> {
    let msg = OutgoingMessage::new(topic, payload).qos(qos).retain(retain);
    let mut outcomes = publish_multiple(opts, vec![msg]).await?;
    outcomes
        .pop()
        .ok_or_else(|| ClientError::Protocol("no outcome".into()))
}

/// Connects, publishes the messages in order (each waiting for its QoS flow), disconnects.
/// Stops at the first failure.
pub async fn publish_multiple(
    opts: ConnectOptions,
    msgs: Vec<OutgoingMessage>,
) -> Result<Vec<PublishOutcome>, ClientError> {
    let (client, _messages, _) = Client::connect(opts).await?;
    let mut outcomes = Vec::with_capacity(msgs.len());
    for msg in msgs {
        match client.publish_message(msg).await {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                let _ = client.disconnect().await;
                return Err(e);
            }
        }
    }
    client.disconnect().await?;
    Ok(outcomes)
}

/// Connects, subscribes to `filters` at `qos`, collects `count` messages (retained ones
/// included), disconnects. With `timeout`, gives up with [`ClientError::Timeout`] after it.
pub async fn receive(
    opts: ConnectOptions,
    filters: &[&str],
    qos: QoS,
    count: usize,
    timeout: Option<Duration>,
) -> Result<Vec<Message>, ClientError> {
    let work = async {
        let (client, mut messages, _) = Client::connect(opts).await?;
        let subs = filters
            .iter()
            .map(|f| ((*f).to_owned(), crate::SubscriptionOptions::qos(qos)))
            .collect();
        let codes = client.subscribe_many(subs, Default::default()).await?;
        if let Some(bad) = codes.iter().find(|c| !c.is_success()) {
            let _ = client.disconnect().await;
            return Err(ClientError::Rejected {
                code: bad.0,
                text: crate::reason_text(client.protocol_version(), bad.0).to_owned(),
            });
        }
        let mut got = Vec::with_capacity(count);
        while got.len() < count {
            match messages.recv().await {
                Some(m) => got.push(m),
                None => return Err(ClientError::ConnectionLost),
            }
        }
        client.disconnect().await?;
        Ok(got)
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| ClientError::Timeout("waiting for messages"))?,
        None => work.await,
    }
}
