"""The everyday scenario: connect with a random client id, check the return code in
on_connect, then publish `messages: N` to `python/mqtt` once a second.

    python3 publisher.py [--host 127.0.0.1] [--port 1883] [--transport tcp|websockets]
                         [--protocol 311|5] [--count N] [--interval SECONDS]

Works unchanged against Linnet, Mosquitto or any MQTT broker (paho-mqtt 2.x).
"""
import argparse
import random
import sys
import time

from paho.mqtt import client as mqtt_client


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--transport", choices=["tcp", "websockets"], default="tcp")
    parser.add_argument("--protocol", choices=["311", "5"], default="311")
    parser.add_argument("--topic", default="python/mqtt")
    parser.add_argument("--count", type=int, default=0, help="stop after N messages (0: never)")
    parser.add_argument("--interval", type=float, default=1.0)
    return parser.parse_args()


def connect_mqtt(args):
    def on_connect(client, userdata, flags, rc, properties=None):
        if rc == 0:
            print("Connected to MQTT Broker!", flush=True)
        else:
            print(f"Failed to connect, return code {rc}", flush=True)

    # The seed draws from 0..1000; a wider range keeps two runs from taking each other over.
    client_id = f"python-mqtt-{random.randint(0, 1_000_000)}"
    protocol = mqtt_client.MQTTv5 if args.protocol == "5" else mqtt_client.MQTTv311
    client = mqtt_client.Client(
        mqtt_client.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        transport=args.transport,
    )
    if args.transport == "websockets":
        client.ws_set_options(path="/mqtt")
    client.on_connect = on_connect
    client.connect(args.host, args.port)
    return client


def publish(client, args):
    msg_count = 1
    while args.count == 0 or msg_count <= args.count:
        time.sleep(args.interval)
        msg = f"messages: {msg_count}"
        result = client.publish(args.topic, msg)
        if result.rc == 0:
            print(f"Send `{msg}` to topic `{args.topic}`", flush=True)
        else:
            print(f"Failed to send message to topic {args.topic}", flush=True)
        msg_count += 1


def main():
    args = parse_args()
    client = connect_mqtt(args)
    client.loop_start()
    try:
        publish(client, args)
    finally:
        client.loop_stop()
        client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
