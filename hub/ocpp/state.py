"""Live state of connected charge points, and the collector that turns it into metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
    # Energy charged, summed from register increases inside sessions only: the register itself
    # is the meter's lifetime reading, which is not energy this hub delivered.
    energy_wh: float = 0.0
    last_reading_wh: float | None = None
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

    def start_session(self, transaction_id: int, meter_start_wh: float) -> None:
        self.transaction_id, self.meter_start_wh = transaction_id, meter_start_wh
        self.session_energy_wh, self.last_reading_wh = 0.0, meter_start_wh

    def reading(self, register_wh: float) -> None:
        """An energy register reading: counts its increase when inside a session."""
        if not self.transaction_id or self.last_reading_wh is None:
            return
        if register_wh >= self.last_reading_wh:
            self.energy_wh += register_wh - self.last_reading_wh
        # A register that went backwards (meter swapped or reset) counts again from here.
        self.last_reading_wh = register_wh
        self.session_energy_wh = max(0.0, register_wh - self.meter_start_wh)

    def end_session(self, meter_stop_wh: float) -> None:
        self.reading(meter_stop_wh)
        self.transaction_id, self.power_w, self.last_reading_wh = 0, 0.0, None

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
    # When the store last recorded the pile as heard from (hub clock, ms; CentralSystem.on_heard).
    last_heard_ms: int = 0
    connectors: dict[int, ConnectorState] = field(default_factory=dict)

    def connector(self, connector_id: int) -> ConnectorState:
        state = self.connectors.get(connector_id)
        if state is None:
            state = self.connectors[connector_id] = ConnectorState()
        return state

    @property
    def energy_wh(self) -> float:
        return sum(c.energy_wh for c in self.connectors.values())


# Frame outcomes counted by the central system (bounded: decoder reasons and 1.6 error codes).
@dataclass(slots=True)
class OcppCounters:
    frames: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)

    def frame(self, outcome: str) -> None:
        self.frames[outcome] = self.frames.get(outcome, 0) + 1

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1


class ChargingCollector(Collector):
    """Serves pile presence, connector status, power, energy and seconds charging."""

    def __init__(
        self,
        piles: Callable[[], Iterable[PileState]],
        clock: Callable[[], float] = time.monotonic,
        counters: OcppCounters | None = None,
    ) -> None:
        self._piles = piles
        self._clock = clock
        self._counters = counters or OcppCounters()

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
            "Energy charged by a connector in sessions: increases of Energy.Active.Import.Register "
            "from each session's meterStart (the register's lifetime reading is not counted).",
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
                energy.add_metric(labels, c.energy_wh)
                seconds.add_metric(labels, c.charging_seconds(now))
        frames = CounterMetricFamily(
            "lockerhub_ocpp_frames",
            "OCPP frames from charge points by outcome: answered, callerror_<1.6 code>, "
            "dropped_<reason> (not a readable call: never answered).",
            labels=["outcome"],
        )
        for outcome, n in sorted(self._counters.frames.items()):
            frames.add_metric([outcome], n)
        refused = CounterMetricFamily(
            "lockerhub_ocpp_connections_refused",
            "OCPP websocket upgrades refused, by reason (bad_path, subprotocol, unauthorized, "
            "duplicate, capacity).",
            labels=["reason"],
        )
        for reason, n in sorted(self._counters.refused.items()):
            refused.add_metric([reason], n)
        yield from (up, status, power, energy, seconds, sessions, faults, frames, refused)
