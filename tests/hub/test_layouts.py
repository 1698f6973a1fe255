"""Issue 10.1: compartments come from the operator's inventory; a birth may only confirm them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edge.settings import CompartmentGroup, DriverSettings
from hub.errors import ConfigError
from hub.settings import HubSettings
from lockerhub.layout import parse_layout
from lockerhub.v1 import common_pb2, device_pb2, dispatch_pb2
from tests.hub.cabinet import LAYOUT
from tests.hub.conftest import HubHarness, eventually
from tests.hub.test_flow import announcement, online

LINE = device_pb2.DEVICE_KIND_SORTING_LINE
M = common_pb2.SIZE_CLASS_M
AMBIENT = common_pb2.TEMPERATURE_ZONE_AMBIENT


def fake_layout(n: int) -> tuple[Any, ...]:
    """``n`` made-up big compartments (what the sorting line's account announced)."""
    return tuple((f"Z{i:04d}", common_pb2.SIZE_CLASS_L, (410, 380, 640), AMBIENT) for i in range(n))


async def alarms(hub: HubHarness, device: str) -> list[str]:
    rows = await hub.sql(
        "SELECT detail FROM alarms WHERE device = ? AND kind = 'layout_mismatch' "
        "AND status = 'raised'",
        (device,),
    )
    return [d for (d,) in rows]


async def test_a_sorting_line_announcing_compartments_gets_none(hub: HubHarness) -> None:
    """The finding: a sorting line's account announced 1500 compartments and received 18 of the
    20 parcels allocated at its site. Now it gets none, and an alarm says what it claimed."""
    async with hub.cabinet("CAB-1") as cab, hub.cabinet("SORT-1", kind=LINE) as line:
        await cab.birth()
        await line.birth(fake_layout(1500))
        await online(hub, "CAB-1")
        await online(hub, "SORT-1")
        (detail,) = await eventually(lambda: alarms(hub, "SORT-1"))
        assert detail.startswith("1500 unprovisioned (Z0000, Z0001, Z0002, Z0003, Z0004 +1495)")
        assert await hub.sql("SELECT COUNT(*) FROM compartments WHERE device = 'SORT-1'") == [(0,)]

        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement(f"P-{i}", hub.site) for i in range(20)]
            )
        )
        placed = [o for o in resp.outcomes if o.accepted]
        # LAYOUT has two ambient compartments the 300x150x100 parcel fits (M and L).
        assert {(o.cabinet_id, o.compartment_id) for o in placed} == {
            ("CAB-1", "A02"),
            ("CAB-1", "A03"),
        }
        assert all(o.reason == "no free compartment fits" for o in resp.outcomes if not o.accepted)


async def test_a_cabinet_birth_that_differs_confirms_only_what_matches(hub: HubHarness) -> None:
    """A02 reported as another size, A03 missing, one compartment invented: an alarm names them
    and nothing is allocated into any of them; the compartments that match still serve."""
    a01, a02, _a03, c01 = LAYOUT
    bigger_a02 = (a02[0], common_pb2.SIZE_CLASS_L, (410, 380, 640), AMBIENT)
    invented = ("X99", M, (190, 380, 640), AMBIENT)
    async with hub.cabinet("CAB-2") as cab:
        await cab.birth((a01, bigger_a02, c01, invented))
        await online(hub, "CAB-2")
        (detail,) = await eventually(lambda: alarms(hub, "CAB-2"))
        assert detail == "1 unprovisioned (X99); 1 missing (A03); 1 different (A02)"
        confirmed = await hub.sql(
            "SELECT id FROM compartments WHERE device = 'CAB-2' AND confirmed = 1 ORDER BY id"
        )
        assert confirmed == [("A01",), ("C01",)]
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-2", hub.site)])
        )
        assert not resp.outcomes[0].accepted  # only A02/A03 fit, and neither is confirmed

        # The cabinet comes back with the provisioned layout: the alarm clears, A02 serves.
        cab.boot_count += 1
        await cab.birth()
        await eventually(lambda: _cleared(hub, "CAB-2"))
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-3", hub.site)])
        )
        assert (resp.outcomes[0].cabinet_id, resp.outcomes[0].compartment_id) == ("CAB-2", "A02")


async def _cleared(hub: HubHarness, device: str) -> bool:
    await asyncio.sleep(0)
    return not await alarms(hub, device)


def test_the_compact_layout_expands_like_the_edge_driver() -> None:
    """``layout = "S:6,M:4,L:2"`` in the hub means what the same groups mean to the edge agent."""
    driver = DriverSettings(
        compartments=(
            CompartmentGroup(size="S", count=6),
            CompartmentGroup(size="M", count=4),
            CompartmentGroup(size="L", count=1, chilled=True),
            CompartmentGroup(size="L", count=1),
        )
    )
    edge = [s.__class__(**{**_fields(s), "board": 0}) for s in driver.compartment_specs()]
    assert list(parse_layout("S:6,M:4,L:1:chilled,L:1")) == edge
    assert [s.compartment_id for s in parse_layout("S:100")][-1] == "C100"
    # The edge's default profile is the demo's layout.
    assert list(parse_layout("S:6,M:4,L:2")) == [
        s.__class__(**{**_fields(s), "board": 0}) for s in DriverSettings().compartment_specs()
    ]


def _fields(spec: Any) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__slots__}


@pytest.mark.parametrize(
    ("device", "key"),
    [
        ({"id": "C1", "site": "S1"}, "devices[C1].layout"),
        ({"id": "C1", "site": "S1", "layout": "Q:3"}, "devices[C1].layout"),
        ({"id": "C1", "site": "S1", "layout": "S:0"}, "devices[C1].layout"),
        ({"id": "L1", "site": "S1", "kind": "sorting_line", "layout": "S:1"}, "devices[L1].layout"),
        ({"id": "C1", "site": "S9", "layout": "S:1"}, "devices[C1].site"),
        ({"id": "C1", "site": "S1", "kind": "robot"}, "devices[C1].kind"),
    ],
)
def test_inventory_settings_are_validated(device: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        HubSettings.from_mapping({"sites": [{"id": "S1"}], "devices": [device]})


def test_inventory_settings_from_toml_mapping() -> None:
    s = HubSettings.from_mapping(
        {
            "sites": [{"id": "S1"}],
            "devices": [
                {"id": "C1", "site": "S1", "layout": "S:10,M:8,L:4"},
                {"id": "L1", "site": "S1", "kind": "sorting_line"},
                {
                    "id": "C2",
                    "site": "S1",
                    "compartments": [
                        {"id": "A1", "size": "M", "width_mm": 1, "height_mm": 2, "depth_mm": 3}
                    ],
                },
            ],
        }
    )
    assert [d.kind for d in s.devices] == ["cabinet", "sorting_line", "cabinet"]
    assert s.devices[2].compartments[0].zone == "ambient"
