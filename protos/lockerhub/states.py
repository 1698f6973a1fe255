"""Domain states shared by the hub and the edge agents, mapped onto lockerhub.v1 enums."""

from __future__ import annotations

import enum
from typing import Any, cast

from lockerhub.v1 import common_pb2


class CompartmentState(enum.StrEnum):
    """A compartment's business state (lockerhub.v1.CompartmentState); the value is stored."""

    FREE = "free"
    RESERVED = "reserved"
    OCCUPIED = "occupied"
    DISABLED = "disabled"
    FAULT = "fault"

    def to_proto(self) -> common_pb2.CompartmentState.ValueType:
        return common_pb2.CompartmentState.Value(f"COMPARTMENT_STATE_{self.name}")

    @classmethod
    def from_proto(cls, value: int) -> CompartmentState:
        """Raises ValueError for UNSPECIFIED or an unknown number."""
        name = common_pb2.CompartmentState.Name(cast(Any, value)).removeprefix("COMPARTMENT_STATE_")
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"compartment state {name} has no domain meaning") from None
