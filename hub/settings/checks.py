"""Checks every settings group uses: each failure names its key."""

from __future__ import annotations

from hub.errors import ConfigError
from lockerhub.errors import TopicError
from lockerhub.topics import validate_id


def require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def check_port(value: int, key: str) -> None:
    require(0 <= value <= 65535, key, f"{value} is not a port number (0-65535, 0 = any free port)")


def check_id(value: str, key: str) -> None:
    try:
        validate_id(value, key)
    except TopicError as exc:
        raise ConfigError(f"{key}: {exc}") from exc
