"""Events are applied in arrival order with gap repair, as docs/asyncapi.yaml states; the docs
name every topic kind the code has."""

from __future__ import annotations

from pathlib import Path

import yaml

from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2
from tests.hub.conftest import HubHarness, eventually
from tests.hub.test_flow import online
from tests.hub.test_lifecycle import commands_until

DOCS = Path(__file__).resolve().parents[2] / "docs"


async def test_an_event_is_applied_when_it_arrives_and_the_gap_is_asked_for(
    hub: HubHarness,
) -> None:
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        door = device_pb2.DoorChanged(compartment_id="A01", open=False, commanded=True)
        await cab.event(door_changed=door)  # seq 1
        cab.seq = 10
        await cab.event(door_changed=door)  # seq 11 while 2-10 are missing
        resend = await commands_until(cab, "resend_events")
        assert (resend.resend_events.from_seq, resend.resend_events.to_seq) == (2, 10)
        rows = await eventually(lambda: hub.sql("SELECT seq FROM device_events ORDER BY seq"))
        assert rows == [(1,), (11,)]  # 11 was applied without waiting for 2-10


def test_the_contract_states_arrival_order() -> None:
    doc = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    text = " ".join(doc["channels"]["event"]["description"].split())
    assert "in sequence order, whatever" not in text
    assert "in the order events ARRIVE, not in sequence order" in text
    assert "ResendEvents" in text


def test_architecture_names_every_topic_kind() -> None:
    text = (DOCS / "architecture.md").read_text()
    for kind in Kind:
        assert f"`{kind.value}`" in text, kind
