"""``lockerhub ops`` commands for partners, maintenance, incidents, filings and the export."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from lockerhub.v1 import partners_pb2, partners_pb2_grpc
from ops.client import TIMEOUT_S
from ops.commands import Handler
from ops.render import safe, table

Wrap = Callable[[Handler], Callable[[argparse.Namespace], int]]


def epoch_ms(text: str, flag: str) -> int:
    """ISO 8601 (``2026-11-01`` = midnight UTC, ``2026-11-01T08:00Z``) -> epoch milliseconds.

    Raises:
        ValueError: naming the flag; a time without a zone is refused (which one was meant?).
    """
    try:
        when = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected ISO 8601, e.g. 2026-11-01T08:00Z") from None
    if when.tzinfo is None:
        if len(text.strip()) != 10:
            raise ValueError(f"{flag} {text!r}: give a zone (Z or +08:00) with a time of day")
        when = when.replace(tzinfo=_dt.UTC)
    return int(when.timestamp() * 1000)


def _utc(ms: int) -> str:
    if not ms:
        return ""
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _stub(channel: grpc.Channel) -> partners_pb2_grpc.ComplianceServiceStub:
    return partners_pb2_grpc.ComplianceServiceStub(channel)


def _windows(windows: Any) -> str:
    rows = [
        (
            w.window_id,
            w.site or "(all)",
            _utc(w.starts_ms),
            _utc(w.ends_ms),
            w.reason,
            "yes" if w.cancelled else "",
            w.scheduled_by,
        )
        for w in windows
    ]
    return table(("WINDOW", "SITE", "STARTS", "ENDS", "REASON", "CANCELLED", "BY"), rows)


def schedule_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    window = _stub(channel).ScheduleMaintenance(
        partners_pb2.ScheduleMaintenanceRequest(
            site=args.site,
            starts_ms=epoch_ms(args.start, "--start"),
            ends_ms=epoch_ms(args.end, "--end"),
            reason=args.reason,
        ),
        timeout=TIMEOUT_S,
    )
    return window, lambda: print(_windows([window]))


def cancel_window_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    window = _stub(channel).CancelMaintenance(
        partners_pb2.CancelMaintenanceRequest(window_id=args.window_id), timeout=TIMEOUT_S
    )
    return window, lambda: print(_windows([window]))


def windows_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    after = 0 if args.all else int(_dt.datetime.now(_dt.UTC).timestamp() * 1000)
    resp = _stub(channel).ListMaintenance(
        partners_pb2.ListMaintenanceRequest(after_ms=after), timeout=TIMEOUT_S
    )
    return resp, lambda: print(_windows(resp.windows))


def incidents_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    resp = _stub(channel).ListIncidents(
        partners_pb2.ListIncidentsRequest(
            from_ms=epoch_ms(args.from_, "--from") if args.from_ else 0,
            to_ms=epoch_ms(args.to, "--to") if args.to else 0,
        ),
        timeout=TIMEOUT_S,
    )
    rows = [
        (
            i.incident_id,
            i.cause,
            i.site or "(all)",
            _utc(i.started_ms),
            _utc(i.ended_ms) or "ongoing",
            f"{(i.ended_ms - i.started_ms) / 1000:g}" if i.ended_ms else "",
        )
        for i in resp.incidents
    ]
    return resp, lambda: print(
        table(("INCIDENT", "CAUSE", "SITE", "STARTED", "ENDED", "SECONDS"), rows)
    )


def export_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    fmt = (
        partners_pb2.EXPORT_FORMAT_CSV if args.format == "csv" else partners_pb2.EXPORT_FORMAT_JSON
    )
    resp = _stub(channel).ExportReport(
        partners_pb2.ExportReportRequest(
            from_ms=epoch_ms(args.from_, "--from"), to_ms=epoch_ms(args.to, "--to"), format=fmt
        ),
        timeout=TIMEOUT_S,
    )

    def show() -> None:
        if args.out is None:
            sys.stdout.write(resp.content)
            return
        args.out.write_text(resp.content, encoding="utf-8")
        print(f"wrote {args.out} ({resp.content_type}, {len(resp.content)} characters)")

    return resp, show


def partner_create_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    resp = _stub(channel).CreatePartner(
        partners_pb2.CreatePartnerRequest(
            partner_id=args.partner_id,
            name=args.name,
            carrier_ids=args.carrier,
            expires_ms=epoch_ms(args.expires, "--expires") if args.expires else 0,
        ),
        timeout=TIMEOUT_S,
    )
    return resp, lambda: print(
        f"partner {safe(resp.partner.partner_id)} created; its credential (shown once, give "
        f"it to the partner: 'authorization: Partner <credential>'):\n{resp.secret}"
    )


def _partners(partners: Any) -> str:
    rows = [
        (
            p.partner_id,
            p.name,
            ",".join(p.carrier_ids),
            _utc(p.expires_ms) or "never",
            "yes" if p.revoked else "",
        )
        for p in partners
    ]
    return table(("PARTNER", "NAME", "CARRIERS", "EXPIRES", "REVOKED"), rows)


def partner_revoke_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    p = _stub(channel).RevokePartner(
        partners_pb2.RevokePartnerRequest(partner_id=args.partner_id), timeout=TIMEOUT_S
    )
    return p, lambda: print(_partners([p]))


def partners_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    resp = _stub(channel).ListPartners(partners_pb2.ListPartnersRequest(), timeout=TIMEOUT_S)
    return resp, lambda: print(_partners(resp.partners))


def filing_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    f = _stub(channel).SetSiteFiling(
        partners_pb2.SetSiteFilingRequest(
            site=args.site,
            filing_number=args.number,
            site_type=args.type,
            public_service=args.public_service,
        ),
        timeout=TIMEOUT_S,
    )
    return f, lambda: print(
        table(
            ("SITE", "FILING", "TYPE", "PUBLIC SERVICE"),
            [(f.site, f.filing_number, f.site_type, "yes" if f.public_service else "no")],
        )
    )


def reads_call(args: argparse.Namespace, channel: grpc.Channel) -> tuple[Message, Any]:
    resp = _stub(channel).ListPersonalDataReads(
        partners_pb2.ListPersonalDataReadsRequest(parcel_id=args.parcel, page_size=args.limit),
        timeout=TIMEOUT_S,
    )
    rows = [(r.id, _utc(r.ts_ms), r.actor, r.parcel_id, r.purpose) for r in resp.reads]
    return resp, lambda: print(table(("ID", "UTC", "WHO", "PARCEL", "WHY"), rows))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Wrap) -> None:
    """Add the commands under ``lockerhub ops``."""
    m = sub.add_parser("maintenance", help="maintenance windows (partners are told in advance)")
    msub = m.add_subparsers(dest="maintenance_command", required=True)
    p = msub.add_parser("schedule", help="schedule a window (notifies every partner feed)")
    p.add_argument("--site", default="", help="the site (default: the whole hub)")
    p.add_argument("--start", required=True, help="ISO 8601, e.g. 2026-12-05T01:00Z")
    p.add_argument("--end", required=True, help="ISO 8601")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=wrap(schedule_call))
    p = msub.add_parser("cancel", help="cancel a window (partners are told)")
    p.add_argument("window_id")
    p.set_defaults(func=wrap(cancel_window_call))
    p = msub.add_parser("list", help="windows not yet over (all with --all)")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=wrap(windows_call))

    p = sub.add_parser("incidents", help="outages the hub detected (broker, store, site)")
    p.add_argument("--from", dest="from_", default="", help="ISO 8601 (default: unbounded)")
    p.add_argument("--to", default="", help="ISO 8601 (default: unbounded)")
    p.set_defaults(func=wrap(incidents_call))

    p = sub.add_parser("export", help="the regulator export of a period (docs/regulator-export.md)")
    p.add_argument("--from", dest="from_", required=True, help="ISO 8601, e.g. 2026-11-01")
    p.add_argument("--to", required=True, help="ISO 8601, exclusive, e.g. 2026-12-01")
    p.add_argument("--format", choices=("csv", "json"), default="json")
    p.add_argument("--out", type=Path, default=None, help="write to this file (default stdout)")
    p.set_defaults(func=wrap(export_call))

    pa = sub.add_parser("partners", help="partner credentials (admin)")
    psub = pa.add_subparsers(dest="partners_command", required=True)
    p = psub.add_parser("create", help="create a partner; prints its credential once")
    p.add_argument("partner_id")
    p.add_argument("--name", required=True)
    p.add_argument("--carrier", action="append", required=True, help="repeat for several")
    p.add_argument("--expires", default="", help="ISO 8601 (default: never)")
    p.set_defaults(func=wrap(partner_create_call))
    p = psub.add_parser("revoke", help="revoke a partner's credential (ends its streams)")
    p.add_argument("partner_id")
    p.set_defaults(func=wrap(partner_revoke_call))
    p = psub.add_parser("list", help="list partners")
    p.set_defaults(func=wrap(partners_call))

    p = sub.add_parser("filing", help="a site's filing with the regulator (for the export)")
    p.add_argument("site")
    p.add_argument("--number", required=True, help="the filing number")
    p.add_argument("--type", default="", help="e.g. smart_locker, station")
    p.add_argument("--public-service", action="store_true")
    p.set_defaults(func=wrap(filing_call))

    p = sub.add_parser("pii-reads", help="the audit of reads of full phone numbers (admin)")
    p.add_argument("--parcel", default="")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=wrap(reads_call))
