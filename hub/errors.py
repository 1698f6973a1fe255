"""The hub's exception tree.

Every error the hub raises on purpose derives from :class:`HubError`. Third-party errors (sqlite3,
aiomqtt, grpc) are translated at the boundary with ``raise ... from exc``; the gRPC layer maps this
tree to status codes in one place (``hub.api.interceptors``)::

    HubError
    ├── ConfigError            settings file or environment is wrong (names the key)
    ├── StoreError             the database failed (not the caller's fault)
    │   └── StoreConflict      a serialization failure or deadlock: the store retries it
    ├── BrokerError            the MQTT link failed or is down
    └── RequestError           the caller's request cannot be served as asked
        ├── InvalidArgument    malformed input; nothing was stored
        ├── NotFound           a named parcel, cabinet or compartment does not exist
        ├── Conflict           the thing already exists (e.g. duplicate parcel id)
        ├── FailedPrecondition the system is not in a state that allows it
        │   └── IllegalTransition   a parcel lifecycle step that is not allowed
        ├── DeviceUnavailable  the device (or the broker link to it) is offline
        └── CommandTimeout     a device did not answer a command in time
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(HubError):
    """Invalid settings; the message names the offending key (``broker.port``)."""


class StoreError(HubError):
    """The database failed; translated from sqlite3 and psycopg errors."""


class StoreUnavailable(StoreError):
    """The database could not be reached or cut the connection (a restart, a failover): the
    statement's outcome says nothing about the data, so the caller keeps it and tries later."""


class StoreConflict(StoreError):
    """A transaction lost a race with another (PostgreSQL serialization failure or deadlock,
    or a row it counted on was taken meanwhile). ``Store.transaction_on_thread`` runs the work
    again after a short backoff; it only escapes when every attempt lost."""


class BrokerError(HubError):
    """The MQTT link failed or is down; translated from aiomqtt errors."""


class RequestError(HubError):
    """An operator request that cannot be served as asked (an expected error, not a bug)."""


class InvalidArgument(RequestError):
    """Malformed input; nothing was stored."""


class NotFound(RequestError):
    """A named parcel, cabinet, compartment or site does not exist."""


class Conflict(RequestError):
    """The thing to create already exists."""


class FailedPrecondition(RequestError):
    """The system's current state does not allow the request."""


class IllegalTransition(FailedPrecondition):
    """A parcel lifecycle transition that the state machine forbids."""


class DeviceUnavailable(RequestError):
    """The device, or the hub's broker link to it, is offline."""


class CommandTimeout(RequestError):
    """A device did not report a command's result before its deadline."""


class Dropped(HubError):
    """A device message refused at ingest (internal: counted by ``reason`` and logged, never raised
    out of the ingest loop). ``reason`` is a bounded metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Unauthorized(Dropped):
    """A device event the authorization table refuses (``hub.ingest.authz``): dropped with reason
    ``unauthorized`` and, after the message's rollback, an ``unauthorized_event`` alarm for the
    sending device."""

    def __init__(self, message: str) -> None:
        super().__init__("unauthorized", message)
