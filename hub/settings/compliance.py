"""Settings of personal-data retention and consent, and of partner notices."""

from __future__ import annotations

from dataclasses import dataclass

from hub.settings.checks import require as _require

CONSENT_POLICIES = ("assume", "refuse")


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivacySettings:
    """Retention of recipients' phone numbers and what an announcement without consent means."""

    # Full phone numbers are erased this many days after pickup, return or cancellation.
    retention_days: float = 30.0
    # How often the retention sweeper looks for parcels past retention (hub clock).
    sweep_interval_s: float = 3600.0
    # An announcement whose locker_consent is UNSPECIFIED (a client older than the field):
    # "assume" accepts it as before (recorded as unspecified); "refuse" keeps it out of lockers.
    unspecified_consent: str = "assume"
    # Parcels purged per transaction.
    batch: int = 500

    def __post_init__(self) -> None:
        _require(0 <= self.retention_days <= 3650, "privacy.retention_days", "must be 0-3650")
        _require(self.sweep_interval_s > 0, "privacy.sweep_interval_s", "must be > 0")
        _require(
            self.unspecified_consent in CONSENT_POLICIES,
            "privacy.unspecified_consent",
            f"must be one of {', '.join(CONSENT_POLICIES)}",
        )
        _require(1 <= self.batch <= 100_000, "privacy.batch", "must be 1-100000")


@dataclass(frozen=True, slots=True, kw_only=True)
class PartnerSettings:
    """Notices to partners: how early a maintenance window must be announced, how long a site
    may have every cabinet offline before it counts as an incident."""

    min_notice_h: float = 24.0
    # The longest maintenance window one request may schedule.
    max_window_h: float = 72.0
    site_offline_after_s: float = 300.0

    def __post_init__(self) -> None:
        _require(0 <= self.min_notice_h <= 24 * 90, "partners.min_notice_h", "must be 0-2160")
        _require(0 < self.max_window_h <= 24 * 30, "partners.max_window_h", "must be 0-720 (>0)")
        _require(self.site_offline_after_s >= 0, "partners.site_offline_after_s", "must be >= 0")
