"""Couriers at a real edge agent (sim board, real broker): sign-in by code or signed app token,
checked offline against the desired state; hostile credentials and brute force refused."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent import EdgeAgent
from firmware_sim.cabinet import SimulatedCabinet
from lockerhub import courier_token
from lockerhub.v1 import device_pb2
from tests.edge.conftest import FakeHub, edge_settings, running, until
from tests.support.broker import BrokerHandle

KEY = Ed25519PrivateKey.generate()
CODE = "24681357"


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def credential(courier: str, carrier: str, code: str | None = None) -> device_pb2.CourierCredential:
    cred = device_pb2.CourierCredential(courier_id=courier, carrier_id=carrier)
    if code is not None:
        salt = secrets.token_bytes(16)
        cred.code_salt = salt
        cred.code_iterations = 1000
        cred.code_hash = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, 1000)
    return cred


def desired_state(version: int = 1) -> device_pb2.DesiredState:
    far = int(time.time() * 1000) + 3_600_000
    return device_pb2.DesiredState(
        version=version,
        ts_ms=int(time.time() * 1000),
        reservations=[
            device_pb2.ReserveCompartment(
                parcel_id="P-A", compartment_id="C01", expires_ms=far, carrier_id="CA"
            ),
            device_pb2.ReserveCompartment(
                parcel_id="P-B", compartment_id="C02", expires_ms=far, carrier_id="CB"
            ),
        ],
        couriers=[
            credential("K1", "CA", CODE),
            credential("K2", "CB", "13572468"),
            credential("K3", "CA", CODE),
        ],
        barred_couriers=["K3"],
        courier_token_key=raw_public(KEY),
    )


def token(courier: str, carrier: str, *, ttl_ms: int = 60_000, key: Ed25519PrivateKey = KEY) -> str:
    return courier_token.sign(key, courier, carrier, int(time.time() * 1000) + ttl_ms)


@pytest.fixture
def device_id() -> str:
    return f"cab-{secrets.token_hex(5)}"


async def settle(agent: EdgeAgent, sim: SimulatedCabinet, text: str, *, keypad: bool) -> None:
    """Present a credential and give the agent's input loop time to handle it (the checks below
    wait for events or look at the relay, so a slow loop fails them rather than passing)."""
    if keypad:
        await sim.enter_code(text)
    else:
        await sim.scan(text)
    await asyncio.sleep(0.3)


async def test_courier_sign_in_and_deposit_names_the_courier(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with running(EdgeAgent(settings, sim)) as agent, FakeHub(mosquitto, device_id) as hub:
        await hub.publish_desired(desired_state())
        await until(lambda: agent.desired_version == 1)
        # No courier signed in: the scan alone opens nothing.
        assert (await sim.courier_deposit("P-A", timeout_s=0.5)).opened is None
        # A forged (another key) and an expired token: refused, counted as failures.
        await settle(agent, sim, token("K1", "CA", key=Ed25519PrivateKey.generate()), keypad=False)
        await settle(agent, sim, token("K1", "CA", ttl_ms=-1000), keypad=False)
        assert (await sim.courier_deposit("P-A", timeout_s=0.5)).opened is None
        rejected = await hub.wait_event("pickup_code_rejected", 2)
        assert rejected[-1].pickup_code_rejected.consecutive_failures == 2
        # A valid token of K1 (carrier CA): B's parcel stays shut, A's opens.
        good = token("K1", "CA")
        await settle(agent, sim, good, keypad=False)
        assert (await sim.courier_deposit("P-B", timeout_s=0.5)).opened is None
        assert (await sim.courier_deposit("P-A", timeout_s=2)).opened == "C01"
        (dep,) = await hub.wait_event("deposited")
        assert (dep.deposited.parcel_id, dep.deposited.courier_id) == ("P-A", "K1")
        # The same token again is a replay, even by its own courier.
        await settle(agent, sim, good, keypad=False)
        assert agent.compartment("C02").parcel_id == "P-B"
        assert (await sim.courier_deposit("P-B", timeout_s=0.5)).opened is None
        # K2 (carrier CB) by keypad code: B's parcel opens and names K2.
        await settle(agent, sim, "*K2*13572468", keypad=True)
        assert (await sim.courier_deposit("P-B", timeout_s=2)).opened == "C02"
        deps = await hub.wait_event("deposited", 2)
        assert deps[-1].deposited.courier_id == "K2"


async def test_barred_and_brute_forced_couriers_are_locked_out(
    tmp_path: Path, mosquitto: BrokerHandle, device_id: str
) -> None:
    settings = edge_settings(tmp_path, mosquitto, device_id)  # keypad: 3 failures, 60 s
    sim = SimulatedCabinet(settings.driver.compartment_specs())
    async with running(EdgeAgent(settings, sim)) as agent, FakeHub(mosquitto, device_id) as hub:
        await hub.publish_desired(desired_state())
        await until(lambda: agent.desired_version == 1)
        # K3 is on the bad-conduct list: its right code and its signed token are refused.
        await settle(agent, sim, f"*K3*{CODE}", keypad=True)
        assert (await sim.courier_deposit("P-A", timeout_s=0.5)).opened is None
        for guess in ("11111111", "22222222"):  # brute force: the third failure locks
            await settle(agent, sim, f"*K1*{guess}", keypad=True)
        lockout = await hub.wait_event("alarm")
        assert lockout[-1].alarm.detail.startswith("keypad locked")
        # Locked out: even K1's right code opens nothing now.
        await settle(agent, sim, f"*K1*{CODE}", keypad=True)
        await settle(agent, sim, token("K1", "CA"), keypad=False)
        assert (await sim.courier_deposit("P-A", timeout_s=0.5)).opened is None
        assert sim.relay_pulses() == 0


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "**",
        "***",
        "*K1*",
        "*K1*abc",
        "*K1*" + "1" * 500,
        "*K9*24681357",
        "*K1*2468 1357",
        "*\x00*24681357",
    ],
)
def test_hostile_code_entries_are_refused(entry: str) -> None:
    from edge.couriers import check_code
    from lockerhub.errors import ContractError

    with pytest.raises(ContractError):
        check_code(entry, desired_state())


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "x",
        lambda t: t[:-2],
        lambda t: "LHC1." + "A" * 600,
        lambda t: t.replace("LHC1", "LHC2"),
        lambda t: "LHC1..",
        lambda t: "LHC1.%%%.%%%",
        lambda t: ".".join([t.split(".")[0], t.split(".")[1], "A" * 86]),
    ],
)
def test_forged_tokens_are_refused(mangle: object) -> None:
    from edge.couriers import NonceBook, check_token
    from lockerhub.errors import ContractError

    assert callable(mangle)
    with pytest.raises(ContractError):
        check_token(
            mangle(token("K1", "CA")), desired_state(), NonceBook(), int(time.time() * 1000)
        )


def test_token_of_another_carrier_and_replays() -> None:
    from edge.couriers import NonceBook, check_token
    from lockerhub.errors import ContractError

    now = int(time.time() * 1000)
    nonces = NonceBook()
    # Validly signed, but claiming K1 belongs to CB: the cabinet's list says CA.
    with pytest.raises(ContractError, match="carrier"):
        check_token(token("K1", "CB"), desired_state(), nonces, now)
    good = token("K1", "CA")
    assert check_token(good, desired_state(), nonces, now).courier_id == "K1"
    with pytest.raises(ContractError, match="replayed"):
        check_token(good, desired_state(), nonces, now)
    # The nonce book survives a restart (it is persisted as a blob).
    restored = NonceBook()
    restored.load_blob(nonces.to_blob())
    with pytest.raises(ContractError, match="replayed"):
        check_token(good, desired_state(), restored, now)
    restored.load_blob(b"\xff not json")
    restored.load_blob(b'{"x": "not an int"}')
