"""Migrations 9 on: vehicles and plans, the sorting hub, carriers and couriers, personal data
and partners, indexes."""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        9,
        "vehicle and e-bike registry with zone permits; stored route plans",
        """
        CREATE TABLE vehicles (
            id TEXT PRIMARY KEY,
            plate TEXT NOT NULL UNIQUE,
            class TEXT NOT NULL,
            capacity_parcels INTEGER NOT NULL,
            capacity_volume_l REAL NOT NULL DEFAULT 0,
            battery_kwh REAL NOT NULL DEFAULT 0,
            consumption_kwh_per_km REAL NOT NULL DEFAULT 0,
            depot TEXT NOT NULL REFERENCES sites(id),
            driver_id TEXT NOT NULL DEFAULT '',
            safety_trained INTEGER NOT NULL DEFAULT 0,
            insurance_expiry_ms BIGINT NOT NULL DEFAULT 0,
            id_tag TEXT NOT NULL DEFAULT '',
            retired INTEGER NOT NULL DEFAULT 0,
            retired_reason TEXT NOT NULL DEFAULT '',
            registered_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL
        );
        CREATE INDEX vehicles_depot ON vehicles(depot, retired);
        CREATE TABLE vehicle_permits (
            vehicle TEXT NOT NULL REFERENCES vehicles(id),
            zone TEXT NOT NULL,
            PRIMARY KEY (vehicle, zone)
        );
        CREATE TABLE route_plans (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            plan_id TEXT NOT NULL UNIQUE,
            hub_site TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            replaces TEXT NOT NULL DEFAULT '',
            replaced_by TEXT NOT NULL DEFAULT '',
            actor TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            request TEXT NOT NULL,
            reply TEXT NOT NULL
        );
        CREATE TABLE route_plan_vehicles (
            plan TEXT NOT NULL REFERENCES route_plans(plan_id),
            vehicle TEXT NOT NULL,
            PRIMARY KEY (plan, vehicle)
        );
        """,
    ),
    (
        10,
        "sort plans sent to lines, sort exceptions, screening holds, reusable containers",
        """
        CREATE TABLE sort_plans (
            line TEXT NOT NULL,
            version BIGINT NOT NULL,
            rules TEXT NOT NULL,
            exception_chute TEXT NOT NULL DEFAULT '',
            hold_chute TEXT NOT NULL DEFAULT '',
            created_ms BIGINT NOT NULL,
            actor TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (line, version)
        );
        CREATE TABLE sort_lines (
            line TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            version BIGINT NOT NULL DEFAULT 0,
            applied_version BIGINT NOT NULL DEFAULT 0,
            applied_ms BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE sort_exceptions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            line TEXT NOT NULL,
            site TEXT NOT NULL,
            parcel_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            plan_version BIGINT NOT NULL,
            chute TEXT NOT NULL DEFAULT '',
            expected_chute TEXT NOT NULL DEFAULT '',
            ts_ms BIGINT NOT NULL
        );
        CREATE TABLE screenings (
            parcel_id TEXT PRIMARY KEY REFERENCES parcels(id),
            site TEXT NOT NULL,
            station TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            screened_ms BIGINT NOT NULL,
            released_by TEXT NOT NULL DEFAULT '',
            release_reason TEXT NOT NULL DEFAULT '',
            released_ms BIGINT NOT NULL DEFAULT 0
        );
        CREATE INDEX screenings_status ON screenings(status, site);
        CREATE TABLE containers (
            id TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            state TEXT NOT NULL,
            site TEXT NOT NULL DEFAULT '',
            vehicle TEXT NOT NULL DEFAULT '',
            home_site TEXT NOT NULL,
            cycles BIGINT NOT NULL DEFAULT 0,
            first_seen_ms BIGINT NOT NULL,
            last_seen_ms BIGINT NOT NULL
        );
        CREATE INDEX containers_state ON containers(state, site);
        CREATE TABLE container_parcels (
            container TEXT NOT NULL,
            parcel_id TEXT NOT NULL,
            site TEXT NOT NULL,
            filled_ms BIGINT NOT NULL,
            emptied_ms BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (container, parcel_id, filled_ms)
        );
        CREATE INDEX container_parcels_parcel ON container_parcels(parcel_id);
        CREATE TABLE container_share (
            site TEXT PRIMARY KEY,
            sorted BIGINT NOT NULL DEFAULT 0,
            contained BIGINT NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        11,
        "carriers (tenants), per-carrier compartment quotas, couriers and their conduct",
        """
        CREATE TABLE carriers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            actor TEXT NOT NULL
        );
        CREATE TABLE carrier_quotas (
            carrier TEXT NOT NULL,
            cabinet TEXT NOT NULL,
            max_compartments INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (carrier, cabinet)
        );
        CREATE TABLE carrier_reserved (
            cabinet TEXT NOT NULL,
            compartment TEXT NOT NULL,
            carrier TEXT NOT NULL,
            PRIMARY KEY (cabinet, compartment)
        );
        CREATE TABLE couriers (
            id TEXT PRIMARY KEY,
            carrier TEXT NOT NULL,
            name TEXT NOT NULL,
            phone_masked TEXT NOT NULL,
            status TEXT NOT NULL,
            code_salt TEXT NOT NULL DEFAULT '',
            code_hash TEXT NOT NULL DEFAULT '',
            code_iterations INTEGER NOT NULL DEFAULT 0,
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL
        );
        CREATE INDEX couriers_carrier ON couriers(carrier, id);
        CREATE TABLE courier_conduct (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            courier TEXT NOT NULL,
            kind TEXT NOT NULL,
            parcel_id TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            actor TEXT NOT NULL,
            ts_ms BIGINT NOT NULL
        );
        CREATE INDEX courier_conduct_courier ON courier_conduct(courier, id);
        CREATE TABLE courier_blocklist (
            courier TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            actor TEXT NOT NULL,
            since_ms BIGINT NOT NULL
        );
        CREATE TABLE courier_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            courier TEXT NOT NULL,
            action TEXT NOT NULL,
            reason TEXT NOT NULL,
            actor TEXT NOT NULL,
            ts_ms BIGINT NOT NULL
        );
        ALTER TABLE parcel_transitions ADD COLUMN courier TEXT NOT NULL DEFAULT '';
        """,
    ),
    (
        12,
        "personal data retention and audit, locker consent, partners, notices, incidents, filings",
        """
        ALTER TABLE parcels ADD COLUMN locker_consent TEXT NOT NULL DEFAULT 'unspecified';
        ALTER TABLE parcels ADD COLUMN pii_purged_ms BIGINT NOT NULL DEFAULT 0;
        CREATE INDEX parcels_closed ON parcels(pii_purged_ms, state, updated_ms);
        CREATE TABLE personal_data_reads (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms BIGINT NOT NULL,
            actor TEXT NOT NULL,
            parcel_id TEXT NOT NULL,
            purpose TEXT NOT NULL
        );
        CREATE INDEX personal_data_reads_parcel ON personal_data_reads(parcel_id, id);
        CREATE TABLE partners (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            secret_sha256 TEXT NOT NULL UNIQUE,
            expires_ms BIGINT NOT NULL DEFAULT 0,
            revoked INTEGER NOT NULL DEFAULT 0,
            created_ms BIGINT NOT NULL
        );
        CREATE TABLE partner_carriers (
            partner TEXT NOT NULL REFERENCES partners(id),
            carrier TEXT NOT NULL,
            PRIMARY KEY (partner, carrier)
        );
        CREATE TABLE maintenance_windows (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            site TEXT NOT NULL,
            starts_ms BIGINT NOT NULL,
            ends_ms BIGINT NOT NULL,
            reason TEXT NOT NULL,
            scheduled_by TEXT NOT NULL,
            scheduled_ms BIGINT NOT NULL,
            cancelled INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            cause TEXT NOT NULL,
            site TEXT NOT NULL,
            started_ms BIGINT NOT NULL,
            ended_ms BIGINT NOT NULL DEFAULT 0
        );
        CREATE INDEX incidents_open ON incidents(cause, site, ended_ms);
        CREATE TABLE site_filings (
            site TEXT PRIMARY KEY,
            filing_number TEXT NOT NULL,
            site_type TEXT NOT NULL,
            public_service INTEGER NOT NULL
        );
        """,
    ),
    (
        13,
        "a cabinet's parcels by index (desired state and reservations read them per cabinet)",
        """
        CREATE INDEX parcels_device ON parcels(device, state);
        """,
    ),
    (
        14,
        "a hole in a device's sequence marked for a later resend request (several hubs)",
        """
        ALTER TABLE devices ADD COLUMN gap_since_ms BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE devices ADD COLUMN gap_from BIGINT NOT NULL DEFAULT 0;
        CREATE INDEX devices_gap ON devices(gap_since_ms) WHERE gap_since_ms > 0;
        """,
    ),
    (
        15,
        "pickup deadlines indexed for deposited parcels only (the only ones the sweeps read)",
        # parcels_hold still leads with state for queries by state alone. A partial index takes
        # no entry for the other states: less to write per insert and per state change (on
        # PostgreSQL every non-HOT update adds an entry to each index whose predicate holds).
        """
        DROP INDEX parcels_deadline;
        CREATE INDEX parcels_deposited_deadline ON parcels(state, pickup_deadline_ms)
            WHERE state = 'deposited';
        """,
    ),
)
