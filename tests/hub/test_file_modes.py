"""Data files (phone numbers, pickup codes, charging sessions) are 0600 in 0700 folders whatever
the umask; a data path that cannot be used stops the hub with a clear error."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.ocpp.sessions import SessionStore
from hub.parcels.notify import FileNotifier, PickupNotice
from lockerhub.sqlite import Database
from tests.hub.conftest import running_hub, settings_for
from tests.hub.test_operator_api import hub_config, run_hub_to_exit


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def lax_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("lax_umask")
async def test_hub_files_are_private(tmp_path: Path, mosquitto: Any, site: str) -> None:
    data = tmp_path / "data" / "db"
    settings = settings_for(
        tmp_path,
        mosquitto,
        site,
        storage={"path": str(data / "hub.db")},
        notify={"path": str(tmp_path / "notes" / "notifications.jsonl")},
    )
    async with running_hub(settings, tmp_path, mosquitto):
        for name in ("hub.db", "hub.db-wal", "hub.db-shm"):
            assert mode(data / name) == 0o600, name
        assert mode(data) == mode(data.parent) == 0o700
        # The notice file exists from the start (checked writable), private too.
        assert mode(tmp_path / "notes" / "notifications.jsonl") == 0o600
        assert mode(tmp_path / "notes") == 0o700


@pytest.mark.usefixtures("lax_umask")
async def test_files_left_readable_by_an_older_version_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with Database(path) as db:
        await db.run(lambda conn: conn.execute("CREATE TABLE t (x)"))
    for p in tmp_path.iterdir():
        p.chmod(0o644)
    async with Database(path) as db:
        await db.run(lambda conn: conn.execute("INSERT INTO t VALUES (1)"))
        for p in tmp_path.iterdir():
            assert mode(p) == 0o600, p.name


@pytest.mark.usefixtures("lax_umask")
async def test_notice_and_ocpp_files_are_private(tmp_path: Path) -> None:
    notes = tmp_path / "n" / "notifications.jsonl"
    notice = PickupNotice("P1", "+8613800000000", "123456", "s", "c", "A01", 1)
    await FileNotifier(notes).notify(notice)
    assert mode(notes) == 0o600
    assert mode(notes.parent) == 0o700
    sessions = tmp_path / "o" / "ocpp.db"
    async with SessionStore(sessions):
        assert mode(sessions) == 0o600
        assert mode(sessions.parent) == 0o700


@pytest.mark.parametrize("key", ["storage.path", "notify.path"])
def test_a_data_path_that_is_a_directory_stops_the_hub_cleanly(
    tmp_path: Path, mosquitto: Any, site: str, key: str
) -> None:
    config = hub_config(tmp_path / "hub", mosquitto, site, "port = 0")
    section, _, field = key.partition(".")
    folder = tmp_path / "a-folder"
    folder.mkdir()
    text = config.read_text()
    start = text.index(f"[{section}]\n{field} = ")
    end = text.index("\n", text.index("\n", start) + 1)
    config.write_text(f'{text[:start]}[{section}]\n{field} = "{folder}"{text[end:]}')
    code, output = run_hub_to_exit(config)
    assert code == 2, output
    assert f"error: {key}: " in output
    assert "Traceback" not in output
