"""Topic names are built and parsed in one place, and hostile ids never make a topic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockerhub.errors import TopicError
from lockerhub.topics import Direction, Kind, Topic, device_filter, device_subtree, shared, spec

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
