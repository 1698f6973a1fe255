"""Fuzzing the OCPP frame decoder: in isolation, and through a live central system's socket.

A bounded number of examples runs with the suite; ``make soak`` runs the long variants (slow).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from hub.ocpp import frames
from hub.ocpp.credentials import basic_header
from tests.support.ocpp import BOOT, Harness, central_system, password

ACTIONS = [
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "MeterValues",
    "StopTransaction",
    "DataTransfer",
    "RemoteStartTransaction",
    "NoSuchAction",
]
KEYS = ["connectorId", "idTag", "meterStart", "status", "errorCode", "meterValue", "vendorId"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
call_like = st.builds(
    lambda kind, uid, action, payload, cut: json.dumps([kind, uid, action, payload][:cut]),
    st.sampled_from([2, 3, 4, 5, "2", 2.0, True]),
    st.text(max_size=40) | st.integers(),
    st.sampled_from(ACTIONS) | st.text(max_size=70),
    json_values,
    st.integers(0, 5),
)
deep = st.builds(
    lambda n, opener: opener * n + ("]" if opener == "[" else "}") * n,
    st.integers(0, 20_000),
    st.sampled_from(["[", "{"]),
)
raw_frames = (
    call_like
    | deep
    | st.text(max_size=200)
    | json_values.map(json.dumps)
    | st.binary(max_size=50)
    | st.builds(lambda s: f'[2,"x","Heartbeat",{{}}]{s}', st.text(max_size=5))
)


def check_decoded(raw: str | bytes) -> frames.Frame:
    frame = frames.decode(raw)
    assert isinstance(
        frame,
        frames.CallFrame
        | frames.ResultFrame
        | frames.ErrorFrame
        | frames.Rejected
        | frames.Dropped,
    )
    if isinstance(frame, frames.Dropped):
        assert frame.reason in frames.DROP_REASONS
    else:
        assert 0 < len(frame.unique_id) <= frames.MAX_UNIQUE_ID
    if isinstance(frame, frames.Rejected):
        answer = json.loads(frames.call_error(frame.unique_id, frame.code, frame.description))
        assert answer[0] == 4
        assert answer[2] in frames.ERROR_CODES
    if isinstance(frame, frames.CallFrame):
        assert isinstance(frame.payload, dict)
        assert len(frame.action) <= frames.MAX_ACTION
    return frame


@settings(max_examples=300, deadline=None)
@given(raw_frames)
def test_decoder_never_raises_and_bounds_what_it_returns(raw: str | bytes) -> None:
    check_decoded(raw)


@pytest.mark.slow
@settings(max_examples=20_000, deadline=None)
@given(raw_frames)
def test_decoder_soak(raw: str | bytes) -> None:
    check_decoded(raw)


class LiveCentral:
    """A central system on its own event loop thread, for synchronous hypothesis tests."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.harness: Harness | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ocpp-fuzz-loop")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with central_system(self._tmp_path) as harness:
            self.harness = harness
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> LiveCentral:
        self._thread.start()
        assert self._ready.wait(60)
        assert self.error is None, self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert self.error is None, self.error

    def run(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCentral]:
    with LiveCentral(tmp_path_factory.mktemp("ocpp-fuzz")) as central:
        yield central


class Pile:
    """One authenticated, booted raw connection, reopened if the server closes it."""

    def __init__(self, live: LiveCentral) -> None:
        assert live.harness is not None
        self.url = live.harness.url("pile-a")
        self.ws: ClientConnection | None = None

    def socket(self) -> ClientConnection:
        if self.ws is None:
            self.ws = connect(
                self.url,
                subprotocols=[Subprotocol("ocpp1.6")],
                additional_headers={"Authorization": basic_header("pile-a", password("pile-a"))},
            )
            self.ws.send(json.dumps(BOOT))
            assert json.loads(self.ws.recv(10))[0] == 3
        return self.ws

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


def exchange(pile: Pile, raw: str | bytes) -> None:
    """Send a fuzz frame, then a heartbeat: the hub answers at most once, then the heartbeat."""
    ws = pile.socket()
    ws.send(raw)
    ws.send(json.dumps([2, "hb-fuzz", "Heartbeat", {}]))
    answers = []
    while True:
        answer = json.loads(ws.recv(10))
        if answer[1] == "hb-fuzz":
            break
        answers.append(answer)
    assert answer[0] == 3
    assert len(answers) <= 1, answers
    for a in answers:
        assert a[0] in (3, 4)
        assert 0 < len(a[1]) <= frames.MAX_UNIQUE_ID
        if a[0] == 4:
            assert a[2] in frames.ERROR_CODES


def fuzz_live(live: LiveCentral, examples: int) -> None:
    pile = Pile(live)

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(raw_frames)
    def run(raw: str | bytes) -> None:
        exchange(pile, raw)

    try:
        run()
    finally:
        pile.close()
    harness = live.harness
    assert harness is not None

    async def state() -> tuple[list[str], list[dict[str, object]]]:
        async with harness.store.read() as tx:
            rows = await tx.fetchall("SELECT id FROM devices")
        return [r["id"] for r in rows], await harness.system.sessions.sessions("pile-a")

    devices, sessions = live.run(state())
    # Fuzz tags are never on the local list, fuzz ids never provisioned: nothing was stored.
    assert devices == ["pile-a"]
    assert sessions == []
    assert [p.pile_id for p in harness.system.piles()] == ["pile-a"]


def test_live_socket_fuzz(live: LiveCentral) -> None:
    fuzz_live(live, 60)


@pytest.mark.slow
def test_live_socket_fuzz_soak(live: LiveCentral) -> None:
    fuzz_live(live, 3000)
