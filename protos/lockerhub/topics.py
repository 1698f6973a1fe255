"""The MQTT topic tree: the only place topic names are built and parsed.

Every device has its own subtree ``lockerhub/v1/<site>/<device>/<kind>``; the broker's ACLs
(written by ``hub.broker.mosquitto``) let a device touch nothing outside it. docs/asyncapi.yaml
documents the same tree for people and other tools.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from lockerhub.errors import TopicError

TOPIC_ROOT = "lockerhub/v1"
# Site and device ids: short, and free of MQTT wildcards and separators.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Kind(enum.StrEnum):
    """The last topic level: what a message on it is."""

    STATUS = "status"
    TELEMETRY = "telemetry"
    EVENT = "event"
    COMMAND = "cmd"
    COMMAND_RESULT = "cmd_result"
    DESIRED = "desired"


class Direction(enum.StrEnum):
    DEVICE_TO_HUB = "device_to_hub"
    HUB_TO_DEVICE = "hub_to_device"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """Delivery rules for one kind of topic."""

    kind: Kind
    direction: Direction
    qos: int
    retain: bool


_SPECS = {
    # Retained birth / last will; QoS 1 so a will is not lost.
    Kind.STATUS: TopicSpec(Kind.STATUS, Direction.DEVICE_TO_HUB, qos=1, retain=True),
    # Superseded by the next sample.
    Kind.TELEMETRY: TopicSpec(Kind.TELEMETRY, Direction.DEVICE_TO_HUB, qos=0, retain=False),
    # Business events: at least once from the broker, exactly once at the hub by (device, seq).
    Kind.EVENT: TopicSpec(Kind.EVENT, Direction.DEVICE_TO_HUB, qos=1, retain=False),
    Kind.COMMAND: TopicSpec(Kind.COMMAND, Direction.HUB_TO_DEVICE, qos=1, retain=False),
    Kind.COMMAND_RESULT: TopicSpec(
        Kind.COMMAND_RESULT, Direction.DEVICE_TO_HUB, qos=1, retain=False
    ),
    # Retained desired state (reservations, code hashes, config, sort plan) with a version.
    Kind.DESIRED: TopicSpec(Kind.DESIRED, Direction.HUB_TO_DEVICE, qos=1, retain=True),
}


def spec(kind: Kind) -> TopicSpec:
    """QoS, retain flag and direction of a kind of topic."""
    return _SPECS[kind]


def validate_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid site or device id, else raise TopicError naming it."""
    if not _ID.fullmatch(value):
        raise TopicError(
            f"{what} {value[:70]!r} is not a valid id (1-64 of A-Z a-z 0-9 _ . -, "
            "starting with a letter or digit)"
        )
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """One concrete topic of a device's subtree."""

    site: str
    device: str
    kind: Kind

    def __post_init__(self) -> None:
        validate_id(self.site, "site")
        validate_id(self.device, "device")

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{self.site}/{self.device}/{self.kind.value}"

    @property
    def spec(self) -> TopicSpec:
        return _SPECS[self.kind]

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Parse a concrete topic; raise TopicError when it is not in the tree."""
        parts = topic.split("/")
        if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
            raise TopicError(f"topic {topic[:120]!r} is not under {TOPIC_ROOT}/<site>/<device>/")
        try:
            kind = Kind(parts[4])
        except ValueError:
            raise TopicError(f"unknown topic kind {parts[4][:40]!r}") from None
        return cls(site=parts[2], device=parts[3], kind=kind)


def device_filter(kind: Kind, *, site: str = "+", device: str = "+") -> str:
    """A subscription filter for one kind across sites/devices (``+`` = any)."""
    if site != "+":
        validate_id(site, "site")
    if device != "+":
        validate_id(device, "device")
    return f"{TOPIC_ROOT}/{site}/{device}/{kind.value}"


def shared(filter_: str, group: str) -> str:
    """Wrap a filter in an MQTT 5 shared subscription (``$share/<group>/<filter>``).

    Retained messages are not delivered to shared subscribers (MQTT 5, 4.8.2), so presence
    (status) must be subscribed without it.
    """
    validate_id(group, "share group")
    return f"$share/{group}/{filter_}"


def device_subtree(site: str, device: str) -> str:
    """The filter covering everything a device may touch (used for ACLs)."""
    return f"{TOPIC_ROOT}/{validate_id(site, 'site')}/{validate_id(device, 'device')}/#"
