"""Where the planner's empty reusable containers to collect come from (docs/dispatch.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from hub.store import Tx
from hub.store.repo import containers as containers_repo


class ContainerSource(Protocol):
    """The count of empty reusable containers waiting at each site, for one plan."""

    async def empty_containers(self, tx: Tx, requested: Mapping[str, int]) -> dict[str, int]: ...


class RequestContainers:
    """The request's counts as they are (no tracking: tests and benchmarks)."""

    async def empty_containers(self, tx: Tx, requested: Mapping[str, int]) -> dict[str, int]:
        return dict(requested)


class TrackedContainers:
    """The default: containers emptied at each site and not loaded again (container tracking).

    A site named in the request takes the request's count instead (an operator's override,
    0 included: "leave them there today"); sites not named keep the tracked count.
    """

    async def empty_containers(self, tx: Tx, requested: Mapping[str, int]) -> dict[str, int]:
        waiting = await containers_repo.empty_containers_by_site(tx)
        counts = {site: len(items) for site, items in waiting.items()}
        counts.update(requested)
        return counts
