"""pytest fixtures for the interoperability tests."""
import pytest

from linnet_process import broker_process


@pytest.fixture
def broker():
    yield from broker_process()
