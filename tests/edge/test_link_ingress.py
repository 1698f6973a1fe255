"""Link ingress: hostile desired-state payloads are dropped and counted, never raised."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from edge.link import Link
from edge.settings import BrokerSettings
from lockerhub.codec import CONTENT_TYPE_PROTOBUF, encode
from lockerhub.v1 import device_pb2


def _msg(topic: str, payload: Any) -> Any:
    return SimpleNamespace(
        topic=topic, payload=payload, properties=SimpleNamespace(ContentType=CONTENT_TYPE_PROTOBUF)
    )


def test_hostile_desired_payloads() -> None:
    link = Link(BrokerSettings(), site="s", device="d", will=device_pb2.DeviceStatus())
    desired = "lockerhub/v1/s/d/desired"
    assert link._decode(_msg(desired, b"")) is None  # cleared: not a state, not a drop
    assert link.dropped == {}
    big = device_pb2.DesiredState(version=1, ts_ms=1_800_000_000_000)
    big.reservations.extend(
        device_pb2.ReserveCompartment(parcel_id=f"P{i:08d}", compartment_id="C01")
        for i in range(80_000)
    )
    assert link._decode(_msg(desired, encode(big))) is None
    assert link._decode(_msg(desired, b"\xff\x00garbage")) is None
    assert link._decode(_msg(desired, 42)) is None
    assert link._decode(_msg("lockerhub/v1/s/other/desired", b"x")) is None
    assert sum(link.dropped.values()) == 4
    assert link.dropped.get("oversized") == 1
    ok = device_pb2.DesiredState(version=2, ts_ms=1_800_000_000_000)
    assert link._decode(_msg(desired, encode(ok))) == ok
