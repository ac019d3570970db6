"""Interoperability with real peers: paho-mqtt 2.x (MQTT 3.1.1 and 5.0, TCP and WebSocket)
running the seed's publisher/subscriber examples, and mosquitto_pub / mosquitto_sub."""
import pathlib
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples/python"
COMBINATIONS = [("311", "tcp"), ("311", "websockets"), ("5", "tcp"), ("5", "websockets")]


def port_for(broker, transport):
    return broker.ws if transport == "websockets" else broker.tcp


@pytest.mark.parametrize("protocol,transport", COMBINATIONS)
def test_seed_publisher_and_subscriber_examples(broker, protocol, transport):
    common = ["--port", str(port_for(broker, transport)), "--transport", transport, "--protocol", protocol]
    subscriber = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "subscriber.py"), "--count", "3", *common],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # The subscriber prints this once its on_connect saw rc 0 and it subscribed.
        assert subscriber.stdout.readline().strip() == "Connected to MQTT Broker!"
        time.sleep(0.3)
        publisher = subprocess.run(
            [sys.executable, str(EXAMPLES / "publisher.py"), "--count", "3", "--interval", "0.2", *common],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert publisher.returncode == 0, publisher.stderr
        lines = publisher.stdout.splitlines()
        assert lines[0] == "Connected to MQTT Broker!"
        assert lines[1:] == [f"Send `messages: {n}` to topic `python/mqtt`" for n in (1, 2, 3)]
        out, _ = subscriber.communicate(timeout=15)
        assert out.splitlines() == [
            f"Received `messages: {n}` from `python/mqtt` topic" for n in (1, 2, 3)
        ]
        assert subscriber.returncode == 0
    finally:
        if subscriber.poll() is None:
            subscriber.kill()


def paho_client(broker, protocol, transport, **kwargs):
    version = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=version, transport=transport, **kwargs)
    if transport == "websockets":
        client.ws_set_options(path="/mqtt")
    connected = threading.Event()
    codes = []

    def on_connect(client, userdata, flags, reason_code, properties):
        codes.append(reason_code)
        connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port_for(broker, transport))
    client.loop_start()
    assert connected.wait(5), "no CONNACK"
    assert not codes[0].is_failure, codes
    return client


@pytest.mark.parametrize("protocol,transport", COMBINATIONS)
def test_paho_qos_levels_and_retained(broker, protocol, transport):
    received = []
    done = threading.Event()
    sub = paho_client(broker, protocol, transport)

    def on_message(client, userdata, message):
        received.append((message.topic, message.payload, message.qos, message.retain))
        if len(received) == 4:
            done.set()

    sub.on_message = on_message
    pub = paho_client(broker, protocol, transport)
    pub.publish("interop/retained", b"kept", qos=1, retain=True).wait_for_publish(5)
    sub.subscribe("interop/#", qos=2)
    for qos in (0, 1, 2):
        time.sleep(0.1)
        pub.publish("interop/live", f"qos {qos}".encode(), qos=qos).wait_for_publish(5)
    assert done.wait(5), received
    assert received[0] == ("interop/retained", b"kept", 1, True)
    assert received[1:] == [("interop/live", f"qos {q}".encode(), q, False) for q in (0, 1, 2)]
    for client in (sub, pub):
        client.loop_stop()
        client.disconnect()


def test_paho_v5_properties_round_trip(broker):
    got = []
    done = threading.Event()
    sub = paho_client(broker, "5", "tcp")
    sub.on_message = lambda c, u, m: (got.append(m), done.set())
    sub.subscribe("req/+", qos=1)
    time.sleep(0.2)
    pub = paho_client(broker, "5", "tcp")
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "resp/1"
    props.CorrelationData = b"\x00\x01corr"
    props.UserProperty = [("a", "1"), ("b", "2"), ("a", "3")]
    props.ContentType = "text/plain"
    props.PayloadFormatIndicator = 1
    pub.publish("req/x", b"hello", qos=1, properties=props).wait_for_publish(5)
    assert done.wait(5)
    message = got[0].properties
    assert message.ResponseTopic == "resp/1"
    assert message.CorrelationData == b"\x00\x01corr"
    assert message.UserProperty == [("a", "1"), ("b", "2"), ("a", "3")]
    assert message.ContentType == "text/plain"
    assert message.PayloadFormatIndicator == 1
    for client in (sub, pub):
        client.loop_stop()
        client.disconnect()


@pytest.mark.parametrize("version", ["311", "5"])
def test_mosquitto_pub_and_sub(broker, version):
    port = str(broker.tcp)
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", version, "-t", "cli/#", "-v", "-C", "3", "-W", "10"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    for qos in ("0", "1", "2"):
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", version, "-t", f"cli/q{qos}", "-m", f"qos {qos}", "-q", qos],
            check=True,
            timeout=10,
        )
    out, _ = sub.communicate(timeout=15)
    assert sub.returncode == 0
    assert out.splitlines() == ["cli/q0 qos 0", "cli/q1 qos 1", "cli/q2 qos 2"]


@pytest.mark.parametrize("version", ["311", "5"])
def test_mosquitto_retained_message(broker, version):
    port = str(broker.tcp)
    subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-V", version, "-t", "cli/state", "-m", "on", "-r", "-q", "1"],
        check=True,
        timeout=10,
    )
    out = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", version, "-t", "cli/state", "-C", "1", "-W", "5", "-F", "%r %t %p"],
        capture_output=True,
        text=True,
        timeout=15,
        check=True,
    ).stdout
    assert out.strip() == "1 cli/state on"
