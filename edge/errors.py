"""The edge agent's exception tree; third-party errors are translated at the boundary.

EdgeError
├── ConfigError   a settings file or environment variable is wrong (message names the key)
├── StorageError  the local SQLite database failed (wraps sqlite3 errors)
├── LinkError     the MQTT link is down or a publish/subscribe failed (wraps aiomqtt errors)
└── CommandError  a command or desired state is invalid (turned into a REJECTED result)
    └── ResendWindowError  ResendEvents asked for events outside the kept window

``DriverError`` (the hardware or its simulator failed) belongs to the driver contract,
``lockerhub.driver``, and is re-exported here.
"""

from __future__ import annotations

from lockerhub.driver import DriverError

__all__ = [
    "CommandError",
    "ConfigError",
    "DriverError",
    "EdgeError",
    "LinkError",
    "ResendWindowError",
    "StorageError",
]


class EdgeError(Exception):
    """Base of every error the edge agent raises on purpose."""


class ConfigError(EdgeError):
    """Invalid configuration; the message names the offending TOML key or environment variable."""


class StorageError(EdgeError):
    """The local database could not be opened, migrated, read or written."""


class LinkError(EdgeError):
    """The MQTT link to the broker is down or an MQTT operation failed."""


class CommandError(EdgeError):
    """A command (or the desired state) cannot be applied; the message is the result's detail."""


class ResendWindowError(CommandError):
    """ResendEvents asked for events the device no longer keeps."""
