"""Python 3.11's ``asyncio.wait_for`` as it behaves in its race, on every call: for the tests of
``lockerhub.supervise.keep_cancel`` at the library boundaries (pymodbus, aiomqtt)."""

from __future__ import annotations

import asyncio


class RacyWaitFor:
    """``asyncio.wait_for`` returns the result and drops a cancel that lands in the same loop pass
    as the result (CPython gh-86296, fixed in 3.12). This one always does: parked until cancelled,
    then it answers. Once only, so that a test of code without the guard fails instead of hanging.
    CI caught `lockerhub edge` ignoring SIGTERM on a sorting line this way.

    Patch it over the library module's ``asyncio.wait_for`` after connecting.
    """

    def __init__(self) -> None:
        self.inside = asyncio.Event()
        self._real = asyncio.wait_for

    async def __call__(self, fut: asyncio.Future[object], timeout: float | None) -> object:
        if self.inside.is_set():
            return await self._real(fut, timeout)
        self.inside.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return await fut  # the response wins, the cancel is lost
        raise AssertionError("unreachable")
