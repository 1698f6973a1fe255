"""Migrations 1-8: parcels, devices, journal, telemetry, layouts, notices, carriers, leases."""

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
)
