"""Versioned schema migrations, applied in order once each (recorded in ``schema_version``).

Never edit a released migration: append a new one. The SQL is the portable subset that
``hub.store.dialect.pg_schema`` translates for PostgreSQL (migration 2's ``CASE WHEN active <> 0``
was ``CASE WHEN active``: the same on SQLite, and the one spelling PostgreSQL accepts). Full
phone numbers live only in ``recipient_contacts``; every other table holds the masked form.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "initial schema",
        """
        CREATE TABLE sites (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            lat REAL NOT NULL,
            lon REAL NOT NULL
        );
        CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            site TEXT NOT NULL REFERENCES sites(id),
            kind TEXT NOT NULL,
            online INTEGER NOT NULL DEFAULT 0,
            boot_count INTEGER NOT NULL DEFAULT 0,
            firmware TEXT NOT NULL DEFAULT '',
            last_seen_ms INTEGER NOT NULL DEFAULT 0,
            last_seq INTEGER NOT NULL DEFAULT 0,
            energy_wh REAL NOT NULL DEFAULT 0,
            power_w REAL NOT NULL DEFAULT 0,
            registered_ms INTEGER NOT NULL
        );
        CREATE INDEX devices_site ON devices(site);
        CREATE TABLE compartments (
            device TEXT NOT NULL REFERENCES devices(id),
            id TEXT NOT NULL,
            size TEXT NOT NULL,
            width_mm INTEGER NOT NULL,
            height_mm INTEGER NOT NULL,
            depth_mm INTEGER NOT NULL,
            max_weight_g INTEGER NOT NULL,
            zone TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'free',
            door_open INTEGER NOT NULL DEFAULT 0,
            item_present INTEGER NOT NULL DEFAULT 0,
            parcel_id TEXT,
            PRIMARY KEY (device, id)
        );
        CREATE TABLE parcels (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL,
            site TEXT NOT NULL,
            device TEXT,
            compartment TEXT,
            width_mm INTEGER NOT NULL,
            height_mm INTEGER NOT NULL,
            depth_mm INTEGER NOT NULL,
            weight_g INTEGER NOT NULL,
            zone TEXT NOT NULL,
            phone_masked TEXT NOT NULL,
            electronic_waybill INTEGER NOT NULL,
            reusable_container INTEGER NOT NULL,
            reservation_expires_ms INTEGER NOT NULL DEFAULT 0,
            pickup_deadline_ms INTEGER NOT NULL DEFAULT 0,
            created_ms INTEGER NOT NULL,
            updated_ms INTEGER NOT NULL
        );
        CREATE INDEX parcels_site_state ON parcels(site, state);
        CREATE TABLE recipient_contacts (
            parcel_id TEXT PRIMARY KEY REFERENCES parcels(id),
            phone TEXT NOT NULL
        );
        CREATE TABLE parcel_transitions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            parcel_id TEXT NOT NULL REFERENCES parcels(id),
            state TEXT NOT NULL,
            ts_ms INTEGER NOT NULL,
            actor TEXT NOT NULL,
            location TEXT NOT NULL
        );
        CREATE INDEX parcel_transitions_parcel ON parcel_transitions(parcel_id);
        CREATE TABLE device_events (
            device TEXT NOT NULL,
            seq INTEGER NOT NULL,
            event_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            device_ts_ms INTEGER NOT NULL,
            received_ms INTEGER NOT NULL,
            PRIMARY KEY (device, seq)
        );
        CREATE TABLE commands (
            id TEXT PRIMARY KEY,
            device TEXT NOT NULL,
            type TEXT NOT NULL,
            body BLOB NOT NULL,
            actor TEXT NOT NULL,
            state TEXT NOT NULL,
            outcome TEXT NOT NULL DEFAULT '',
            relay_fired INTEGER NOT NULL DEFAULT 0,
            detail TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            sent_ms INTEGER NOT NULL DEFAULT 0,
            completed_ms INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX commands_open ON commands(state, expires_ms);
        CREATE TABLE pickup_codes (
            parcel_id TEXT PRIMARY KEY REFERENCES parcels(id),
            code_hash TEXT NOT NULL,
            issued_ms INTEGER NOT NULL,
            deadline_ms INTEGER NOT NULL
        );
        CREATE TABLE alarms (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            device TEXT NOT NULL,
            kind TEXT NOT NULL,
            compartment TEXT NOT NULL,
            detail TEXT NOT NULL,
            active INTEGER NOT NULL,
            device_ts_ms INTEGER NOT NULL,
            received_ms INTEGER NOT NULL
        );
        """,
    ),
    (
        2,
        "lifecycle sweeps, desired state, alarm workflow, live event journal",
        """
        ALTER TABLE parcels ADD COLUMN reminded INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX parcels_deadline ON parcels(state, pickup_deadline_ms);
        CREATE INDEX parcels_hold ON parcels(state, reservation_expires_ms);
        ALTER TABLE parcel_transitions ADD COLUMN detail TEXT NOT NULL DEFAULT '';
        ALTER TABLE devices ADD COLUMN desired_applied INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE devices ADD COLUMN outbox_full INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE devices ADD COLUMN resend_requested_to INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE alarms ADD COLUMN site TEXT NOT NULL DEFAULT '';
        ALTER TABLE alarms ADD COLUMN status TEXT NOT NULL DEFAULT 'raised';
        ALTER TABLE alarms ADD COLUMN acknowledged_by TEXT NOT NULL DEFAULT '';
        ALTER TABLE alarms ADD COLUMN updated_ms INTEGER NOT NULL DEFAULT 0;
        UPDATE alarms SET status = CASE WHEN active <> 0 THEN 'raised' ELSE 'cleared' END,
            site = COALESCE((SELECT site FROM devices WHERE devices.id = alarms.device), ''),
            updated_ms = received_ms;
        CREATE INDEX alarms_open ON alarms(device, kind, compartment, status);
        CREATE TABLE desired_state (
            device TEXT PRIMARY KEY REFERENCES devices(id),
            version INTEGER NOT NULL,
            published_version INTEGER NOT NULL DEFAULT 0,
            config_hash TEXT NOT NULL DEFAULT '',
            updated_ms INTEGER NOT NULL
        );
        CREATE TABLE live_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts_ms INTEGER NOT NULL,
            site TEXT NOT NULL,
            kind TEXT NOT NULL,
            ref TEXT NOT NULL,
            state TEXT NOT NULL,
            actor TEXT NOT NULL DEFAULT '',
            location TEXT NOT NULL DEFAULT '',
            alarm_kind TEXT NOT NULL DEFAULT '',
            device TEXT NOT NULL DEFAULT '',
            compartment TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX live_events_site ON live_events(site, id);
        """,
    ),
    (
        3,
        "compact telemetry history",
        """
        CREATE TABLE telemetry_history (
            device TEXT NOT NULL,
            bucket_ms INTEGER NOT NULL,
            energy_wh REAL NOT NULL,
            power_w_max REAL NOT NULL,
            samples INTEGER NOT NULL,
            PRIMARY KEY (device, bucket_ms)
        );
        """,
    ),
    (
        4,
        "operator-provisioned devices and layouts; births only confirm compartments",
        """
        ALTER TABLE devices ADD COLUMN provisioned INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE compartments ADD COLUMN provisioned INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE compartments ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        5,
        "durable outbox of recipient notices (the plaintext code kept only until delivered)",
        """
        CREATE TABLE notice_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            parcel_id TEXT NOT NULL REFERENCES parcels(id),
            kind TEXT NOT NULL,
            code TEXT NOT NULL DEFAULT '',
            site TEXT NOT NULL,
            cabinet TEXT NOT NULL,
            compartment TEXT NOT NULL,
            deadline_ms INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_ms INTEGER NOT NULL,
            last_error TEXT NOT NULL DEFAULT '',
            created_ms INTEGER NOT NULL,
            delivered_ms INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX notice_outbox_due ON notice_outbox(state, next_attempt_ms);
        """,
    ),
    (
        6,
        "payload format each device asked for",
        """
        ALTER TABLE devices ADD COLUMN accept TEXT NOT NULL DEFAULT '';
        """,
    ),
    (
        7,
        "parcels belong to a carrier (tenant); empty is the city operator's",
        """
        ALTER TABLE parcels ADD COLUMN carrier TEXT NOT NULL DEFAULT '';
        CREATE INDEX parcels_carrier ON parcels(carrier, seq);
        """,
    ),
    (
        8,
        "several hubs on one store: job leases, claimed notices and desired-state publishes",
        """
        CREATE TABLE job_leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until_ms BIGINT NOT NULL
        );
        ALTER TABLE notice_outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
        ALTER TABLE desired_state ADD COLUMN publishing_by TEXT NOT NULL DEFAULT '';
        ALTER TABLE desired_state ADD COLUMN publishing_until_ms BIGINT NOT NULL DEFAULT 0;
        """,
    ),
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
)
