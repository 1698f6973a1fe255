"""Shared domain states map one to one onto the lockerhub.v1 enums."""

from __future__ import annotations

import pytest

from lockerhub.states import CompartmentState
from lockerhub.v1 import common_pb2


def test_every_state_round_trips_and_covers_the_proto() -> None:
    for state in CompartmentState:
        assert CompartmentState.from_proto(state.to_proto()) is state
    proto_values = set(common_pb2.CompartmentState.values()) - {
        common_pb2.COMPARTMENT_STATE_UNSPECIFIED
    }
    assert {s.to_proto() for s in CompartmentState} == proto_values


@pytest.mark.parametrize("bad", [common_pb2.COMPARTMENT_STATE_UNSPECIFIED, 99])
def test_unspecified_and_unknown_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=r"no domain meaning|has no name"):
        CompartmentState.from_proto(bad)
