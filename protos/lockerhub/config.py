"""Build frozen settings dataclasses from TOML and the environment; errors name the key.

Each deployable (hub, edge agent) declares its settings as frozen dataclasses in its own
``settings.py`` and calls :func:`load_settings`; nothing else reads ``os.environ``.
Environment overrides are ``<PREFIX><SECTION>__<KEY>`` (``LOCKERHUB_HUB_BROKER__PORT=1884``); a
field that is an array of tables takes JSON (``LOCKERHUB_HUB_SITES='[{"id": "s1"}]'``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def load_settings(
    cls: type[T],
    path: Path | None,
    env: Mapping[str, str],
    *,
    env_prefix: str,
    error: type[Exception],
) -> T:
    """Read ``path`` (TOML; None = defaults only), apply environment overrides, build ``cls``.

    Raises:
        error: unreadable file, invalid TOML, unknown key, wrong type or invalid value; the message
            names the key (``broker.port``) or the environment variable.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise error(f"cannot read config file {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise error(f"{path} is not valid TOML: {exc}") from exc
        except RecursionError as exc:  # tomllib recurses once per level of nesting
            raise error(f"{path} is not valid TOML: nested too deeply") from exc
    apply_env(cls, data, env, env_prefix=env_prefix, error=error)
    return build(cls, data, error=error)


def build(cls: type[T], table: Mapping[str, Any], *, error: type[Exception], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, checking every key and type."""
    if not isinstance(table, Mapping):
        raise error(f"{prefix.rstrip('.') or 'config'}: must be a table")
    hints = _hints(cls)
    for key in table:
        if key not in hints:
            raise error(f"{prefix}{key}: unknown key")
    kwargs = {k: _convert(v, hints[k], f"{prefix}{k}", error) for k, v in table.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required key is missing
        missing = [
            f.name
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if not missing:
            raise error(f"{prefix.rstrip('.') or 'config'}: {exc}") from exc
        raise error(f"{prefix}{missing[0]}: required key is missing") from exc


def apply_env(
    cls: type[Any],
    data: dict[str, Any],
    env: Mapping[str, str],
    *,
    env_prefix: str,
    error: type[Exception],
) -> None:
    """Merge ``<prefix><SECTION>__<KEY>`` (or ``<prefix><FIELD>`` for arrays) into ``data``."""
    top = _hints(cls)
    for name, text in env.items():
        if not name.startswith(env_prefix):
            continue
        rest = name[len(env_prefix) :].lower()
        section, sep, key = rest.partition("__")
        target = top.get(section)
        if target is None:
            raise error(f"{name}: unknown setting (use {env_prefix}<SECTION>__<KEY>)")
        if not sep:
            if typing.get_origin(target) is not tuple:
                raise error(f"{name}: unknown setting (use {env_prefix}<SECTION>__<KEY>)")
            try:
                data[section] = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise error(f"{name} ({section}): not a JSON array: {exc}") from exc
            continue
        if not dataclasses.is_dataclass(target):
            raise error(f"{name}: {section} is not a section")
        hints = _hints(target)  # type: ignore[arg-type]
        if key not in hints:
            raise error(f"{name} ({section}.{key}): unknown key")
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise error(f"{section}: must be a table")
        table[key] = _from_env(text, hints[key], f"{name} ({section}.{key})", error)


_HINT_CACHE: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINT_CACHE:
        _HINT_CACHE[cls] = typing.get_type_hints(cls)
    return _HINT_CACHE[cls]


def _options(target: Any) -> tuple[Any, ...]:
    if typing.get_origin(target) in (types.UnionType, typing.Union):
        return typing.get_args(target)
    return (target,)


def _convert(value: Any, target: Any, key: str, error: type[Exception]) -> Any:
    options = _options(target)
    if value is None and type(None) in options:
        return None
    (target, *more) = [t for t in options if t is not type(None)]
    if more:
        raise error(f"{key}: unsupported type")  # no such fields: keep settings simple
    if dataclasses.is_dataclass(target):
        return build(target, value, error=error, prefix=f"{key}.")  # type: ignore[arg-type]
    if typing.get_origin(target) is tuple:
        item_type = typing.get_args(target)[0]
        if not isinstance(value, list):
            raise error(f"{key}: must be an array")
        return tuple(_convert(v, item_type, f"{key}[{i}]", error) for i, v in enumerate(value))
    checks: dict[Any, tuple[bool, str]] = {
        bool: (isinstance(value, bool), "true or false"),
        int: (isinstance(value, int) and not isinstance(value, bool), "an integer"),
        float: (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
            "a number",
        ),
        str: (isinstance(value, str), "a string"),
        Path: (isinstance(value, str), "a string (a file path)"),
        dt.datetime: (
            isinstance(value, dt.datetime) and value.utcoffset() is not None,
            "a date-time with a UTC offset (2027-01-31T00:00:00Z)",
        ),
    }
    if target not in checks:
        raise error(f"{key}: unsupported type")
    ok, what = checks[target]
    if not ok:
        raise error(f"{key}: must be {what}, got {type(value).__name__} {str(value)[:40]!r}")
    if target is float:
        return float(value)
    if target is Path:
        return Path(value)
    return value


def _from_env(text: str, target: Any, key: str, error: type[Exception]) -> Any:
    options = _options(target)
    try:
        if bool in options:
            lowered = text.strip().lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError(text)
        if int in options:
            return int(text)
        if float in options:
            return float(text)
    except ValueError:
        raise error(f"{key}: cannot read {text[:40]!r} as {options[0].__name__}") from None
    if any(typing.get_origin(t) is tuple or dataclasses.is_dataclass(t) for t in options):
        raise error(f"{key}: cannot be set from the environment")
    return text
