"""OCPP charging sessions on both back ends, and beside the hub's schema in one PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from hub.ocpp.sessions import SessionStore, tag_digest
from hub.store import Store
from hub.store.migrations import MIGRATIONS
from tests.support.postgres import PostgresServer


async def test_session_lifecycle(store_target: Path | str) -> None:
    async with SessionStore(store_target) as sessions:
        first = await sessions.start(
            pile="P1", site="S", connector=1, id_tag="TAG", meter_start_wh=100.0, now_ms=1
        )
        second = await sessions.start(
            pile="P1", site="S", connector=2, id_tag="TAG", meter_start_wh=5.0, now_ms=2
        )
        assert second > first > 0
        assert await sessions.open_session("P1", first)
        assert not await sessions.open_session("P2", first)  # another pile's id
        assert (
            await sessions.stop(first, pile="P1", meter_stop_wh=150.5, reason="Local", now_ms=3)
            == 50.5
        )
        # Closed once: a second stop (a retry, another hub) counts nothing.
        assert (
            await sessions.stop(first, pile="P1", meter_stop_wh=999, reason="x", now_ms=4) is None
        )
        assert await sessions.stop(second, pile="P2", meter_stop_wh=9, reason="x", now_ms=4) is None
        rows = await sessions.sessions("P1")
    assert [r["transaction_id"] for r in rows] == [first, second]
    assert rows[0]["energy_wh"] == 50.5
    assert rows[0]["stopped_ms"] == 3
    assert rows[1]["stopped_ms"] is None
    assert tag_digest("TAG") != "TAG"


async def test_sessions_share_a_database_with_the_hub(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    async with Store(url) as hub, SessionStore(url) as sessions:
        tid = await sessions.start(
            pile="P", site="S", connector=1, id_tag="T", meter_start_wh=0, now_ms=1
        )
        assert tid >= 1
        assert hub.schema_version == max(m[0] for m in MIGRATIONS)
        async with hub.read() as tx:
            hub_versions = await tx.fetchall("SELECT version FROM schema_version")
            ocpp_versions = await tx.fetchall("SELECT version FROM ocpp_schema_version")
    assert len(hub_versions) == len(MIGRATIONS)
    assert [r[0] for r in ocpp_versions] == [1]
