"""The hub's retained desired state, and the runtime config it (and UpdateConfig) may change.

Device-shadow semantics (domain notes): a newer version is applied whole, an older or equal one is
ignored. The cabinet's own recent facts win over the hub's picture: a compartment with a local
change the hub may not have seen yet (a deposit or pickup still in the outbox, or made within
``grace_ms``) keeps its record. Pure functions; the agent persists and publishes.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from edge.cabinet import CompartmentRecord
from edge.errors import CommandError
from edge.settings import EdgeSettings
from lockerhub.states import CompartmentState
from lockerhub.v1 import device_pb2

# How long a local deposit/pickup shields a compartment from the hub's desired state after its
# event was acknowledged by the broker (the hub needs a moment to apply it and republish).
DEFAULT_GRACE_MS = 60_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConfig:
    """Settings the hub can change at run time (lockerhub.v1.DeviceConfig)."""

    telemetry_interval_s: float
    door_left_open_s: float
    keypad_max_failures: int
    keypad_lockout_s: float
    chilled_min_c: float
    chilled_max_c: float

    @classmethod
    def from_settings(cls, s: EdgeSettings) -> RuntimeConfig:
        return cls(
            telemetry_interval_s=s.telemetry.interval_s,
            door_left_open_s=s.door.left_open_s,
            keypad_max_failures=s.keypad.max_failures,
            keypad_lockout_s=s.keypad.lockout_s,
            chilled_min_c=s.chilled.min_c,
            chilled_max_c=s.chilled.max_c,
        )

    def merged(self, config: device_pb2.DeviceConfig) -> RuntimeConfig:
        """This config with the non-zero fields of ``config`` applied.

        Raises:
            CommandError: a value out of its range (nothing is applied then).
        """
        c = config
        out = replace(
            self,
            telemetry_interval_s=float(c.telemetry_interval_s or self.telemetry_interval_s),
            door_left_open_s=float(c.door_left_open_s or self.door_left_open_s),
            keypad_max_failures=c.keypad_max_failures or self.keypad_max_failures,
            keypad_lockout_s=float(c.keypad_lockout_s or self.keypad_lockout_s),
            # proto3 scalars: 0 means "keep" (the contract), so 0.0 C cannot be set as a bound.
            chilled_min_c=c.chilled_min_c or self.chilled_min_c,
            chilled_max_c=c.chilled_max_c or self.chilled_max_c,
        )
        finite = (
            all(
                math.isfinite(v)
                for v in (out.telemetry_interval_s, out.door_left_open_s, out.keypad_lockout_s)
            )
            and math.isfinite(out.chilled_min_c)
            and math.isfinite(out.chilled_max_c)
        )
        checks = (
            (finite, "values must be finite numbers"),
            (1 <= out.telemetry_interval_s <= 86400, "telemetry_interval_s must be 1-86400"),
            (5 <= out.door_left_open_s <= 86400, "door_left_open_s must be 5-86400"),
            (1 <= out.keypad_max_failures <= 100, "keypad_max_failures must be 1-100"),
            (1 <= out.keypad_lockout_s <= 86400, "keypad_lockout_s must be 1-86400"),
            (
                -40 <= out.chilled_min_c < out.chilled_max_c <= 40,
                "need -40 <= chilled_min_c < chilled_max_c <= 40",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise CommandError(f"config: {message}")
        return out


def apply_desired(
    records: Mapping[str, CompartmentRecord],
    desired: device_pb2.DesiredState,
    *,
    protected: Collection[str],
    now_ms: int,
    grace_ms: int = DEFAULT_GRACE_MS,
) -> list[CompartmentRecord]:
    """The records that change when ``desired`` is applied to ``records``.

    Args:
        protected: compartments with a pending (unacknowledged) local deposit or pickup.
    """
    reservations = {r.compartment_id: r for r in desired.reservations}
    codes = {c.compartment_id: c for c in desired.pickup_codes}
    disabled = set(desired.disabled_compartments)
    changed: list[CompartmentRecord] = []
    for cid, rec in records.items():
        new = replace(rec, disabled=cid in disabled)
        recent = rec.local_ms is not None and now_ms - rec.local_ms < grace_ms
        code = codes.get(cid)
        res = reservations.get(cid)
        if cid in protected or recent:
            pass  # the cabinet knows better until the hub has seen its events
        elif rec.state is CompartmentState.OCCUPIED:
            # A parcel physically inside is never freed by a picture of the hub's: only a
            # pickup frees it. The hub may refresh its code.
            if code is not None and code.parcel_id == rec.parcel_id:
                new = replace(
                    new, code_hash=code.code_hash or None, code_deadline_ms=code.deadline_ms or None
                )
        elif code is not None:
            # The hub knows a parcel is here (e.g. a replaced controller with a fresh database).
            new = replace(
                new,
                state=CompartmentState.OCCUPIED,
                parcel_id=code.parcel_id,
                reserved_until_ms=None,
                code_hash=code.code_hash or None,
                code_deadline_ms=code.deadline_ms or None,
            )
        elif res is not None and not (res.expires_ms and res.expires_ms <= now_ms):
            new = replace(
                new,
                state=CompartmentState.RESERVED,
                parcel_id=res.parcel_id,
                reserved_until_ms=res.expires_ms or None,
                code_hash=None,
                code_deadline_ms=None,
            )
        elif rec.state is CompartmentState.RESERVED:
            new = replace(new.freed(), disabled=new.disabled)
        if new != rec:
            changed.append(new)
    return changed
