"""Pickup security: wrong codes counted per keypad and per compartment, growing lockouts.

The counters round-trip through JSON so the agent persists them with every change: a power cycle
must not be a way to reset a lockout. Codes themselves never reach this module.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from edge.cabinet import Keypad, KeypadVerdict
from edge.messages import alarm, event
from lockerhub.v1 import common_pb2, device_pb2


class PickupGuard:
    """The cabinet's keypad and one counter per compartment a recipient chose.

    Args:
        max_failures, lockout_ms, max_lockout_ms: see ``edge.cabinet.Keypad``.
    """

    def __init__(self, *, max_failures: int, lockout_ms: int, max_lockout_ms: int) -> None:
        self._max_failures = max_failures
        self._lockout_ms = lockout_ms
        self._max_lockout_ms = max_lockout_ms
        self._keypad = self._pad()
        self._pads: dict[str, Keypad] = {}

    def _pad(self) -> Keypad:
        return Keypad(
            max_failures=self._max_failures,
            lockout_ms=self._lockout_ms,
            max_lockout_ms=self._max_lockout_ms,
        )

    def configure(self, *, max_failures: int, lockout_ms: int) -> None:
        """New limits from the hub; counts are kept."""
        self._max_failures, self._lockout_ms = max_failures, lockout_ms
        for pad in (self._keypad, *self._pads.values()):
            pad.configure(max_failures=max_failures, lockout_ms=lockout_ms)

    def locked(self, now_ms: int, compartment_id: str | None = None) -> bool:
        """The keypad (None) or one compartment's code entry is locked out."""
        if compartment_id is None:
            return self._keypad.locked(now_ms)
        pad = self._pads.get(compartment_id)
        return pad is not None and pad.locked(now_ms)

    def blocked(self, now_ms: int, chosen: str | None) -> bool:
        """An entry (for ``chosen``, if the recipient picked a compartment) must be refused."""
        return self.locked(now_ms) or (chosen is not None and self.locked(now_ms, chosen))

    def success(self, compartment_id: str) -> None:
        self._keypad.success()
        self._pads.pop(compartment_id, None)

    def failure(self, now_ms: int, chosen: str | None) -> list[device_pb2.DeviceEvent]:
        """Count a wrong code; the PickupCodeRejected event and any lockout alarms."""
        verdict = self._keypad.failure(now_ms)
        events = [
            event(
                pickup_code_rejected=device_pb2.PickupCodeRejected(
                    consecutive_failures=verdict.consecutive_failures,
                    locked_out=verdict.locked_out,
                )
            ),
            *_lockout_alarm(verdict, ""),
        ]
        if chosen is not None:
            pad = self._pads.setdefault(chosen, self._pad())
            events += _lockout_alarm(pad.failure(now_ms), chosen)
        return events

    @property
    def consecutive_failures(self) -> int:
        return self._keypad.failures

    def to_blob(self) -> bytes:
        return json.dumps(
            {
                "keypad": self._keypad.to_json(),
                "compartments": {cid: p.to_json() for cid, p in self._pads.items()},
            }
        ).encode()

    def load_blob(self, raw: bytes, known: Collection[str]) -> None:
        """Restore counters saved by ``to_blob``; malformed parts are ignored."""
        try:
            saved = json.loads(raw)
        except ValueError:
            return
        if not isinstance(saved, dict):
            return
        self._keypad.load_json(saved.get("keypad"))
        pads = saved.get("compartments")
        for cid, data in pads.items() if isinstance(pads, dict) else ():
            if cid in known:
                pad = self._pad()
                pad.load_json(data)
                self._pads[cid] = pad


def _lockout_alarm(verdict: KeypadVerdict, cid: str) -> list[device_pb2.DeviceEvent]:
    if not verdict.lockout_started:
        return []
    where = f"compartment {cid}" if cid else "keypad"
    return [
        alarm(
            common_pb2.ALARM_KIND_KEYPAD_LOCKOUT,
            cid,
            f"{where} locked for {verdict.lockout_ms / 1000:g} s after "
            f"{verdict.consecutive_failures} wrong codes",
        )
    ]
