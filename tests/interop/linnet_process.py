"""A real `linnet broker` process on free loopback ports, for the interoperability tests."""
import os
import pathlib
import socket
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class Broker:
    def __init__(self, tcp, ws, process):
        self.tcp = tcp
        self.ws = ws
        self.process = process


def broker_process():
    """Yields a running Broker; stops it afterwards (use as a pytest fixture body)."""
    binary = os.environ.get("LINNET_BIN", str(ROOT / "target/debug/linnet"))
    tcp, ws = free_port(), free_port()
    process = subprocess.Popen(
        [binary, "broker", "--tcp", f"127.0.0.1:{tcp}", "--ws", f"127.0.0.1:{ws}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(tcp)
        wait_for_port(ws)
        yield Broker(tcp, ws, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
