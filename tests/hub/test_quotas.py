"""Per-carrier compartment quotas: the pure wrapper around any allocator, and SetCarrierQuota
through real gRPC with the allocator honouring it."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import grpc
import pytest

from hub.parcels.allocation import FreeSlot, ParcelDemand, allocate_smallest_fit, fits
from hub.parcels.quotas import QuotaRules, allocate_with_quotas
from lockerhub.v1 import carriers_pb2, common_pb2, dispatch_pb2
from tests.hub.conftest import HubHarness
from tests.hub.test_flow import announcement, online
from tests.hub.test_tenancy import carriers, hub, md, register_carriers  # noqa: F401

SITE = "S1"


def slot(cab: str, comp: str, size: int = 400) -> FreeSlot:
    return FreeSlot(cab, comp, SITE, size, size, size, 30_000, "ambient")


def parcel(pid: str, size: int = 100) -> ParcelDemand:
    return ParcelDemand(pid, SITE, size, size, size, 1000, "ambient")


def test_no_rules_is_the_allocator_itself() -> None:
    slots = [slot("C1", f"A{i}") for i in range(5)]
    parcels = [parcel(f"P{i}") for i in range(7)]
    rules = QuotaRules()
    assert allocate_with_quotas(
        allocate_smallest_fit, parcels, ["A"] * 7, slots, rules
    ) == allocate_smallest_fit(parcels, slots)


def test_reserved_compartments_go_to_their_carrier_only() -> None:
    slots = [slot("C1", "A1"), slot("C1", "A2"), slot("C1", "A3")]
    rules = QuotaRules(reserved={("C1", "A1"): "B", ("C1", "A2"): "B"})
    parcels = [parcel(f"PA{i}") for i in range(3)] + [parcel("PB")]
    got = allocate_with_quotas(allocate_smallest_fit, parcels, ["A", "A", "A", "B"], slots, rules)
    a_slots = {slots[i].compartment_id for i in got[:3] if i is not None}
    assert a_slots == {"A3"}  # only one of A's three parcels finds a compartment
    assert got[3] is not None
    assert slots[got[3]].compartment_id in {"A1", "A2"}
    # City parcels ("" carrier) are kept out too.
    assert allocate_with_quotas(allocate_smallest_fit, [parcel("P")], [""], slots[:2], rules) == [
        None
    ]


def test_caps_count_what_the_carrier_already_holds() -> None:
    slots = [slot(c, f"A{i}") for c in ("C1", "C2") for i in range(4)]
    rules = QuotaRules(caps={("A", "C1"): 3}, used={("A", "C1"): 2})
    parcels = [parcel(f"P{i}") for i in range(6)]
    got = allocate_with_quotas(allocate_smallest_fit, parcels, ["A"] * 6, slots, rules)
    per_cab = Counter(slots[i].cabinet_id for i in got if i is not None)
    assert (per_cab["C1"], per_cab["C2"]) == (1, 4)
    assert sum(i is not None for i in got) == 5


@pytest.mark.parametrize("seed", range(30))
def test_random_instances_respect_every_rule(seed: int) -> None:
    rng = random.Random(seed)
    cabs = [f"C{i}" for i in range(rng.randint(1, 4))]
    slots = [
        slot(c, f"{c}-{j}", rng.choice([150, 250, 400]))
        for c in cabs
        for j in range(rng.randint(1, 6))
    ]
    carriers_ = ["A", "B", "C", ""]
    reserved = {
        (s.cabinet_id, s.compartment_id): rng.choice(carriers_[:3])
        for s in slots
        if rng.random() < 0.3
    }
    caps = {
        (c, cab): rng.randint(1, 3) for c in carriers_[:3] for cab in cabs if rng.random() < 0.4
    }
    used = {k: rng.randint(0, 2) for k in caps}
    rules = QuotaRules(caps=caps, reserved=reserved, used=used)
    parcels = [parcel(f"P{i}", rng.choice([100, 200, 300, 500])) for i in range(rng.randint(0, 20))]
    owners = [rng.choice(carriers_) for _ in parcels]
    got = allocate_with_quotas(allocate_smallest_fit, parcels, owners, slots, rules)
    placed = [i for i in got if i is not None]
    assert len(placed) == len(set(placed))  # a slot at most once
    count: Counter[tuple[str, str]] = Counter()
    for p, s in zip(parcels, got, strict=True):
        if s is None:
            continue
        assert fits(p, slots[s])
    for owner, s in zip(owners, got, strict=True):
        if s is None:
            continue
        key = (slots[s].cabinet_id, slots[s].compartment_id)
        assert reserved.get(key, owner) == owner
        count[(owner, slots[s].cabinet_id)] += 1
    for key, cap in caps.items():
        assert count[key] <= max(0, cap - used[key])
    # Maximal: no unplaced parcel fits a slot left free that its carrier may use under its cap.
    free = set(range(len(slots))) - set(placed)
    for p, owner, s in zip(parcels, owners, got, strict=True):
        if s is not None:
            continue
        for f in free:
            cab = slots[f].cabinet_id
            allowed = reserved.get((cab, slots[f].compartment_id), owner) == owner
            room = (owner, cab) not in caps or count[(owner, cab)] < caps[(owner, cab)] - used[
                (owner, cab)
            ]
            assert not (allowed and room and fits(p, slots[f])), (p, slots[f])


async def test_a_quota_keeps_carrier_a_out_of_bs_compartments(hub: HubHarness) -> None:  # noqa: F811
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await register_carriers(hub)
        c = carriers(hub)
        # B holds A02 and A03 (the only ambient compartments a 300x150x100 parcel fits).
        quota = await c.SetCarrierQuota(
            carriers_pb2.SetCarrierQuotaRequest(
                quota=carriers_pb2.CarrierQuota(
                    carrier_id="CAR-B", cabinet_id="CAB-1", reserved_compartments=["A02", "A03"]
                )
            ),
            metadata=md("root"),
        )
        assert list(quota.reserved_compartments) == ["A02", "A03"]
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(parcels=[announcement("P-A", hub.site)]),
            metadata=md("a-op"),
        )
        assert not resp.outcomes[0].accepted
        assert resp.outcomes[0].reason == "no free compartment fits"
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[announcement("P-B1", hub.site), announcement("P-B2", hub.site)]
            ),
            metadata=md("b-op"),
        )
        assert sorted(o.compartment_id for o in resp.outcomes) == ["A02", "A03"]
        # A cap: A may hold at most one compartment of CAB-1.
        await c.SetCarrierQuota(
            carriers_pb2.SetCarrierQuotaRequest(
                quota=carriers_pb2.CarrierQuota(
                    carrier_id="CAR-A", cabinet_id="CAB-1", max_compartments=1
                )
            ),
            metadata=md("root"),
        )
        small = common_pb2.Dimensions(width_mm=50, height_mm=100, depth_mm=100)
        resp = await hub.dispatch.AnnounceParcels(
            dispatch_pb2.AnnounceParcelsRequest(
                parcels=[
                    announcement("P-A1", hub.site, dimensions=small),
                    announcement("P-A2", hub.site, dimensions=small),
                ]
            ),
            metadata=md("a-op"),
        )
        assert [o.accepted for o in resp.outcomes].count(True) == 1
        listed = await c.ListCarrierQuotas(
            carriers_pb2.ListCarrierQuotasRequest(cabinet_id="CAB-1"), metadata=md("city")
        )
        assert {(q.carrier_id, q.max_compartments) for q in listed.quotas} == {
            ("CAR-A", 1),
            ("CAR-B", 0),
        }


@pytest.mark.parametrize(
    ("quota", "code"),
    [
        (dict(carrier_id="CAR-A", cabinet_id="CAB-1", reserved_compartments=["Z99"]),
         "NOT_FOUND"),
        (dict(carrier_id="CAR-A", cabinet_id="NOPE"), "NOT_FOUND"),
        (dict(carrier_id="CAR-NOPE", cabinet_id="CAB-1"), "NOT_FOUND"),
        (dict(carrier_id="CAR-A", cabinet_id="CAB-1", reserved_compartments=["A01", "A01"]),
         "INVALID_ARGUMENT"),
        (dict(carrier_id="CAR-A", cabinet_id="CAB-1", reserved_compartments=["x"] * 5000),
         "INVALID_ARGUMENT"),
        (dict(carrier_id="CAR-A", cabinet_id="CAB-1", reserved_compartments=["../*"]),
         "INVALID_ARGUMENT"),
        (dict(carrier_id="CAR-A", cabinet_id="CAB-1", max_compartments=2**31), "INVALID_ARGUMENT"),
        (dict(carrier_id="CAR-A", cabinet_id="CAB-1", reserved_compartments=["A03"]),
         "FAILED_PRECONDITION"),
        (dict(carrier_id="", cabinet_id="CAB-1"), "INVALID_ARGUMENT"),
    ],
)  # fmt: skip
async def test_bad_quotas_are_refused(hub: HubHarness, quota: dict[str, Any], code: str) -> None:  # noqa: F811
    async with hub.cabinet("CAB-1") as cab:
        await cab.birth()
        await online(hub, "CAB-1")
        await register_carriers(hub)
        c = carriers(hub)
        await c.SetCarrierQuota(
            carriers_pb2.SetCarrierQuotaRequest(
                quota=carriers_pb2.CarrierQuota(
                    carrier_id="CAR-B", cabinet_id="CAB-1", reserved_compartments=["A03"]
                )
            ),
            metadata=md("root"),
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await c.SetCarrierQuota(
                carriers_pb2.SetCarrierQuotaRequest(quota=carriers_pb2.CarrierQuota(**quota)),
                metadata=md("root"),
            )
        assert err.value.code().name == code
        assert await hub.sql("SELECT carrier, compartment FROM carrier_reserved") == [
            ("CAR-B", "A03")
        ]
