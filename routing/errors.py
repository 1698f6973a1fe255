"""Exception tree of the routing package.

    RoutingError                 base of everything raised on purpose by ``routing``
    ├── ProblemError             malformed or inconsistent input; ``field`` names the culprit
    ├── ReservationError         reservation conflicts (compartment held, key reused)
    └── SolveError               a solver failed or found no feasible answer

Third-party failures (OR-Tools status codes, numba compilation) are translated into ``SolveError``
with ``raise ... from exc`` at the single place where the third-party call is made.
"""

from __future__ import annotations

__all__ = ["ProblemError", "ReservationError", "RoutingError", "SolveError"]


class RoutingError(Exception):
    """Base class of the errors the routing package raises on purpose."""


class ProblemError(RoutingError, ValueError):
    """The problem data is malformed; ``field`` is the offending key path (``"parcels[3].w"``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ReservationError(RoutingError):
    """A reservation conflicts with one that is still alive."""


class SolveError(RoutingError):
    """A solver failed, timed out without an answer, or reported infeasibility."""
