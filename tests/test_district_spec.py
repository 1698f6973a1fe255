"""A district's day length: a large district gets a longer day, unless asked to keep it."""

from __future__ import annotations

from demo.district import TELEMETRY_PER_S, telemetry_s
from demo.district_spec import MIN_DAY_S_PER_PARCEL, DistrictSpec


def test_a_small_district_keeps_the_day_it_asked_for() -> None:
    spec = DistrictSpec(cabinets=200, sites=20, day_s=120)
    assert spec.paced() is spec
    assert spec.paced().asked_day_s is None


def test_a_large_district_gets_a_day_long_enough_for_its_parcels() -> None:
    spec = DistrictSpec(cabinets=2000, sites=200, day_s=120).paced()
    assert spec.day_s == round(MIN_DAY_S_PER_PARCEL * 8000)
    assert spec.asked_day_s == 120
    assert spec.hour_s == spec.day_s / 18
    assert spec.paced() is spec  # lengthening twice changes nothing


def test_a_fixed_day_is_kept_whatever_the_size() -> None:
    spec = DistrictSpec(cabinets=2000, sites=200, day_s=120, pace=False)
    assert spec.paced() is spec


def test_telemetry_is_bounded_for_the_whole_district() -> None:
    tiny = DistrictSpec(cabinets=20, sites=2, day_s=240)
    assert telemetry_s(tiny) == tiny.hour_s / 2  # a sample every half simulated hour
    for n in (200, 2000, 5000):
        spec = DistrictSpec(cabinets=n, sites=n // 10, day_s=120, pace=False)
        assert n / telemetry_s(spec) <= TELEMETRY_PER_S + 1e-9
