"""``lockerhub hub`` (run the hub until SIGTERM/SIGINT) and ``lockerhub hub-token``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from pathlib import Path

from hub.api.auth import token_digest
from hub.app import HubApp
from hub.errors import HubError
from hub.settings import HubSettings, TokenSettings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lockerhub hub --config hub.toml``."""
    parser = subparsers.add_parser(
        "hub", help="run the hub service (MQTT ingestion, gRPC, metrics)"
    )
    parser.add_argument("--config", type=Path, default=None, help="TOML settings file")
    parser.set_defaults(func=_main)
    token = subparsers.add_parser(
        "hub-token", help="make an operator API token and the [[auth.tokens]] entry for it"
    )
    token.add_argument("name", help="who the token is for (the audit name)")
    token.add_argument("role", choices=("viewer", "operator", "admin"))
    token.set_defaults(func=_token)


def _token(args: argparse.Namespace) -> int:
    try:
        entry = TokenSettings(name=args.name, role=args.role, sha256="0" * 64)
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    secret = secrets.token_urlsafe(32)
    print(f"token (give it to {entry.name}; it is not stored anywhere): {secret}")
    print("add to the hub's settings:")
    print("[[auth.tokens]]")
    print(f'name = "{entry.name}"\nrole = "{entry.role}"\nsha256 = "{token_digest(secret)}"')
    return 0


def _main(args: argparse.Namespace) -> int:
    # Logging is configured by the root CLI (``lockerhub --log-level``).
    try:
        settings = HubSettings.load(args.config)
        return asyncio.run(_serve(settings))
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


async def _serve(settings: HubSettings) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with HubApp(settings) as app:
        print(f"hub ready: grpc={app.grpc_address} metrics={app.metrics_url}", flush=True)
        runner = asyncio.create_task(app.run(), name="hub-run")
        stopper = asyncio.create_task(stop.wait(), name="hub-stop")
        await asyncio.wait((runner, stopper), return_when=asyncio.FIRST_COMPLETED)
        for task in (runner, stopper):
            task.cancel()
        failed = False
        for task in (runner, stopper):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # a hub task died: report it and exit non-zero
                log.exception("hub stopped on an error")
                failed = True
    return 1 if failed else 0
