"""lockerhub routing: the slot allocator (numba) and the route planner (numba SISR, OR-Tools).

Pure functions on immutable data; CPU-bound, so the hub calls them off its event loop.
"""

from routing.allocation import (
    AllocationParams,
    AllocationProblem,
    AllocationResult,
)
from routing.allocator import allocate, warm_up
from routing.citygen import generate_city
from routing.errors import ProblemError, ReservationError, RoutingError, SolveError
from routing.feasibility import check_plan, check_routes
from routing.hubplan import (
    ChargingPile,
    Depot,
    Fleet,
    StopSite,
    build_problem,
    stops_from_allocation,
)
from routing.io import read_evrptw, read_solomon
from routing.planner import plan_routes, warm_up_planner
from routing.problem import PlanParams, RoutePlan, RoutingProblem
from routing.reservations import Reservation, ReservationBook
from routing.vrplib import read_vrplib, read_vrplib_solution

__all__ = [
    "AllocationParams",
    "AllocationProblem",
    "AllocationResult",
    "ChargingPile",
    "Depot",
    "Fleet",
    "PlanParams",
    "ProblemError",
    "Reservation",
    "ReservationBook",
    "ReservationError",
    "RoutePlan",
    "RoutingError",
    "RoutingProblem",
    "SolveError",
    "StopSite",
    "allocate",
    "build_problem",
    "check_plan",
    "check_routes",
    "generate_city",
    "plan_routes",
    "read_evrptw",
    "read_solomon",
    "read_vrplib",
    "read_vrplib_solution",
    "stops_from_allocation",
    "warm_up",
    "warm_up_planner",
]
