"""The files a running demo keeps in its work directory, so that other terminals can find things.

``controls.json`` maps each simulated cabinet to its control address, ``parcels.json`` maps each
reserved parcel to its cabinet (from the hub's live events), and ``notifications.jsonl`` is the
hub's file notifier (the stand-in for the SMS gateway). ``lockerhub sim`` reads them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_WORKDIR = Path("var/demo")
CONTROLS = "controls.json"
PARCELS = "parcels.json"
NOTIFICATIONS = "notifications.jsonl"
LOG = "demo.log"


class DemoFileError(Exception):
    """What the demo's files do not (yet) say; the message names the file."""


def write_json(path: Path, data: Mapping[str, str]) -> None:
    """Replace ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(dict(data), indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DemoFileError(f"{path} does not exist: is `lockerhub demo` running there?") from None
    except (OSError, ValueError) as exc:
        raise DemoFileError(f"cannot read {path}: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise DemoFileError(f"{path}: expected a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def control_of(workdir: Path, cabinet: str) -> str:
    """The ``HOST:PORT`` control address of ``cabinet`` in the demo at ``workdir``."""
    path = workdir / CONTROLS
    controls = _read_json(path)
    if cabinet not in controls:
        known = ", ".join(sorted(controls)[:5])
        raise DemoFileError(f"{path} has no cabinet {cabinet!r} (known: {known}, ...)")
    return controls[cabinet]


def cabinet_of(workdir: Path, parcel_id: str) -> str | None:
    """The cabinet holding ``parcel_id``'s reservation, once the demo has seen it reserved."""
    with contextlib.suppress(DemoFileError):
        return _read_json(workdir / PARCELS).get(parcel_id)
    return None


def notice_for(workdir: Path, parcel_id: str) -> dict[str, str] | None:
    """The latest pickup notice for ``parcel_id`` (the recipient reading the SMS), or None."""
    found: dict[str, str] | None = None
    with contextlib.suppress(FileNotFoundError):
        for line in (workdir / NOTIFICATIONS).read_text().splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                ours = isinstance(item, dict) and item.get("parcel_id") == parcel_id
                if ours and item.get("code"):
                    found = {k: str(v) for k, v in item.items()}
    return found
