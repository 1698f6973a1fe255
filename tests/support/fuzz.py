"""Hypothesis strategies for fuzzing what devices and operators feed the platform: protobuf
messages of any shape (built from their descriptors, edge values included), their binary and
JSON encodings mutated, and TOML settings documents."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from lockerhub.codec import CONTENT_TYPE_JSON, CONTENT_TYPE_PROTOBUF, MESSAGE_TYPES, encode
from lockerhub.topics import Kind

# Numbers at and around every boundary the codec or SQLite cares about.
_EDGES = (0, 1, 2**31 - 1, 2**32 - 1, 2**53 - 1, 2**53, 2**63 - 1, 2**63, 2**64 - 1)
_TS = st.sampled_from((0, 1, 1_577_836_800_000, 1_767_225_600_000, 4_102_444_800_000, 2**62))
_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
# Short ids that pass the codec's id rule most of the time, plus hostile text.
_IDS = st.sampled_from(("A01", "C01", "P-1", "e1", "", "a/b", "#", "x" * 65, "\x00"))
_TEXT = st.one_of(_IDS, st.text(max_size=40), st.text(max_size=600).filter(lambda t: len(t) > 500))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _RANGES:
        low, high = _RANGES[t]
        edges = [v for v in _EDGES if low <= v <= high]
        base = st.integers(low, high) | st.sampled_from(edges)
        return _TS | base if field.name.endswith("_ms") else base
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        width = 32 if t == FieldDescriptor.TYPE_FLOAT else 64
        return st.floats(width=width) | st.sampled_from((0.0, 4.5, 1e308, -1.0))
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_STRING:
        return _TEXT
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if t == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.sampled_from(numbers) | st.integers(-5, 100)
    raise AssertionError(f"no strategy for {field.full_name}")


@st.composite
def _message_dict(draw: st.DrawFn, descriptor: Descriptor, depth: int) -> dict[str, Any]:
    """Field name -> value; at most one member of each oneof."""
    out: dict[str, Any] = {}
    chosen = {o.name: draw(st.sampled_from([None, *o.fields])) for o in descriptor.oneofs}
    for field in descriptor.fields:
        if field.containing_oneof is not None and chosen[field.containing_oneof.name] is not field:
            continue
        if field.containing_oneof is None and not draw(st.booleans()):
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth <= 0:
                continue
            value = _message_dict(field.message_type, depth - 1)
        else:
            value = _scalar(field)
        if field.label == FieldDescriptor.LABEL_REPEATED:
            out[field.name] = draw(st.lists(value, max_size=3))
        else:
            out[field.name] = draw(value)
    return out


def _fill(message: Message, values: dict[str, Any]) -> Message:
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.label == FieldDescriptor.LABEL_REPEATED:
                for item in value:
                    _fill(getattr(message, name).add(), item)
            else:
                _fill(getattr(message, name), value)
                getattr(message, name).SetInParent()
        elif field.label == FieldDescriptor.LABEL_REPEATED:
            getattr(message, name).extend(value)
        else:
            setattr(message, name, value)
    return message


def messages(kind: Kind, depth: int = 3) -> st.SearchStrategy[Message]:
    """Messages of ``kind`` with any field values the wire can carry."""
    cls = MESSAGE_TYPES[kind]
    return _message_dict(cls.DESCRIPTOR, depth).map(lambda d: _fill(cls(), d))


@st.composite
def _mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, cut or inserted."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "cut", "insert")))
        at = draw(st.integers(0, len(buf)))
        if op == "flip" and at < len(buf):
            buf[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del buf[at : at + draw(st.integers(1, 8))]
        else:
            buf[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(buf)


def _json_text(message: Message) -> bytes:
    from lockerhub.codec import encode_json

    try:
        return encode_json(message)
    except ValueError:  # NaN/inf are written as strings; other odd values may not serialise
        return b"{}"


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=12,
)


@st.composite
def _json_with_junk(draw: st.DrawFn, message: Message) -> bytes:
    """The JSON mapping of ``message`` with one key replaced by an arbitrary JSON value."""
    doc = json.loads(_json_text(message) or b"{}")
    if doc and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(doc)))
        doc[key] = draw(_JSON_VALUES)
    else:
        doc[draw(st.text(max_size=12))] = draw(_JSON_VALUES)
    return json.dumps(doc).encode()


def payloads(kind: Kind) -> st.SearchStrategy[tuple[bytes, str]]:
    """(payload, content type) for a ``kind`` topic: well-formed, mutated, or noise."""
    msgs = messages(kind)
    binary = st.one_of(
        msgs.map(encode),
        msgs.map(encode).flatmap(_mutated),
        st.binary(max_size=200),
    ).map(lambda b: (b, CONTENT_TYPE_PROTOBUF))
    as_json = st.one_of(
        msgs.map(_json_text),
        msgs.map(_json_text).flatmap(_mutated),
        msgs.flatmap(_json_with_junk),
        _JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    ).map(lambda b: (b, CONTENT_TYPE_JSON))
    return binary | as_json


# TOML: keys of the real settings (so that deep paths are reached) and arbitrary ones.
_TOML_KEYS = st.sampled_from(
    (
        "broker", "storage", "grpc", "metrics", "auth", "tokens", "sites", "ingest", "commands",
        "pickup", "port", "host", "path", "tls_cert", "tls_key", "expires", "name", "role",
        "sha256", "id", "lat", "lon", "username", "password", "device", "site", "keepalive_s",
    )
) | st.text(max_size=8)  # fmt: skip
_TOML_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
    st.text(max_size=20),
    st.datetimes(),
    st.sampled_from(("1883", "127.0.0.1", "a" * 64, "viewer", "admin", "", ".")),
)
TOML_VALUES = st.recursive(
    _TOML_SCALARS,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_TOML_KEYS, c, max_size=4),
    max_leaves=16,
)
TOML_DOCS = st.dictionaries(_TOML_KEYS, TOML_VALUES, max_size=6)


def toml_text(doc: dict[str, Any]) -> str:
    """A TOML rendering of ``doc`` using inline tables (every value on its key's line)."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in doc.items())


def _key(key: str) -> str:
    return json.dumps(key)  # a TOML basic string is a JSON string for these characters


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        if isinstance(value, float):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(value), repr(value))
        return json.dumps(value) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    return value.isoformat()  # datetime
