"""Topic names are built and parsed in one place, and hostile ids never make a topic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockerhub.errors import TopicError
from lockerhub.topics import (
    Direction,
    Kind,
    Topic,
    device_filter,
    device_subtree,
    shared,
    spec,
    validate_id,
)

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)


@given(site=ids, device=ids, kind=st.sampled_from(list(Kind)))
def test_round_trip(site: str, device: str, kind: Kind) -> None:
    topic = Topic(site, device, kind)
    assert Topic.parse(str(topic)) == topic


@pytest.mark.parametrize(
    "bad",
    ["", "a/b", "+", "#", "cab#1", "x" * 65, "-lead", "sp ace", "nul\x00", "ümlaut"],
)
def test_hostile_ids_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        Topic("site", bad, Kind.EVENT)
    with pytest.raises(TopicError):
        Topic(bad, "cab", Kind.EVENT)


@pytest.mark.parametrize(
    "topic",
    [
        "lockerhub/v1/site/cab/unknown",
        "lockerhub/v2/site/cab/event",
        "lockerhub/v1/site/cab",
        "lockerhub/v1/site/cab/event/extra",
        "other/v1/site/cab/event",
        "lockerhub/v1/si+te/cab/event",
        "",
    ],
)
def test_parse_rejects_topics_outside_the_tree(topic: str) -> None:
    with pytest.raises(TopicError):
        Topic.parse(topic)


def test_delivery_rules() -> None:
    assert spec(Kind.STATUS).retain
    assert spec(Kind.STATUS).qos == 1
    assert spec(Kind.TELEMETRY).qos == 0
    assert spec(Kind.EVENT).qos == 1
    assert not spec(Kind.EVENT).retain
    assert spec(Kind.COMMAND).direction is Direction.HUB_TO_DEVICE
    assert spec(Kind.COMMAND_RESULT).direction is Direction.DEVICE_TO_HUB


def test_filters() -> None:
    assert device_filter(Kind.EVENT) == "lockerhub/v1/+/+/event"
    assert shared(device_filter(Kind.EVENT), "hub") == "$share/hub/lockerhub/v1/+/+/event"
    assert device_subtree("s1", "c1") == "lockerhub/v1/s1/c1/#"
    with pytest.raises(TopicError):
        shared("x", "bad/group")


# The whole delivery table (docs/architecture.md, "MQTT"): any change to it is a contract change.
DELIVERY = {
    Kind.STATUS: (Direction.DEVICE_TO_HUB, 1, True),
    Kind.TELEMETRY: (Direction.DEVICE_TO_HUB, 0, False),
    Kind.EVENT: (Direction.DEVICE_TO_HUB, 1, False),
    Kind.COMMAND: (Direction.HUB_TO_DEVICE, 1, False),
    Kind.COMMAND_RESULT: (Direction.DEVICE_TO_HUB, 1, False),
    Kind.DESIRED: (Direction.HUB_TO_DEVICE, 1, True),
}


@pytest.mark.parametrize("kind", list(Kind))
def test_delivery_table(kind: Kind) -> None:
    s = spec(kind)
    assert (s.direction, s.qos, s.retain) == DELIVERY[kind]
    assert s.kind is kind
    assert Topic("s", "d", kind).spec == s


@pytest.mark.parametrize("good", ["a", "9", "A" + "x" * 63, "cab_1.b-2", "Z-"])
def test_valid_ids_at_the_bounds(good: str) -> None:
    assert validate_id(good, "device") == good
    assert str(Topic(good, good, Kind.STATUS)) == f"lockerhub/v1/{good}/{good}/status"


def test_an_id_error_names_what_was_wrong() -> None:
    with pytest.raises(TopicError, match=r"^device 'a/b' is not a valid id"):
        validate_id("a/b", "device")
    with pytest.raises(TopicError, match=r"^site "):
        Topic("s/1", "cab", Kind.EVENT)
    with pytest.raises(TopicError, match=r"^device "):
        Topic("site", "c#", Kind.EVENT)
    with pytest.raises(TopicError, match="unknown topic kind 'bogus'"):
        Topic.parse("lockerhub/v1/site/cab/bogus")
    with pytest.raises(TopicError, match="is not under lockerhub/v1/"):
        Topic.parse("lockerhub/v1/site/cab")


@pytest.mark.parametrize(
    ("site", "device", "expected"),
    [
        ("+", "+", "lockerhub/v1/+/+/cmd"),
        ("s1", "+", "lockerhub/v1/s1/+/cmd"),
        ("+", "c1", "lockerhub/v1/+/c1/cmd"),
        ("s1", "c1", "lockerhub/v1/s1/c1/cmd"),
    ],
)
def test_device_filter(site: str, device: str, expected: str) -> None:
    assert device_filter(Kind.COMMAND, site=site, device=device) == expected


@pytest.mark.parametrize(("site", "device"), [("#", "+"), ("+", "#"), ("a/b", "+"), ("+", "")])
def test_device_filter_refuses_ids_that_widen_it(site: str, device: str) -> None:
    with pytest.raises(TopicError):
        device_filter(Kind.EVENT, site=site, device=device)


def test_subtree_validates_both_ids() -> None:
    for site, device in (("+", "c"), ("s", "+")):
        with pytest.raises(TopicError):
            device_subtree(site, device)
