"""Hub metrics units: telemetry collector (meter resets, strangers, garbage), naming, no PII."""

from __future__ import annotations

import math
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hub.metrics.catalogue import DeviceInfo, HubMetrics, Snapshot
from lockerhub.codec import CONTENT_TYPE_JSON, encode
from lockerhub.v1 import device_pb2

KNOWN = {
    "CAB-1": DeviceInfo(site="s1", kind="cabinet", online=True),
    "LINE-1": DeviceInfo(site="hub", kind="sorting_line", online=True),
}


def hub_metrics() -> HubMetrics:
    m = HubMetrics(CollectorRegistry())
    m.snapshot.update(Snapshot(devices=KNOWN))
    return m


def value(m: HubMetrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def telemetry(**kw: object) -> device_pb2.Telemetry:
    return device_pb2.Telemetry(ts_ms=time.time_ns() // 1_000_000, **kw)  # type: ignore[arg-type]


def test_cabinet_energy_survives_a_meter_reset() -> None:
    m = hub_metrics()
    for wh in (1000.0, 1010.0, 3.0, 8.0):  # the meter was swapped after 1010 Wh
        assert m.telemetry.observe("s1", "CAB-1", telemetry(energy_wh=wh, power_w=40))
    assert (
        value(m, "lockerhub_cabinet_energy_joules_total", site="s1", cabinet="CAB-1") == 1018 * 3600
    )
    assert value(m, "lockerhub_cabinet_power_watts", site="s1", cabinet="CAB-1") == 40


def test_doors_and_chilled_temperatures() -> None:
    m = hub_metrics()
    sample = telemetry(
        compartments=[
            device_pb2.CompartmentStatus(compartment_id="A01", door_open=True),
            device_pb2.CompartmentStatus(
                compartment_id="C01", has_temperature=True, temperature_c=3.5
            ),
            device_pb2.CompartmentStatus(
                compartment_id="C02", has_temperature=True, temperature_c=7.25
            ),
            device_pb2.CompartmentStatus(
                compartment_id="C03", has_temperature=True, temperature_c=math.nan
            ),
        ]
    )
    m.telemetry.observe("s1", "CAB-1", sample)
    assert value(m, "lockerhub_cabinet_doors_open", site="s1", cabinet="CAB-1") == 1
    labels = {"site": "s1", "cabinet": "CAB-1"}
    assert value(m, "lockerhub_cabinet_temperature_celsius", stat="min", **labels) == 3.5
    assert value(m, "lockerhub_cabinet_temperature_celsius", stat="max", **labels) == 7.25


def test_sorter_counters_reset_at_boot_and_chutes() -> None:
    m = hub_metrics()
    for inducted, sorted_ in ((100, 90), (150, 140), (5, 4)):
        m.telemetry.observe(
            "hub",
            "LINE-1",
            telemetry(
                energy_wh=500,
                sorter=device_pb2.SorterCounters(inducted=inducted, sorted=sorted_),
                chutes=[
                    device_pb2.ChuteStatus(chute_id="c1", full=True),
                    device_pb2.ChuteStatus(chute_id="c2"),
                ],
            ),
        )
    labels = {"site": "hub", "line": "LINE-1"}
    assert value(m, "lockerhub_sorter_parcels_total", outcome="inducted", **labels) == 155
    assert value(m, "lockerhub_sorter_parcels_total", outcome="sorted", **labels) == 144
    assert value(m, "lockerhub_sorter_parcels_total", outcome="no_read", **labels) == 0
    assert value(m, "lockerhub_sorter_chutes_full", **labels) == 1
    assert value(m, "lockerhub_sorter_energy_joules_total", **labels) == 500 * 3600
    # A line is not a cabinet.
    assert value(m, "lockerhub_cabinet_energy_joules_total", site="hub", cabinet="LINE-1") is None


def test_strangers_and_garbage_add_no_series() -> None:
    m = hub_metrics()
    before = generate_latest(m.registry)
    assert not m.telemetry.observe("s1", "STRANGER", telemetry(energy_wh=5))
    assert not m.telemetry.observe("s2", "CAB-1", telemetry(energy_wh=5))  # wrong site
    assert not m.telemetry.observe_raw("lockerhub/v1/s1/CAB-1/telemetry", b"\xff\x00garbage", None)
    assert not m.telemetry.observe_raw("lockerhub/v1/s1/CAB-1/telemetry", b"x" * 100_000, None)
    assert not m.telemetry.observe_raw("lockerhub/v1/s1/CAB-1/event", b"", None)
    assert not m.telemetry.observe_raw("not/a/topic", b"", None)
    assert not m.telemetry.observe_raw(
        "lockerhub/v1/s1/CAB-1/telemetry", b'{"energyWh": "lots"}', CONTENT_TYPE_JSON
    )
    # Negative and non-finite readings are ignored, the rest of the sample is used.
    assert m.telemetry.observe("s1", "CAB-1", telemetry(energy_wh=-5, power_w=math.inf))
    assert value(m, "lockerhub_cabinet_energy_joules_total", site="s1", cabinet="CAB-1") == 0
    assert m.telemetry.observe_raw(
        "lockerhub/v1/s1/CAB-1/telemetry", encode(telemetry(energy_wh=7)), None
    )
    assert value(m, "lockerhub_cabinet_energy_joules_total", site="s1", cabinet="CAB-1") == 7 * 3600
    assert b"STRANGER" not in generate_latest(m.registry)
    assert b"STRANGER" not in before
    # Deregistered: its series go away.
    m.snapshot.update(Snapshot(devices={}))
    assert value(m, "lockerhub_cabinet_energy_joules_total", site="s1", cabinet="CAB-1") is None


async def test_tap_hands_every_message_on() -> None:
    from hub.mqtt.link import Inbound

    m = hub_metrics()
    seen: list[Inbound] = []

    async def sink(message: Inbound) -> None:
        seen.append(message)

    tap = m.telemetry.tap(sink)
    messages = [
        Inbound("lockerhub/v1/s1/CAB-1/telemetry", encode(telemetry(energy_wh=3)), None),
        Inbound("lockerhub/v1/s1/CAB-1/telemetry", b"\xff", None),
        Inbound("lockerhub/v1/s1/CAB-1/event", b"\x01", None),
    ]
    for message in messages:
        await tap(message)
    assert seen == messages
    assert value(m, "lockerhub_cabinet_energy_joules_total", site="s1", cabinet="CAB-1") == 3 * 3600


def test_names_follow_prometheus_conventions() -> None:
    m = hub_metrics()
    m.telemetry.observe("s1", "CAB-1", telemetry(energy_wh=1))
    m.add_site("s1", ("announced",))
    families = list(text_string_to_metric_families(generate_latest(m.registry).decode()))
    assert families
    for family in families:
        assert family.name.startswith("lockerhub_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        for sample in family.samples:
            assert set(sample.labels) <= {
                "site",
                "cabinet",
                "line",
                "pile",
                "connector",
                "size",
                "state",
                "kind",
                "reason",
                "type",
                "outcome",
                "result",
                "status",
                "stat",
                "method",
                "code",
                "task",
                "le",
                "vehicle_class",
                "new_energy",
            }, sample


def test_health_gauges() -> None:
    m = hub_metrics()
    m.snapshot.set_health(store_up=True, link_up=False)
    assert value(m, "lockerhub_store_up") == 1
    assert value(m, "lockerhub_mqtt_connected") == 0
    assert value(m, "lockerhub_cabinet_up", site="s1", cabinet="CAB-1") == 1
    assert value(m, "lockerhub_sorter_up", site="hub", line="LINE-1") == 1
