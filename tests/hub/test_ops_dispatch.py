"""``lockerhub ops vehicles ...`` and ``lockerhub ops plan ...`` against a running hub; the roles
the new RPCs need."""

from __future__ import annotations

import asyncio
import json

import pytest

from hub.api.auth import Role, required_role
from lockerhub.v1 import dispatch_pb2, vehicles_pb2
from ops import cli as ops
from tests.hub.conftest import HubHarness
from tests.hub.test_vehicles import zoned_hub

__all__ = ["zoned_hub"]


async def run_ops(
    hub: HubHarness, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    common = ["ops", "--target", hub.app.grpc_address]
    code = await asyncio.to_thread(ops.main, [*common, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_new_rpcs_need_their_roles() -> None:
    service = vehicles_pb2.DESCRIPTOR.services_by_name["VehicleService"]
    for method in service.methods:
        want = Role.VIEWER if method.name.startswith(("Get", "List")) else Role.OPERATOR
        assert required_role(f"/{service.full_name}/{method.name}") == want, method.name
    dispatch = dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name
    assert required_role(f"/{dispatch}/GetRoutePlan") == Role.VIEWER
    assert required_role(f"/{dispatch}/ReplanRoutes") == Role.OPERATOR


async def test_vehicles_and_plans_from_the_command_line(
    zoned_hub: HubHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    hub = zoned_hub
    register = [
        "vehicles", "register", "EB-1", "--plate", "FRAME-77", "--class", "e_bike",
        "--parcels", "20", "--battery-kwh", "1", "--kwh-per-km", "0.02",
        "--permits", "old-town,campus", "--depot", hub.site, "--driver", "R-9", "--trained",
        "--insured-until", "2031-01-01",
    ]  # fmt: skip
    code, out, err = await run_ops(hub, capsys, *register)
    assert (code, err) == (0, "")
    assert "EB-1" in out
    assert "e_bike" in out
    assert "campus,old-town" in out
    assert "2031-01-01 00:00" in out
    code, out, err = await run_ops(hub, capsys, *register)
    assert code == 1
    assert "ALREADY_EXISTS" in err
    code, _, err = await run_ops(hub, capsys, *register[:-1], "31/01/2031")
    assert code == 2
    assert "--insured-until" in err
    update = [*register[:2], *register[2:]]
    update[1] = "update"
    update[update.index("20")] = "25"
    code, out, _ = await run_ops(hub, capsys, *update)
    assert code == 0
    assert " 25 " in out
    code, out, _ = await run_ops(hub, capsys, "--json", "vehicles", "list", "--class", "e_bike")
    assert code == 0
    (listed,) = json.loads(out)["vehicles"]
    assert listed["vehicleId"] == "EB-1"
    assert listed["capacityParcels"] == 25

    # Nothing sorted yet: an empty plan, stored and shown again.
    code, out, _ = await run_ops(hub, capsys, "--json", "plan", "make", "--hub-site", hub.site)
    assert code == 0
    plan_id = json.loads(out)["planId"]
    code, out, _ = await run_ops(hub, capsys, "plan", "show")
    assert code == 0
    assert f"plan {plan_id}" in out
    code, _, err = await run_ops(hub, capsys, "plan", "show", "--vehicle", "EB-1")
    assert code == 1
    assert "NOT_FOUND" in err
    code, _, err = await run_ops(hub, capsys, "plan", "make", "--hub-site", hub.site,
                                 "--containers", "x=y")  # fmt: skip
    assert code == 2
    assert "SITE=COUNT" in err
    code, out, _ = await run_ops(
        hub, capsys, "plan", "replan", plan_id, "--exclude", "EB-1", "--reason", "puncture"
    )
    assert code == 0
    assert f"replaces {plan_id}" in out
    assert "excluded from this plan" in out

    code, out, _ = await run_ops(hub, capsys, "vehicles", "retire", "EB-1", "--reason", "stolen")
    assert code == 0
    assert "retired" in out
    code, out, _ = await run_ops(hub, capsys, "vehicles", "list")
    assert "EB-1" not in out
