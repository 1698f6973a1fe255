"""Accounts and roles for mosquitto's dynamic-security plugin: the JSON file and the live API.

Why the plugin and not an ``acl_file``: mosquitto 2.0's ACL file never checks SUBSCRIBE (it grants
every filter and only refuses *delivery*), so a device could join the hub's shared subscription
``$share/hub/...``, be handed its share of the group's messages and silently drop them. The plugin
checks each SUBSCRIBE against ``subscribeLiteral``/``subscribePattern`` ACLs, deny by default,
and binds a client id to a device account (a device cannot take over the hub's or another
cabinet's session).

Roles: ``lockerhub-hub`` (the whole ``lockerhub/v1`` tree, plain or shared), one
``lockerhub-device-<id>`` role per device (publish its device-to-hub topics, subscribe to and
receive its own hub-to-device topics, literally: no wildcard, no ``$share``), and
``lockerhub-admin`` (the plugin's ``$CONTROL`` API, for live changes). Passwords are stored as
PBKDF2-HMAC-SHA512 the way the plugin does (12-byte salt, base64); never in plain text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hub.errors import BrokerError
from lockerhub.topics import TOPIC_ROOT, Direction, Kind, Topic, spec, validate_id

ADMIN_USERNAME = "lockerhub-admin"
HUB_ROLE = "lockerhub-hub"
ADMIN_ROLE = "lockerhub-admin"
DEVICE_ROLE_PREFIX = "lockerhub-device-"
# Names a device or hub account may not take (they are ours, or the plugin's).
RESERVED = frozenset({ADMIN_USERNAME})
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
_ITERATIONS = 101
_SALT_BYTES = 12

Acl = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    """A stored password: PBKDF2-HMAC-SHA512 hash, salt and iterations (all the plugin needs)."""

    hash_b64: str
    salt_b64: str
    iterations: int = _ITERATIONS

    @classmethod
    def of(cls, password: str, *, salt: bytes | None = None) -> Credential:
        """Hash ``password`` with a fresh (or the given) salt."""
        salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
        digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
        b64 = base64.b64encode
        return cls(hash_b64=b64(digest).decode(), salt_b64=b64(salt).decode())

    @classmethod
    def from_password_line(cls, line: str) -> Credential:
        """Read a mosquitto password-file line (``user:$7$iter$salt$hash``, the same scheme)."""
        _, _, rest = line.partition(":")
        parts = rest.split("$")
        if len(parts) != 5 or parts[1] != "7":
            raise ValueError("not a mosquitto $7$ password line")
        return cls(hash_b64=parts[4], salt_b64=parts[3], iterations=int(parts[2]))

    def password_line(self, username: str) -> str:
        """The same hash as a mosquitto password-file line (how ``accounts.json`` keeps it)."""
        return f"{username}:$7${self.iterations}${self.salt_b64}${self.hash_b64}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Client:
    """One account as the plugin sees it; ``site``/``device`` set: a device, else a hub."""

    username: str
    credential: Credential | None  # None: no password login (a device with a certificate)
    site: str | None = None
    device: str | None = None

    @property
    def is_device(self) -> bool:
        return self.device is not None


def _acl(acltype: str, topic: str, allow: bool = True) -> Acl:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": allow}


def device_role(site: str, device: str) -> dict[str, Any]:
    """The role of one device: its own topics, literally, nothing else."""
    acls: list[Acl] = []
    for kind in Kind:
        topic = str(Topic(site=site, device=device, kind=kind))
        if spec(kind).direction is Direction.DEVICE_TO_HUB:
            acls.append(_acl("publishClientSend", topic))
        else:
            # subscribeLiteral: the exact filter only, so no wildcard and no $share/<g>/ prefix.
            acls.append(_acl("subscribeLiteral", topic))
            acls.append(_acl("publishClientReceive", topic))
    return {"rolename": DEVICE_ROLE_PREFIX + validate_id(device, "device"), "acls": acls}


def hub_role() -> dict[str, Any]:
    """Hubs read and write the whole tree, directly or through any shared-subscription group."""
    tree = f"{TOPIC_ROOT}/#"
    return {
        "rolename": HUB_ROLE,
        "acls": [
            _acl("publishClientSend", tree),
            _acl("publishClientReceive", tree),
            _acl("subscribePattern", tree),
            _acl("subscribePattern", f"$share/+/{tree}"),
        ],
    }


def admin_role() -> dict[str, Any]:
    """The plugin's own API, and nothing of the device tree."""
    api = "$CONTROL/dynamic-security/#"
    return {
        "rolename": ADMIN_ROLE,
        "acls": [
            _acl("publishClientSend", api),
            _acl("publishClientReceive", api),
            _acl("subscribePattern", api),
        ],
    }


def _client_json(c: Client, rolename: str) -> dict[str, Any]:
    item: dict[str, Any] = {"username": c.username, "roles": [{"rolename": rolename}]}
    if c.credential is not None:
        item |= {
            "password": c.credential.hash_b64,
            "salt": c.credential.salt_b64,
            "iterations": c.credential.iterations,
        }
    if c.is_device:
        # A device may only connect with its own id as client id (MQTT 3.1.3.1): with another
        # cabinet's or the hub's id it would take over (and end) their session.
        item["clientid"] = c.username
    return item


def render(clients: Iterable[Client], admin: Credential) -> str:
    """The plugin's JSON config: deny by default, one role per device, hubs, one admin."""
    admin_client = Client(username=ADMIN_USERNAME, credential=admin)
    items = [_client_json(admin_client, ADMIN_ROLE)]
    roles = [admin_role(), hub_role()]
    for c in sorted(clients, key=lambda c: (c.is_device, c.username)):
        if c.username in RESERVED:
            raise BrokerError(f"{c.username!r} is a reserved broker account name")
        if c.site is not None and c.device is not None:
            role = device_role(c.site, c.device)
            roles.append(role)
            items.append(_client_json(c, role["rolename"]))
        else:
            items.append(_client_json(c, HUB_ROLE))
    config = {
        # Everything not granted by a role is refused, receiving included (MQTT 5 SUBACK 0x87);
        # unsubscribing from anything is harmless.
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": items,
        "groups": [],
        "roles": roles,
    }
    return json.dumps(config, indent=1) + "\n"


def add_commands(c: Client, password: str | None) -> list[dict[str, Any]]:
    """Plugin API commands that (re)create ``c`` on a running broker."""
    commands: list[dict[str, Any]] = [{"command": "deleteClient", "username": c.username}]
    if c.site is not None and c.device is not None:
        role = device_role(c.site, c.device)
        rolename = role["rolename"]
        commands += [
            {"command": "deleteRole", "rolename": rolename},
            {"command": "createRole"} | role,
        ]
    else:
        rolename = HUB_ROLE
    create: dict[str, Any] = {
        "command": "createClient",
        "username": c.username,
        "roles": [{"rolename": rolename}],
    }
    if password is not None:
        create["password"] = password
    if c.is_device:
        create["clientid"] = c.username
    return [*commands, create]


def remove_commands(username: str, device: bool) -> list[dict[str, Any]]:
    """Plugin API commands that delete an account (and a device's role)."""
    commands: list[dict[str, Any]] = [{"command": "deleteClient", "username": username}]
    if device:
        commands.append({"command": "deleteRole", "rolename": DEVICE_ROLE_PREFIX + username})
    return commands


# "not found" answers to deletes are expected when (re)creating.
_BENIGN = ("Client not found", "Role not found")


def apply(
    host: str,
    port: int,
    admin_password: str,
    commands: list[dict[str, Any]],
    *,
    timeout_s: float = 10,
) -> None:
    """Send ``commands`` to a running broker's plugin API as the admin account and wait for the
    answers; raises BrokerError on a refused login or a failed command (deletes of absent things
    excepted). Blocking: call from a thread.
    """
    done = threading.Event()
    answer: list[Any] = []
    failure: list[str] = []
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{ADMIN_USERNAME}-{secrets.token_hex(4)}",
        protocol=paho.MQTTv5,
    )
    client.username_pw_set(ADMIN_USERNAME, admin_password)

    def on_connect(c: paho.Client, u: object, f: object, rc: Any, p: object) -> None:
        if rc.is_failure:
            failure.append(f"admin login refused ({rc})")
            done.set()
            return
        c.subscribe(f"{CONTROL_TOPIC}/response", qos=1)

    def on_subscribe(c: paho.Client, u: object, mid: int, rcs: Any, p: object) -> None:
        c.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)

    def on_message(c: paho.Client, u: object, msg: paho.MQTTMessage) -> None:
        answer.append(json.loads(msg.payload))
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=10)
    except OSError as exc:
        raise BrokerError(f"broker at {host}:{port} unreachable: {exc}") from exc
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            raise BrokerError("the dynamic-security plugin did not answer")
    finally:
        client.disconnect()
        client.loop_stop()
    if failure:
        raise BrokerError(failure[0])
    for response in answer[0].get("responses", []):
        error = response.get("error")
        if error and error not in _BENIGN:
            raise BrokerError(f"dynamic-security {response.get('command')}: {error}")
