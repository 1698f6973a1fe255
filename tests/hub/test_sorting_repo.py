"""The sorting repository on a real SQLite store: a line's site (for its desired state)."""

from __future__ import annotations

from pathlib import Path

from hub.store import Store
from hub.store.repo import sorting as repo


async def test_line_site(tmp_path: Path) -> None:
    async with Store(tmp_path / "hub.db") as store:
        async with store.transaction() as tx:
            await repo.add_plan(
                tx, "L1", "HUB-A", (("S1", "CH01"),), "EX", "HOLD", now_ms=1, actor="a"
            )
            await repo.add_plan(tx, "L2", "HUB-B", (), "EX", "HOLD", now_ms=2, actor="a")
            # A second plan for the same line keeps its site.
            await repo.add_plan(tx, "L1", "HUB-A", (), "EX", "HOLD", now_ms=3, actor="a")
        async with store.read() as tx:
            assert await repo.line_site(tx, "L1") == "HUB-A"
            assert await repo.line_site(tx, "L2") == "HUB-B"
            # A device that is no sorting line (or has had no plan), and hostile ids: None.
            for other in ("CAB-1", "", "L1' OR '1'='1", "L%", "x" * 10_000):
                assert await repo.line_site(tx, other) is None, other
