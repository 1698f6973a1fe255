"""Zones, site rules and dispatch settings: each bad value is refused naming its key."""

from __future__ import annotations

from typing import Any

import pytest

from hub.errors import ConfigError
from hub.settings import HubSettings
from hub.settings.dispatch import VEHICLE_CLASSES, parse_window
from hub.vehicles import VehicleClass


def test_windows_parse_to_minutes() -> None:
    assert parse_window("07:30-22:00", "k") == (450.0, 1320.0)
    assert parse_window("00:00-24:00", "k") == (0.0, 1440.0)


@pytest.mark.parametrize(
    "text",
    ["", "7:30-22:00", "10:00-10:00", "16:00-10:00", "24:30-24:45", "aa:bb-cc:dd", "x" * 999],
)
def test_empty_or_malformed_windows_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"zones\.x\.window"):
        parse_window(text, "zones.x.window")


def test_the_settings_know_every_vehicle_class() -> None:
    assert set(VEHICLE_CLASSES) == {str(c) for c in VehicleClass}


ZONE = {"id": "old", "window": "10:00-16:00"}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"zones": [{"id": "old", "window": "10:00-09:00"}]}, "zones[old].window"),
        ({"zones": [{"id": "a/b"}]}, "zones.id"),
        ({"zones": [ZONE, ZONE]}, "zones.id"),
        (
            {
                "zones": [
                    {"id": "z", "exemptions": [{"vehicle_class": "tank", "window": "00:00-24:00"}]}
                ]
            },
            "zones.exemptions.vehicle_class",
        ),
        (
            {
                "zones": [
                    {
                        "id": "z",
                        "exemptions": [
                            {"vehicle_class": "e_bike", "window": "08:00-09:00"},
                            {"vehicle_class": "e_bike", "window": "10:00-11:00"},
                        ],
                    }
                ]
            },
            "zones[z].exemptions",
        ),
        ({"sites": [{"id": "s", "zone": "nowhere"}]}, "sites[s].zone"),
        ({"sites": [{"id": "s", "kind": "castle"}]}, "sites[s].kind"),
        ({"sites": [{"id": "s", "hours": "09:00"}]}, "sites[s].hours"),
        (
            {"sites": [{"id": "s", "ebike_charging_hours": "12:00-12:00"}]},
            "sites[s].ebike_charging_hours",
        ),
        ({"dispatch": {"timezone": "Mars/Olympus"}}, "dispatch.timezone"),
        ({"dispatch": {"speed_kmh": 0}}, "dispatch.speed_kmh"),
        ({"dispatch": {"default_pile_kw": -1}}, "dispatch.default_pile_kw"),
        (
            {
                "sites": [{"id": "s"}],
                "devices": [{"id": "c", "site": "s", "layout": "S:1", "power_kw": 7}],
            },
            "devices[c].power_kw",
        ),
    ],
)
def test_bad_dispatch_settings_name_their_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        HubSettings.from_mapping(raw)
    assert key in str(err.value)


def test_a_zone_gives_each_class_its_window() -> None:
    s = HubSettings.from_mapping(
        {
            "dispatch": {"timezone": "Asia/Shanghai"},
            "zones": [
                {
                    "id": "old",
                    "window": "10:00-16:00",
                    "exemptions": [{"vehicle_class": "electric_van", "window": "00:00-24:00"}],
                }
            ],
            "sites": [
                {
                    "id": "s",
                    "zone": "old",
                    "kind": "metro_station",
                    "hours": "06:00-23:00",
                    "public_service": True,
                    "ebike_charging_hours": "22:00-24:00",
                }
            ],
        }
    )
    zone = s.zones[0]
    assert zone.window_for("electric_van") == (0.0, 1440.0)
    assert zone.window_for("combustion_van") == (600.0, 960.0)
    assert s.sites[0].public_service
    assert s.sites[0].zone == "old"
