"""firmware_sim's exception tree.

SimError
└── ControlError  a control request failed: unreachable server, bad request, or a refused action

Hardware-level failures of the simulated cabinet raise edge.errors.DriverError, as a real driver
would.
"""

from __future__ import annotations


class SimError(Exception):
    """Base of firmware_sim's own errors."""


class ControlError(SimError):
    """The control server could not be reached or refused a request."""
