"""Live state of connected charge points, and the collector that turns it into metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.metrics.telemetry import Cumulative

# OCPP 1.6 ChargePointStatus values (section 7.7), exported as a state set.
STATUSES = (
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEVSE",
    "SuspendedEV",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
)
MAX_CONNECTORS = 16  # a pile with more is refused such connector ids (bounded labels)


@dataclass(slots=True)
class ConnectorState:
    status: str = "Unavailable"
    error_code: str = "NoError"
    power_w: float = 0.0
    register: Cumulative = field(default_factory=Cumulative)
    has_register: bool = False
    transaction_id: int = 0
    meter_start_wh: float = 0.0
    session_energy_wh: float = 0.0
    charging_s: float = 0.0
    charging_since: float | None = None

    def set_status(self, status: str, now: float) -> None:
        """Account time spent Charging (utilisation), then switch status."""
        if self.charging_since is not None:
            self.charging_s += max(0.0, now - self.charging_since)
            self.charging_since = None
        if status == "Charging":
            self.charging_since = now
        self.status = status

    def charging_seconds(self, now: float) -> float:
        running = now - self.charging_since if self.charging_since is not None else 0.0
        return self.charging_s + max(0.0, running)


@dataclass(slots=True)
class PileState:
    pile_id: str
    site: str
    online: bool = False
    vendor: str = ""
    model: str = ""
    firmware: str = ""
    boots: int = 0
    sessions: int = 0
    faults: int = 0
    last_heartbeat: float = 0.0
    connectors: dict[int, ConnectorState] = field(default_factory=dict)

    def connector(self, connector_id: int) -> ConnectorState:
        state = self.connectors.get(connector_id)
        if state is None:
            state = self.connectors[connector_id] = ConnectorState()
        return state

    @property
    def energy_wh(self) -> float:
        return sum(c.register.total for c in self.connectors.values())


class ChargingCollector(Collector):
    """Serves pile presence, connector status, power, energy and seconds charging."""

    def __init__(
        self, piles: Callable[[], Iterable[PileState]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._piles = piles
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        now = self._clock()
        up = GaugeMetricFamily(
            "lockerhub_charging_pile_up",
            "1 while the charge point holds its OCPP websocket to the hub.",
            labels=["site", "pile"],
        )
        status = GaugeMetricFamily(
            "lockerhub_charging_connector_status",
            "OCPP connector status as a state set: 1 for the current status, 0 otherwise.",
            labels=["site", "pile", "connector", "status"],
        )
        power = GaugeMetricFamily(
            "lockerhub_charging_power_watts",
            "Active import power of a connector from its last MeterValues.",
            labels=["site", "pile", "connector"],
        )
        energy = CounterMetricFamily(
            "lockerhub_charging_energy_watt_hours",
            "Energy delivered by a connector (Energy.Active.Import.Register, monotonic across "
            "meter resets).",
            labels=["site", "pile", "connector"],
        )
        seconds = CounterMetricFamily(
            "lockerhub_charging_seconds",
            "Seconds a connector spent in status Charging (rate() = utilisation).",
            labels=["site", "pile", "connector"],
        )
        sessions = CounterMetricFamily(
            "lockerhub_charging_sessions",
            "Charging sessions (transactions) completed on a pile.",
            labels=["site", "pile"],
        )
        faults = CounterMetricFamily(
            "lockerhub_charging_faults",
            "Connector status changes to Faulted (or errors reported) on a pile.",
            labels=["site", "pile"],
        )
        for pile in self._piles():
            up.add_metric([pile.site, pile.pile_id], float(pile.online))
            sessions.add_metric([pile.site, pile.pile_id], pile.sessions)
            faults.add_metric([pile.site, pile.pile_id], pile.faults)
            for cid, c in sorted(list(pile.connectors.items())):
                if cid == 0:
                    continue  # connector 0 is the charge point as a whole
                labels = [pile.site, pile.pile_id, str(cid)]
                for s in STATUSES:
                    status.add_metric([*labels, s], float(c.status == s))
                power.add_metric(labels, c.power_w)
                energy.add_metric(labels, c.register.total)
                seconds.add_metric(labels, c.charging_seconds(now))
        yield from (up, status, power, energy, seconds, sessions, faults)
