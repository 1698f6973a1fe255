"""Payload decoding: both encodings accepted, malformed, oversized and hostile input refused."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockerhub.codec import CONTENT_TYPE_JSON, decode, encode, encode_json
from lockerhub.errors import PayloadError
from lockerhub.topics import Kind
from lockerhub.v1 import common_pb2, device_pb2

TS = 1_800_000_000_000


def deposited(**kw: object) -> device_pb2.DeviceEvent:
    fields: dict[str, object] = {"event_id": "e-1", "seq": 1, "ts_ms": TS}
    fields.update(kw)
    return device_pb2.DeviceEvent(
        deposited=device_pb2.Deposited(parcel_id="P1", compartment_id="A01"), **fields
    )


def test_binary_and_json_decode_to_the_same_message() -> None:
    msg = deposited()
    assert decode(Kind.EVENT, encode(msg)) == msg
    assert decode(Kind.EVENT, encode_json(msg), content_type=CONTENT_TYPE_JSON) == msg
    assert (
        decode(Kind.EVENT, encode_json(msg), content_type="application/json; charset=utf-8") == msg
    )


@pytest.mark.parametrize(
    ("payload", "content_type", "reason"),
    [
        (b"\xff\xff\xff", None, "undecodable"),
        (b"{not json", CONTENT_TYPE_JSON, "undecodable"),
        (b'{"eventId": 5, "bogus": 1}', CONTENT_TYPE_JSON, "undecodable"),
        (b"\xc3\x28", CONTENT_TYPE_JSON, "undecodable"),
        (b"", None, "invalid"),
        (b"x" * 70_000, None, "oversized"),
        (b"<xml/>", "text/xml", "content_type"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(
    payload: bytes, content_type: str | None, reason: str
) -> None:
    with pytest.raises(PayloadError) as err:
        decode(Kind.EVENT, payload, content_type=content_type)
    assert err.value.reason == reason


def test_deeply_nested_json_is_refused_not_crashing() -> None:
    hostile = ("[" * 100_000 + "]" * 100_000).encode()
    with pytest.raises(PayloadError):
        decode(Kind.EVENT, hostile, content_type=CONTENT_TYPE_JSON, max_bytes=1_000_000)


@pytest.mark.parametrize(
    "msg",
    [
        deposited(event_id=""),
        deposited(seq=0),
        deposited(ts_ms=0),
        deposited(ts_ms=10**16),
        deposited(event_id="a/b"),
        deposited(event_id="x" * 200),
        device_pb2.DeviceEvent(event_id="e", seq=1, ts_ms=TS),
    ],
)
def test_invalid_events(msg: device_pb2.DeviceEvent) -> None:
    with pytest.raises(PayloadError) as err:
        decode(Kind.EVENT, encode(msg))
    assert err.value.reason == "invalid"


def test_invalid_status_and_telemetry() -> None:
    dup = device_pb2.DeviceStatus(
        state=device_pb2.DeviceStatus.STATE_ONLINE,
        ts_ms=TS,
        compartments=[
            common_pb2.CompartmentSpec(
                compartment_id="A", inner=common_pb2.Dimensions(width_mm=1, height_mm=1, depth_mm=1)
            )
        ]
        * 2,
    )
    with pytest.raises(PayloadError):
        decode(Kind.STATUS, encode(dup))
    nan = device_pb2.Telemetry(ts_ms=TS, energy_wh=float("nan"))
    with pytest.raises(PayloadError):
        decode(Kind.TELEMETRY, encode(nan))


@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_escape_as_other_errors(data: bytes) -> None:
    for kind in Kind:
        with contextlib.suppress(PayloadError):
            decode(kind, data)
        with contextlib.suppress(PayloadError):
            decode(kind, data, content_type=CONTENT_TYPE_JSON)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_escapes_as_other_errors(value: object) -> None:
    with contextlib.suppress(PayloadError):
        decode(Kind.COMMAND, json.dumps(value).encode(), content_type=CONTENT_TYPE_JSON)
