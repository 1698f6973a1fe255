"""OCPP-J 1.6 frames: a bounded decoder, and CALLERROR codes with their 1.6 names.

Every websocket message from a charge point goes through :func:`decode` before anything else
looks at it. A frame is bounded in size by the websocket (``ocpp.max_message_bytes``) and here in
nesting depth (checked on the text, before ``json`` recurses); it becomes a :class:`CallFrame`,
a :class:`ResultFrame` or :class:`ErrorFrame`, a :class:`Rejected` call to answer with a
CALLERROR (OCPP-J 1.6 section 4.2.3: only where a unique id can be read), or a :class:`Dropped`
frame with a reason from :data:`DROP_REASONS` (a bounded metric label).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# OCPP-J 1.6 section 4.1.4: the unique id is at most 36 characters. A longer one is not echoed.
MAX_UNIQUE_ID = 36
# The deepest 1.6 CP-initiated payload (MeterValues) nests 5 levels in the 4-element frame.
MAX_DEPTH = 16
MAX_ACTION = 64
# CALLERROR description limit we send (the spec has none; keep answers small).
MAX_DESCRIPTION = 120

CALL, CALLRESULT, CALLERROR = 2, 3, 4

# OCPP-J 1.6 section 4.2.3 error codes. 2.0.1 renamed FormationViolation to FormatViolation and
# OccurenceConstraintViolation to OccurrenceConstraintViolation: a 1.6 client knows only these.
NOT_IMPLEMENTED = "NotImplemented"  # the action is not known
NOT_SUPPORTED = "NotSupported"  # the action is recognised but not supported
INTERNAL_ERROR = "InternalError"
PROTOCOL_ERROR = "ProtocolError"  # the payload is incomplete
SECURITY_ERROR = "SecurityError"
FORMATION_VIOLATION = "FormationViolation"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"  # sic, the 1.6 spelling
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
GENERIC_ERROR = "GenericError"
ERROR_CODES = (
    NOT_IMPLEMENTED,
    NOT_SUPPORTED,
    INTERNAL_ERROR,
    PROTOCOL_ERROR,
    SECURITY_ERROR,
    FORMATION_VIOLATION,
    PROPERTY_CONSTRAINT_VIOLATION,
    OCCURENCE_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION,
    GENERIC_ERROR,
)
# 2.0.1 names the ``ocpp`` library uses, mapped to 1.6.
_FROM_2_0_1 = {
    "FormatViolation": FORMATION_VIOLATION,
    "OccurrenceConstraintViolation": OCCURENCE_CONSTRAINT_VIOLATION,
}

DROP_REASONS = (
    "binary",
    "too_deep",
    "not_json",
    "not_array",
    "unknown_message_type",
    "bad_unique_id",
    "bad_result",
    "unexpected_result",
)

_TOKENS = re.compile(r'["\\\[\]{}]')


def code_1_6(code: str) -> str:
    """An error code as OCPP 1.6 names it (GenericError for anything 1.6 does not know)."""
    code = _FROM_2_0_1.get(code, code)
    return code if code in ERROR_CODES else GENERIC_ERROR


@dataclass(frozen=True, slots=True)
class CallFrame:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResultFrame:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A call that gets a CALLERROR without reaching a handler."""

    unique_id: str
    code: str
    description: str


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: str


Frame = CallFrame | ResultFrame | ErrorFrame | Rejected | Dropped


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """True if the JSON text nests arrays/objects deeper than ``limit`` (strings skipped).

    One linear pass over the structural characters: ``json`` recurses per level and a deep
    enough frame would raise RecursionError inside it.
    """
    depth, in_string, escaped_at = 0, False, -1
    for m in _TOKENS.finditer(text):
        i, char = m.start(), m.group()
        if in_string:
            if i == escaped_at:
                continue
            if char == "\\":
                escaped_at = i + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode(raw: str | bytes) -> Frame:
    """Classify one websocket message; never raises, never returns more than it validated."""
    if not isinstance(raw, str):
        return Dropped("binary")  # OCPP-J 1.6 section 3.2: text frames only
    if too_deep(raw):
        return Dropped("too_deep")
    try:
        msg = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return Dropped("not_json")
    if not isinstance(msg, list) or not msg:
        return Dropped("not_array")
    kind = msg[0]
    if type(kind) is not int or kind not in (CALL, CALLRESULT, CALLERROR):
        # OCPP-J 1.6 section 4.1.3: an unknown message type is ignored.
        return Dropped("unknown_message_type")
    unique_id = msg[1] if len(msg) > 1 else None
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= MAX_UNIQUE_ID:
        return Dropped("bad_unique_id")
    if kind == CALL:
        if len(msg) != 4:
            return Rejected(unique_id, FORMATION_VIOLATION, "a CALL is [2, id, action, payload]")
        action, payload = msg[2], msg[3]
        if not isinstance(action, str) or not 0 < len(action) <= MAX_ACTION:
            return Rejected(unique_id, FORMATION_VIOLATION, "action must be a short string")
        if not isinstance(payload, dict):
            return Rejected(unique_id, FORMATION_VIOLATION, "payload must be a JSON object")
        return CallFrame(unique_id, action, payload)
    if kind == CALLRESULT:
        if len(msg) != 3 or not isinstance(msg[2], dict):
            return Dropped("bad_result")
        return ResultFrame(unique_id, msg[2])
    if (
        len(msg) != 5
        or not isinstance(msg[2], str)
        or not isinstance(msg[3], str)
        or not isinstance(msg[4], dict)
    ):
        return Dropped("bad_result")
    return ErrorFrame(unique_id, msg[2][:40], msg[3][:MAX_DESCRIPTION], msg[4])


def call_error(unique_id: str, code: str, description: str) -> str:
    """A CALLERROR frame (OCPP-J 1.6 section 4.2.3) with empty details."""
    return json.dumps(
        [CALLERROR, unique_id[:MAX_UNIQUE_ID], code_1_6(code), description[:MAX_DESCRIPTION], {}],
        separators=(",", ":"),
    )


def call_result(unique_id: str, payload: dict[str, Any]) -> str:
    return json.dumps([CALLRESULT, unique_id[:MAX_UNIQUE_ID], payload], separators=(",", ":"))
