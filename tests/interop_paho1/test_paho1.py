"""The seed scenario written against the paho-mqtt 1.x API (callbacks without the version
argument, `on_connect(client, userdata, flags, rc)`), MQTT 3.1.1 and 5.0 over TCP and
WebSocket: users on paho 1.x must not have to change a line."""
import random
import threading
import time

import paho.mqtt.client as mqtt
import pytest

COMBINATIONS = [(mqtt.MQTTv311, "tcp"), (mqtt.MQTTv311, "websockets"), (mqtt.MQTTv5, "tcp"), (mqtt.MQTTv5, "websockets")]


def make_client(protocol, transport):
    client = mqtt.Client(client_id=f"python-mqtt-{random.randint(0, 1_000_000)}", protocol=protocol, transport=transport)
    if transport == "websockets":
        client.ws_set_options(path="/mqtt")
    return client


@pytest.mark.parametrize("protocol,transport", COMBINATIONS)
def test_seed_scenario_with_paho_1x(broker, protocol, transport):
    assert mqtt.__name__ and mqtt.MQTT_ERR_SUCCESS == 0
    port = broker.ws if transport == "websockets" else broker.tcp
    codes, received = [], []
    subscribed, done = threading.Event(), threading.Event()

    def on_connect(client, userdata, flags, rc, properties=None):
        codes.append(rc)
        client.subscribe("python/mqtt")

    def on_subscribe(client, userdata, mid, granted_qos, properties=None):
        subscribed.set()

    def on_message(client, userdata, msg):
        received.append(f"Received `{msg.payload.decode()}` from `{msg.topic}` topic")
        if len(received) == 3:
            done.set()

    sub = make_client(protocol, transport)
    sub.on_connect, sub.on_subscribe, sub.on_message = on_connect, on_subscribe, on_message
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    assert subscribed.wait(5), "no SUBACK"
    assert codes == [0]

    pub = make_client(protocol, transport)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    for n in (1, 2, 3):
        result = pub.publish("python/mqtt", f"messages: {n}")
        result.wait_for_publish(5)
        assert result.rc == 0
        time.sleep(0.05)
    assert done.wait(5), received
    assert received == [f"Received `messages: {n}` from `python/mqtt` topic" for n in (1, 2, 3)]
    for client in (pub, sub):
        client.loop_stop()
        client.disconnect()
