//! Topic aliases from the broker to a v5 client that allows them (MQTT 5.0 3.3.2.3.4): the
//! first PUBLISH on a topic carries topic and alias, later ones the alias alone; never more
//! aliases than the client's Topic Alias Maximum, none for clients that allow none, and none
//! remembered across connections.

use std::num::NonZeroU16;

use linnet_proto::{Connect, ProtocolVersion, Publish, QoS};
use linnet_testkit::{RawClient, TestBroker};

const V5: ProtocolVersion = ProtocolVersion::V5;

async fn subscriber(broker: &TestBroker, id: &str, alias_max: Option<u16>) -> RawClient {
    let mut connect = Connect::new(V5, id);
    connect.properties.topic_alias_maximum = alias_max;
    let (mut client, _) = RawClient::connect(broker.tcp, connect).await;
    client.subscribe("t/#", QoS::AtMostOnce).await;
    client
}

fn alias(n: u16) -> Option<NonZeroU16> {
    NonZeroU16::new(n)
}

#[tokio::test]
async fn mqtt_3_3_2_11_broker_uses_aliases_up_to_the_client_maximum() {
    // covers: [MQTT-3.3.2-12]
    let broker = TestBroker::start().await;
    let mut sub = subscriber(&broker, "aliased", Some(2)).await;
    let mut publisher = broker.client(V5, "pub").await;
    for topic in ["t/a", "t/a", "t/b", "t/c", "t/b", "t/c"] {
        publisher.send(Publish::new(topic, &b"x"[..])).await;
    }
    let mut seen = Vec::new();
    for _ in 0..6 {
        let publish = sub.recv_publish().await;
        seen.push((publish.topic.to_string(), publish.properties.topic_alias));
    }
    assert_eq!(
        seen,
        vec![
            ("t/a".to_string(), alias(1)),
            (String::new(), alias(1)),
            ("t/b".into(), alias(2)),
            // Maximum reached: a third topic goes out in full, without an alias.
            ("t/c".into(), None),
            (String::new(), alias(2)),
            ("t/c".into(), None),
        ]
    );
}

#[tokio::test]
async fn mqtt_3_3_2_11_no_alias_for_a_client_that_allows_none() {
    let broker = TestBroker::start().await;
    let mut sub = subscriber(&broker, "plain", None).await;
    let mut publisher = broker.client(V5, "pub").await;
    for _ in 0..2 {
        publisher.send(Publish::new("t/a", &b"x"[..])).await;
    }
    for _ in 0..2 {
        let publish = sub.recv_publish().await;
        assert_eq!(
            (&*publish.topic, publish.properties.topic_alias),
            ("t/a", None)
        );
    }
}

#[tokio::test]
async fn mqtt_3_3_2_7_aliases_start_over_with_each_connection() {
    let broker = TestBroker::start().await;
    let mut connect = Connect::new(V5, "again");
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(60);
    connect.properties.topic_alias_maximum = Some(5);
    let (mut sub, _) = RawClient::connect(broker.tcp, connect.clone()).await;
    sub.subscribe("t/#", QoS::AtMostOnce).await;
    let mut publisher = broker.client(V5, "pub").await;
    publisher.send(Publish::new("t/a", &b"1"[..])).await;
    assert_eq!(&*sub.recv_publish().await.topic, "t/a");
    drop(sub);
    let (mut sub, _) = RawClient::connect(broker.tcp, connect).await;
    publisher.send(Publish::new("t/a", &b"2"[..])).await;
    let publish = sub.recv_publish().await;
    // The new connection learns the alias again: the topic is sent in full.
    assert_eq!(
        (&*publish.topic, publish.properties.topic_alias),
        ("t/a", alias(1))
    );
}
