"""docs/asyncapi.yaml describes exactly the topic tree and delivery rules that the code uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from lockerhub.codec import MESSAGE_TYPES
from lockerhub.topics import TOPIC_ROOT, Direction, Kind, spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_every_kind_is_documented_with_its_qos_retain_and_payload() -> None:
    doc = yaml.safe_load(DOC.read_text())
    assert doc["asyncapi"].startswith("3.")
    channels = doc["channels"]
    assert set(channels) == {k.value for k in Kind}
    ops = {op["channel"]["$ref"].rsplit("/", 1)[1]: op for op in doc["operations"].values()}
    for kind in Kind:
        ch = channels[kind.value]
        assert ch["address"] == f"{TOPIC_ROOT}/{{site}}/{{device}}/{kind.value}"
        op = ops[kind.value]
        rules = spec(kind)
        assert op["bindings"]["mqtt"] == {"qos": rules.qos, "retain": rules.retain}, kind
        # Operations are written from the device's side.
        expected = "send" if rules.direction is Direction.DEVICE_TO_HUB else "receive"
        assert op["action"] == expected, kind
        (msg_ref,) = (m["$ref"] for m in ch["messages"].values())
        message = doc["components"]["messages"][msg_ref.rsplit("/", 1)[1]]
        assert message["name"] == MESSAGE_TYPES[kind].DESCRIPTOR.full_name
