"""Energy meters, sorter counters, doors and temperatures from device telemetry, as metrics.

A tap in front of the ingest queue decodes telemetry samples once more for metrics only (the
ingestor still validates and stores them). Samples count only from devices the last store
snapshot knows at the topic's site, so a stranger cannot add label values. Device meters and
sorter counters are cumulative; when one goes backwards (meter swapped, counters reset at boot)
the collector keeps the total monotonic by adding the last value before the reset.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lockerhub.codec import decode
from lockerhub.errors import PayloadError, TopicError
from lockerhub.topics import Kind, Topic
from lockerhub.v1 import device_pb2

if TYPE_CHECKING:
    from hub.mqtt.link import Inbound


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A registered device as the last store snapshot saw it."""

    site: str
    kind: str  # cabinet, sorting_line, charging_pile
    online: bool


Sink = Callable[["Inbound"], Awaitable[None]]
# outcome label -> SorterCounters field
SORTER_OUTCOMES = {
    "inducted": "inducted",
    "sorted": "sorted",
    "rejected": "rejected",
    "recirculated": "recirculated",
    "no_read": "no_reads",
}
_TELEMETRY_SUFFIX = "/" + Kind.TELEMETRY.value


@dataclass(slots=True)
class Cumulative:
    """A device-side cumulative reading turned into a monotonic total across resets."""

    last: float = 0.0
    offset: float = 0.0
    resets: int = 0

    def update(self, raw: float) -> None:
        if raw < self.last:
            # The device started again from (near) zero: keep what was counted before it.
            self.offset += self.last
            self.resets += 1
        self.last = raw

    @property
    def total(self) -> float:
        return self.offset + self.last


@dataclass(slots=True)
class DeviceReadings:
    site: str
    kind: str
    energy: Cumulative = field(default_factory=Cumulative)
    power_w: float = 0.0
    doors_open: int = 0
    temp_min: float | None = None
    temp_max: float | None = None
    sorter: dict[str, Cumulative] = field(default_factory=dict)
    chutes_full: int = 0


# Prometheus base unit for energy is the joule; devices meter watt-hours.
JOULES_PER_WH = 3600.0


def _finite(value: float) -> bool:
    return math.isfinite(value) and value >= 0


class TelemetryCollector(Collector):
    """Keeps the last readings per known device and serves them at scrape time."""

    def __init__(
        self, known: Callable[[], Mapping[str, DeviceInfo]], *, max_bytes: int = 64 * 1024
    ) -> None:
        self._known = known
        self._max_bytes = max_bytes
        self._devices: dict[str, DeviceReadings] = {}

    def tap(self, sink: Sink) -> Sink:
        """Wrap the ingest sink: observe telemetry samples, then hand every message on."""

        async def tapped(message: Inbound) -> None:
            if message.topic.endswith(_TELEMETRY_SUFFIX):
                self.observe_raw(message.topic, message.payload, message.content_type)
            await sink(message)

        return tapped

    def observe_raw(self, topic: str, payload: bytes, content_type: str | None) -> bool:
        """Decode and observe one telemetry message; False if it was not usable (never raises)."""
        try:
            parsed = Topic.parse(topic)
            if parsed.kind is not Kind.TELEMETRY:
                return False
            sample = decode(
                Kind.TELEMETRY, payload, content_type=content_type, max_bytes=self._max_bytes
            )
        except (TopicError, PayloadError):
            return False  # the ingestor counts and logs it
        assert isinstance(sample, device_pb2.Telemetry)
        return self.observe(parsed.site, parsed.device, sample)

    def observe(self, site: str, device: str, sample: device_pb2.Telemetry) -> bool:
        """Record one sample of a registered device; False if the device is not known there."""
        info = self._known().get(device)
        if info is None or info.site != site:
            return False
        readings = self._devices.get(device)
        if readings is None or readings.site != site:
            readings = self._devices[device] = DeviceReadings(site=site, kind=info.kind)
        if _finite(sample.energy_wh):
            readings.energy.update(sample.energy_wh)
        if _finite(sample.power_w):
            readings.power_w = sample.power_w
        readings.doors_open = sum(1 for c in sample.compartments if c.door_open)
        temps = [
            c.temperature_c
            for c in sample.compartments
            if c.has_temperature and math.isfinite(c.temperature_c)
        ]
        readings.temp_min = min(temps) if temps else None
        readings.temp_max = max(temps) if temps else None
        if sample.HasField("sorter"):
            for label, name in SORTER_OUTCOMES.items():
                readings.sorter.setdefault(label, Cumulative()).update(
                    float(getattr(sample.sorter, name))
                )
        readings.chutes_full = sum(1 for c in sample.chutes if c.full)
        return True

    def collect(self) -> Iterable[Metric]:
        known = self._known()
        cab_energy = CounterMetricFamily(
            "lockerhub_cabinet_energy_joules",
            "Energy used by a cabinet in joules (its meter's cumulative Wh reading x 3600, kept "
            "monotonic across meter resets).",
            labels=["site", "cabinet"],
        )
        cab_power = GaugeMetricFamily(
            "lockerhub_cabinet_power_watts",
            "Cabinet power draw at the last sample.",
            labels=["site", "cabinet"],
        )
        doors = GaugeMetricFamily(
            "lockerhub_cabinet_doors_open",
            "Compartment doors open at the last sample.",
            labels=["site", "cabinet"],
        )
        temp = GaugeMetricFamily(
            "lockerhub_cabinet_temperature_celsius",
            "Lowest and highest temperature of a cabinet's chilled compartments.",
            labels=["site", "cabinet", "stat"],
        )
        line_energy = CounterMetricFamily(
            "lockerhub_sorter_energy_joules",
            "Energy used by a sorting line in joules (meter Wh x 3600, monotonic across resets).",
            labels=["site", "line"],
        )
        line_power = GaugeMetricFamily(
            "lockerhub_sorter_power_watts",
            "Sorting-line power draw at the last sample.",
            labels=["site", "line"],
        )
        line_parcels = CounterMetricFamily(
            "lockerhub_sorter_parcels",
            "Parcels through a sorting line by outcome (inducted, sorted, rejected, "
            "recirculated, no_read), from the line's own counters.",
            labels=["site", "line", "outcome"],
        )
        chutes = GaugeMetricFamily(
            "lockerhub_sorter_chutes_full",
            "Chutes reporting full at the last sample.",
            labels=["site", "line"],
        )
        for device, r in list(self._devices.items()):  # copied: scrapes render in a thread
            info = known.get(device)
            if info is None or info.site != r.site:
                continue  # deregistered or moved: stop exporting it
            if r.kind == "sorting_line":
                line_energy.add_metric([r.site, device], r.energy.total * JOULES_PER_WH)
                line_power.add_metric([r.site, device], r.power_w)
                chutes.add_metric([r.site, device], r.chutes_full)
                for name in SORTER_OUTCOMES:
                    counter = r.sorter.get(name)
                    line_parcels.add_metric([r.site, device, name], counter.total if counter else 0)
            elif r.kind == "cabinet":
                cab_energy.add_metric([r.site, device], r.energy.total * JOULES_PER_WH)
                cab_power.add_metric([r.site, device], r.power_w)
                doors.add_metric([r.site, device], r.doors_open)
                if r.temp_min is not None and r.temp_max is not None:
                    temp.add_metric([r.site, device, "min"], r.temp_min)
                    temp.add_metric([r.site, device, "max"], r.temp_max)
        yield from (
            cab_energy,
            cab_power,
            doors,
            temp,
            line_energy,
            line_power,
            line_parcels,
            chutes,
        )
