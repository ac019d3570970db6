"""`linnet broker` as a user runs it: defaults, --print-config, configuration errors that name
the file / key / flag with a non-zero exit, and graceful shutdown on SIGTERM / SIGINT."""
import os
import pathlib
import signal
import socket
import subprocess
import threading

import paho.mqtt.client as mqtt
import pytest

from linnet_process import ROOT, free_port, wait_for_port

BINARY = os.environ.get("LINNET_BIN", str(ROOT / "target/debug/linnet"))


def run(*args, **kwargs):
    return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=20, **kwargs)


def port_in_use(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_no_arguments_listens_on_1883_and_8083_and_logs_each_listener():
    if port_in_use(1883) or port_in_use(8083):
        pytest.skip("1883 or 8083 is taken on this machine")
    process = subprocess.Popen([BINARY, "broker"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(1883)
        wait_for_port(8083)
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0, out
    assert "listening for MQTT on tcp://0.0.0.0:1883" in out
    assert "listening for MQTT over WebSocket on ws://0.0.0.0:8083/mqtt" in out


def test_print_config_is_a_valid_config_file(tmp_path):
    printed = run("broker", "--print-config")
    assert printed.returncode == 0
    assert "[listeners]" in printed.stdout and "max_packet_size" in printed.stdout
    config = tmp_path / "linnet.toml"
    config.write_text(printed.stdout)
    tcp, ws = free_port(), free_port()
    process = subprocess.Popen(
        [BINARY, "broker", "--config", str(config), "--tcp", f"127.0.0.1:{tcp}", "--ws", f"127.0.0.1:{ws}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(tcp)
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0


def test_unknown_key_names_file_key_and_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[limits]\nmax_conections = 5\n")
    result = run("broker", "--config", str(config))
    assert result.returncode != 0
    assert str(config) in result.stderr
    assert "max_conections" in result.stderr
    assert "line 2" in result.stderr


def test_invalid_value_names_the_key(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[mqtt]\nmaximum_qos = 3\n")
    result = run("broker", "--config", str(config))
    assert result.returncode != 0
    assert "mqtt.maximum_qos" in result.stderr


def test_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.toml"
    result = run("broker", "--config", str(missing))
    assert result.returncode != 0
    assert str(missing) in result.stderr


def test_bad_flag_value_names_the_flag():
    result = run("broker", "--tcp", "not-an-address")
    assert result.returncode == 2
    assert "--tcp" in result.stderr


def test_port_in_use_is_reported():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("broker", "--tcp", f"127.0.0.1:{port}")
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_shuts_down_gracefully_and_tells_v5_clients(sig):
    tcp, ws = free_port(), free_port()
    process = subprocess.Popen(
        [BINARY, "broker", "--tcp", f"127.0.0.1:{tcp}", "--ws", f"127.0.0.1:{ws}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_port(tcp)
    connected, disconnected = threading.Event(), threading.Event()
    reasons = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, u, f, rc, p: connected.set()

    def on_disconnect(c, u, flags, reason_code, properties):
        reasons.append(reason_code)
        disconnected.set()

    client.on_disconnect = on_disconnect
    client.connect("127.0.0.1", tcp)
    client.loop_start()
    try:
        assert connected.wait(5)
        process.send_signal(sig)
        assert disconnected.wait(10)
        out, _ = process.communicate(timeout=10)
    finally:
        client.loop_stop()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out
    assert reasons and reasons[0].value == 0x8B, reasons
