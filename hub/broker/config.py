"""``lockerhub broker config``: write the whole broker directory mosquitto runs from.

``mosquitto.conf`` (listeners, TLS, the dynamic-security plugin, persistence, limits), the
plugin's ``dynamic-security.json`` from the accounts ``lockerhub devices`` keeps, and with
``--tls-port`` a CA and the broker's server certificate under ``pki/``. Then run
``mosquitto -c <broker dir>/mosquitto.conf`` (docs/hub.md, "Running the broker").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hub.broker import pki
from hub.broker.mosquitto import DEFAULT_MAX_PACKET_BYTES, BrokerConfig, render_config
from hub.broker.provision import AccountBook
from hub.errors import BrokerError, ConfigError


def write_broker_dir(cfg: BrokerConfig, *, renew_server_cert: bool = False) -> list[Path]:
    """Write everything mosquitto needs into ``cfg.workdir``; returns the files written.

    Raises:
        ConfigError: the directory or its accounts file is unusable.
        BrokerError: the dynamic-security plugin is not installed.
    """
    cfg.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    book = AccountBook.load(cfg.workdir)
    book.save()  # dynamic-security.json (and the admin password) from accounts.json
    written = [cfg.workdir / "accounts.json", cfg.workdir / "dynamic-security.json"]
    if cfg.tls_port is not None:
        created = pki.ensure_ca(cfg.pki)
        if created or renew_server_cert or not cfg.pki.server_cert.exists():
            pki.issue_server(cfg.pki, cfg.tls_hostnames)
            written += [cfg.pki.server_cert, cfg.pki.server_key]
        if created:
            written += [cfg.pki.ca_cert, cfg.pki.ca_key]
    conf = cfg.workdir / "mosquitto.conf"
    conf.write_text(render_config(cfg, cfg.port, cfg.tls_port))
    return [conf, *written]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lockerhub broker config``."""
    broker = subparsers.add_parser(
        "broker", help="write the broker's mosquitto.conf, dynamic-security file and TLS files"
    )
    sub = broker.add_subparsers(dest="broker_command", required=True)
    p = sub.add_parser("config", help="write <broker dir>/mosquitto.conf and what it refers to")
    p.add_argument("--broker-dir", type=Path, required=True, help="the broker directory")
    p.add_argument("--host", default="127.0.0.1", help="hub listener address (private!)")
    p.add_argument("--port", type=int, default=1883, help="hub listener port (default 1883)")
    p.add_argument(
        "--tls-port", type=int, help="device TLS listener port (e.g. 8883); off if unset"
    )
    p.add_argument("--tls-host", help="device TLS listener address (default: --host)")
    p.add_argument(
        "--tls-hostname",
        action="append",
        dest="tls_hostnames",
        help="a DNS name or address devices use for the broker (repeat; for the certificate)",
    )
    p.add_argument(
        "--renew-server-cert",
        action="store_true",
        help="issue the broker's certificate again (new host names, or before it expires)",
    )
    p.add_argument("--user", help="system user mosquitto switches to when started as root")
    p.add_argument("--max-packet-bytes", type=int, default=DEFAULT_MAX_PACKET_BYTES)
    p.add_argument("--max-queued-messages", type=int, default=10_000)
    p.add_argument("--max-inflight-messages", type=int, default=1000)
    p.add_argument("--plugin", help="path of mosquitto_dynamic_security.so (default: found)")
    broker.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    try:
        names = tuple(args.tls_hostnames or ("localhost", "127.0.0.1"))
        cfg = BrokerConfig(
            workdir=args.broker_dir.resolve(),
            host=args.host,
            port=args.port,
            tls_port=args.tls_port,
            tls_host=args.tls_host,
            tls_hostnames=names,
            user=args.user,
            max_packet_bytes=args.max_packet_bytes,
            max_queued_messages=args.max_queued_messages,
            max_inflight_messages=args.max_inflight_messages,
            plugin=args.plugin,
        )
        if cfg.port == 0 or cfg.tls_port == 0:
            raise ConfigError("--port/--tls-port: name a port (0 is for tests)")
        written = write_broker_dir(cfg, renew_server_cert=args.renew_server_cert)
    except (ConfigError, BrokerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f"run: mosquitto -c {cfg.workdir / 'mosquitto.conf'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hub.broker.config broker config ...`` when the root CLI is not at hand."""
    parser = argparse.ArgumentParser(prog="lockerhub")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
