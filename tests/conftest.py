"""Shared fixtures: real brokers on free ports, and a check that no test leaks tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import BrokerHandle, start_test_broker


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """One real mosquitto for the session, with the project's auth/ACL/persistence config."""
    broker = start_test_broker(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[BrokerHandle]:
    """A broker of the test's own, for tests that stop, kill or restart it."""
    broker = start_test_broker(tmp_path / "mosquitto")
    yield broker
    broker.stop()
