"""Shared fixtures: real brokers on free ports, and a check that no test leaks tasks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from tests.support.broker import BrokerHandle, start_test_broker
from tests.support.postgres import PostgresServer, running_postgres


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """One real mosquitto for the session, with the project's auth/ACL/persistence config."""
    broker = start_test_broker(tmp_path_factory.mktemp("mosquitto"))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of the test session's own (tests/support/postgres.py)."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """What ``Store(...)`` opens, once per back end: a SQLite file, or a fresh PostgreSQL
    database on the session's cluster."""
    if request.param == "sqlite":
        return tmp_path / "hub.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[BrokerHandle]:
    """A broker of the test's own, for tests that stop, kill or restart it."""
    broker = start_test_broker(tmp_path / "mosquitto")
    yield broker
    broker.stop()


def _dump_tasks(signum: int, frame: FrameType | None) -> None:
    """`kill -USR1 <pytest pid>`: print every asyncio task's stack (a hung test's awaits)."""
    try:
        tasks = asyncio.all_tasks(asyncio.get_running_loop())
    except RuntimeError:
        print("no running event loop", file=sys.stderr)
        return
    for task in tasks:
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)


signal.signal(signal.SIGUSR1, _dump_tasks)

_TASK_DUMP_AFTER_S = 240  # before pytest-timeout's 300 s (pyproject) ends the test


@pytest.fixture(autouse=True)
def _dump_tasks_of_a_hung_test() -> Iterator[None]:
    """If a test runs for minutes, print its asyncio tasks' stacks: what it is waiting for."""
    timer = threading.Timer(_TASK_DUMP_AFTER_S, os.kill, (os.getpid(), signal.SIGUSR1))
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()
