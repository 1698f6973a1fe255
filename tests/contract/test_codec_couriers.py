"""The desired state's courier fields are validated at the cabinet's ingress, and the courier
token contract round-trips and refuses tampering."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerhub import courier_token
from lockerhub.codec import decode
from lockerhub.errors import ContractError, PayloadError
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2


def state() -> device_pb2.DesiredState:
    return device_pb2.DesiredState(
        version=1,
        ts_ms=int(time.time() * 1000),
        couriers=[device_pb2.CourierCredential(courier_id="K1", carrier_id="CA")],
        courier_token_key=b"k" * 32,
        barred_couriers=["K2"],
    )


def test_a_good_state_decodes() -> None:
    got = decode(Kind.DESIRED, state().SerializeToString(), max_bytes=1 << 20)
    assert isinstance(got, device_pb2.DesiredState)
    assert got.couriers[0].courier_id == "K1"


@pytest.mark.parametrize(
    "spoil",
    [
        lambda s: s.couriers.add(courier_id=""),
        lambda s: s.couriers.add(courier_id="a/#"),
        lambda s: s.couriers.add(courier_id="x" * 65),
        lambda s: s.couriers.add(courier_id="K3", carrier_id="C\x00"),
        lambda s: s.couriers.add(courier_id="K3", code_salt=b"s" * 65),
        lambda s: s.couriers.add(courier_id="K3", code_iterations=2**31),
        lambda s: s.barred_couriers.append("+"),
        lambda s: setattr(s, "courier_token_key", b"k" * 31),
        lambda s: s.reservations.add(parcel_id="P", compartment_id="C", carrier_id="#"),
    ],
)
def test_hostile_courier_fields_are_refused(
    spoil: Callable[[device_pb2.DesiredState], object],
) -> None:
    s = state()
    spoil(s)
    with pytest.raises(PayloadError):
        decode(Kind.DESIRED, s.SerializeToString(), max_bytes=1 << 20)


def test_token_round_trip_and_tampering() -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    now = int(time.time() * 1000)
    token = courier_token.sign(key, "K1", "CA", now + 60_000)
    claims = courier_token.verify(token, public, now)
    assert (claims.courier_id, claims.carrier_id) == ("K1", "CA")
    assert courier_token.sign(key, "K1", "CA", now + 60_000) != token  # a fresh nonce each time
    head, payload, sig = token.split(".")
    forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for bad in (
        f"{head}.{forged_payload}.{sig}",
        f"{head}.{payload}.{sig[:-4]}AAAA",
        token + "=",
        "",
        "LHC1",
        "x" * 10_000,
    ):
        with pytest.raises(ContractError):
            courier_token.verify(bad, public, now)
    with pytest.raises(ContractError, match="expired"):
        courier_token.verify(token, public, now + 60_000)
    with pytest.raises(ContractError):
        courier_token.verify(token, b"short", now)
