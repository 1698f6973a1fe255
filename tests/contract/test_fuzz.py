"""Fuzzing every decoder a device or an operator's file reaches: the MQTT payload codec (binary
and JSON, every message kind) and the settings loader (TOML and environment). Only the package's
own errors may come out, never a hang; what decodes also validates again after a round trip.

``make test`` runs a bounded number of examples; ``make soak`` (marked slow) runs many more."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import ConfigError as EdgeConfigError
from edge.settings import EdgeSettings
from hub.errors import ConfigError as HubConfigError
from hub.settings import HubSettings
from lockerhub.codec import (
    CONTENT_TYPE_JSON,
    MAX_COUNTER,
    decode,
    encode,
    encode_json,
)
from lockerhub.errors import PayloadError
from lockerhub.topics import Kind
from lockerhub.v1 import device_pb2
from tests.support.fuzz import TOML_DOCS, TOML_VALUES, messages, payloads, toml_text

# make test runs a fixed sample (derandomized: the same inputs every run, so CI is repeatable);
# make soak runs the long variants on fresh random inputs.
FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,
)
LONG = settings(
    max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
KINDS = list(Kind)


def check_decoded(kind: Kind, message: Message) -> None:
    """What the codec let through is sane, and decodes again to itself in both encodings."""
    assert isinstance(message, type(decode(kind, encode(message))))
    assert decode(kind, encode(message)) == message
    # The JSON mapping has no place for unknown fields (a newer sender's additions, kept by the
    # binary decoder): compare without them.
    known = type(message)()
    known.CopyFrom(message)
    known.DiscardUnknownFields()
    assert decode(kind, encode_json(message), content_type=CONTENT_TYPE_JSON) == known
    for field, value in message.ListFields():
        if isinstance(value, float):
            assert math.isfinite(value), field.name
        if isinstance(value, int) and field.name in ("seq", "boot_count", "version"):
            assert value <= MAX_COUNTER
    if isinstance(message, device_pb2.DeviceEvent) and message.HasField("alarm"):
        assert all(c.isprintable() for c in message.alarm.detail)


def fuzz_codec(kind: Kind, case: tuple[bytes, str]) -> None:
    payload, content_type = case
    try:
        message = decode(kind, payload, content_type=content_type)
    except PayloadError as exc:
        reason = exc.reason
    else:
        check_decoded(kind, message)
        return
    assert reason in ("oversized", "undecodable", "content_type", "invalid")


@pytest.mark.parametrize("kind", KINDS, ids=[k.value for k in KINDS])
@FAST
@given(data=st.data())
def test_codec_fuzz(kind: Kind, data: st.DataObject) -> None:
    fuzz_codec(kind, data.draw(payloads(kind)))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS, ids=[k.value for k in KINDS])
@LONG
@given(data=st.data())
def test_codec_fuzz_long(kind: Kind, data: st.DataObject) -> None:
    fuzz_codec(kind, data.draw(payloads(kind)))


@FAST
@given(message=messages(Kind.EVENT))
def test_structured_events_decode_or_fail_cleanly(message: device_pb2.DeviceEvent) -> None:
    fuzz_codec(Kind.EVENT, (encode(message), "application/x-protobuf"))


def fuzz_settings(tmp_path: Path, text: str, env: dict[str, str]) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for cls, error in ((HubSettings, HubConfigError), (EdgeSettings, EdgeConfigError)):
        try:
            cls.load(path, env=env)  # type: ignore[attr-defined]
        except error:
            pass  # expected: the message names the key
        except Exception as exc:  # pragma: no cover - a crash is the finding
            raise AssertionError(f"{cls.__name__}.load raised {exc!r} for:\n{text:.500}") from exc


_ENV = st.dictionaries(
    st.sampled_from(
        (
            "LOCKERHUB_HUB_BROKER__PORT",
            "LOCKERHUB_HUB_GRPC__TLS_KEY",
            "LOCKERHUB_HUB_SITES",
            "LOCKERHUB_HUB_AUTH",
            "LOCKERHUB_HUB_X",
            "LOCKERHUB_EDGE_BROKER__PORT",
            "LOCKERHUB_EDGE_DEVICE__ID",
            "LOCKERHUB_EDGE_STORAGE__OUTBOX_MAX",
        )
    ),
    st.text(max_size=20) | TOML_VALUES.map(str),
    max_size=2,
)


@FAST
@given(doc=TOML_DOCS, env=_ENV)
def test_settings_fuzz(
    tmp_path_factory: pytest.TempPathFactory, doc: dict[str, object], env: dict[str, str]
) -> None:
    fuzz_settings(tmp_path_factory.mktemp("cfg"), toml_text(doc), env)


@FAST
@given(text=st.text(max_size=300))
def test_settings_fuzz_raw_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    fuzz_settings(tmp_path_factory.mktemp("cfg"), text, {})


@pytest.mark.slow
@LONG
@given(doc=TOML_DOCS, env=_ENV, text=st.text(max_size=300))
def test_settings_fuzz_long(
    tmp_path_factory: pytest.TempPathFactory, doc: dict[str, object], env: dict[str, str], text: str
) -> None:
    path = tmp_path_factory.mktemp("cfg")
    fuzz_settings(path, toml_text(doc), env)
    fuzz_settings(path, text, {})


def test_deeply_nested_toml_is_a_config_error(tmp_path: Path) -> None:
    # tomllib recurses per nesting level: thousands of levels must not escape as RecursionError.
    fuzz_settings(tmp_path, "broker = " + "[" * 5000 + "]" * 5000 + "\n", {})
    fuzz_settings(tmp_path, "broker = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", {})


def test_deeply_nested_json_in_the_environment_is_a_config_error(tmp_path: Path) -> None:
    fuzz_settings(tmp_path, "", {"LOCKERHUB_HUB_SITES": "[" * 100_000 + "]" * 100_000})
