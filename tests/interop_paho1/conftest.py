"""pytest fixtures: the same `linnet broker` process as tests/interop."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "interop"))

from linnet_process import broker_process  # noqa: E402


@pytest.fixture
def broker():
    yield from broker_process()
