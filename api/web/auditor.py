"""The auditor's pages: find a delivered batch or a plate and read its chain, download
its certificate and exports, the non-conformities, the waste and recycling balance,
and the audit-trail check. Read-only; admins see the same pages.

The chains, certificates, exports and balance are ``quality``'s; the pages lay
them out and hand them over as files."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from api.deps import DbSession
from api.web.forms import FormInput
from api.web.labels import label
from api.web.routing import PageActor, WebRoute
from api.web.stats import BLUE, GREEN, GREY, ORANGE, PURPLE, RED, waste_spec
from api.web.templating import render
from api.web.trace import chain_rows, recent_deliveries, search
from core import audit
from core.clock import utcnow
from core.errors import NotFound
from core.i18n import _
from core.identity import Actor, Role, require_role
from quality import balance, certificates, exports, nonconformities, traceability, waste
from quality.certificate_pdf import render_pdf
from quality.models import Certificate, Inspection

router = APIRouter(route_class=WebRoute, include_in_schema=False)

BALANCE_WINDOWS_D = (7, 30, 365)


def require_auditor(actor: Actor) -> None:
    require_role(actor, Role.AUDITOR)


def download(content: str | bytes, media_type: str, file_name: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
    )


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def _zone(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.runtime.settings.default_timezone)


@router.get("/audit")
def audit_home(request: Request, session: DbSession, actor: PageActor, q: str = "") -> Response:
    require_auditor(actor)
    found = search(session, q[:100]) if q.strip() else None
    today = utcnow().astimezone(_zone(request)).date()
    return render(
        request,
        "audit/search.html",
        {
            "q": q,
            "found": found,
            "recent": recent_deliveries(session),
            "kinds": [(k.value, label("export", k.value)) for k in exports.ExportKind],
            "since": (today - timedelta(days=30)).isoformat(),
            "until": today.isoformat(),
        },
    )


def _certificate(session: DbSession, delivery_id: UUID) -> Certificate | None:
    return session.scalar(select(Certificate).where(Certificate.delivery_id == delivery_id))


@router.get("/audit/deliveries/{delivery_id:uuid}")
def delivery_page(
    request: Request, delivery_id: UUID, session: DbSession, actor: PageActor
) -> Response:
    require_auditor(actor)
    chain = traceability.trace_delivery(session, delivery_id, actor=actor)
    entity_ids = [str(delivery_id), chain["need"]["id"], chain["design_version"]["id"]]
    for plate in chain["plates"]:
        entity_ids.append(plate["job_id"])
        if plate.get("inspection"):
            entity_ids.append(plate["inspection"]["id"])
    certificate = _certificate(session, delivery_id)
    if certificate is not None:
        entity_ids.append(str(certificate.id))
    entries = list(
        session.scalars(
            select(audit.AuditEntry)
            .where(audit.AuditEntry.entity_id.in_(entity_ids))
            .order_by(audit.AuditEntry.seq)
        )
    )
    return render(
        request,
        "audit/trace.html",
        {"chain": chain, "certificate": certificate, "entries": entries},
    )


@router.get("/deliveries/{delivery_id}/certificate.pdf")
def certificate_pdf(delivery_id: UUID, session: DbSession, actor: PageActor) -> Response:
    """The batch's certificate of conformity, in the reader's language; the document it
    is drawn from was frozen (and hashed) at delivery."""
    certificate = certificates.get_certificate(session, delivery_id=delivery_id, actor=actor)
    pdf = render_pdf(certificates.certificate_content(certificate), certificate.sha256)
    return download(pdf, "application/pdf", f"{certificate.number}.pdf")


@router.get("/audit/deliveries/{delivery_id}.csv")
def delivery_csv(delivery_id: UUID, session: DbSession, actor: PageActor) -> Response:
    require_auditor(actor)
    chain = traceability.trace_delivery(session, delivery_id, actor=actor)
    return download(
        csv_text(chain_rows(chain)), "text/csv; charset=utf-8", f"batch-{delivery_id}.csv"
    )


@router.get("/audit/deliveries/{delivery_id}.json")
def delivery_json(delivery_id: UUID, session: DbSession, actor: PageActor) -> Response:
    require_auditor(actor)
    chain = traceability.trace_delivery(session, delivery_id, actor=actor)
    return download(
        json.dumps(chain, ensure_ascii=False, indent=2),
        "application/json",
        f"batch-{delivery_id}.json",
    )


@router.get("/audit/jobs/{job_id}")
def job_page(request: Request, job_id: UUID, session: DbSession, actor: PageActor) -> Response:
    require_auditor(actor)
    story = traceability.trace_job(session, job_id, actor=actor)
    entries = audit.find_entries(session, entity_type="job", entity_id=str(job_id), limit=1000)
    return render(request, "audit/job.html", {"story": story, "entries": entries})


@router.get("/audit/non-conformities")
def non_conformities_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    require_auditor(actor)
    rows = [
        (nc, session.get(Inspection, nc.inspection_id))
        for nc in nonconformities.find_non_conformities(session, actor=actor)
    ]
    return render(request, "audit/non_conformities.html", {"rows": rows})


def _window(request: Request, days: int) -> tuple[datetime, datetime]:
    days = days if days in BALANCE_WINDOWS_D else 30
    until = utcnow()
    return until - timedelta(days=days), until


def balance_spec(report: balance.BalanceReport) -> dict[str, Any]:
    series = (
        ("received_g", _("received"), BLUE),
        ("delivered_g", _("delivered parts"), GREEN),
        ("in_stock_g", _("parts in stock"), GREY),
        ("wasted_g", _("waste"), RED),
        ("sent_to_recycling_g", _("sent to recycling"), PURPLE),
        ("unexplained_g", _("unexplained"), ORANGE),
    )
    totals = list(report.totals)
    return {
        "kind": "bar",
        "x_time": False,
        "labels": [row.material for row in totals],
        "datasets": [
            {
                "label": text,
                "data": [round(getattr(row, key), 1) for row in totals],
                "color": colour,
            }
            for key, text, colour in series
        ]
        if totals
        else [],
        "y_label": _("grams"),
        "x_label": "",
        "summary": _("Mass balance per material, in grams, over the period."),
        "table": {
            "columns": [_("material")] + [text for _k, text, _c in series],
            "rows": [
                [row.material] + [round(getattr(row, key), 1) for key, _t, _c in series]
                for row in totals
            ],
        },
    }


@router.get("/audit/waste")
def waste_page(request: Request, session: DbSession, actor: PageActor, days: int = 30) -> Response:
    require_auditor(actor)
    since, until = _window(request, days)
    entries = waste.find_waste(session, actor=actor, since=since, until=until)
    report = balance.mass_balance(session, actor=actor, since=since, until=until)
    return render(
        request,
        "audit/waste.html",
        {
            "entries": entries[:100],
            "waste": waste_spec(entries),
            "balance": balance_spec(report),
            "days": days if days in BALANCE_WINDOWS_D else 30,
            "windows": BALANCE_WINDOWS_D,
        },
    )


@router.get("/audit/waste/by-kind.json")
def waste_data(request: Request, session: DbSession, actor: PageActor, days: int = 30) -> Response:
    require_auditor(actor)
    since, until = _window(request, days)
    return JSONResponse(
        waste_spec(waste.find_waste(session, actor=actor, since=since, until=until))
    )


@router.get("/audit/waste/balance.json")
def balance_data(
    request: Request, session: DbSession, actor: PageActor, days: int = 30
) -> Response:
    require_auditor(actor)
    since, until = _window(request, days)
    return JSONResponse(
        balance_spec(balance.mass_balance(session, actor=actor, since=since, until=until))
    )


def _period(request: Request, since: str, until: str) -> tuple[datetime, datetime]:
    """Whole local days, ``until`` included; a bad date raises ``Invalid`` via the form."""
    form = FormInput(values={"since": since, "until": until})
    zone = _zone(request)
    start = form.local_datetime("since", zone)
    end = form.local_datetime("until", zone)
    if start is None or end is None:
        raise NotFound("no such period")
    end = datetime.combine(end.date(), time(0, 0), tzinfo=zone) + timedelta(days=1)
    return start, end


@router.get("/audit/exports/{kind}.csv")
def export_csv(
    request: Request, kind: str, session: DbSession, actor: PageActor, since: str, until: str
) -> Response:
    require_auditor(actor)
    try:
        chosen = exports.ExportKind(kind)
    except ValueError:
        raise NotFound(f"no export {kind}") from None
    start, end = _period(request, since, until)
    text = exports.export_csv(session, chosen, actor=actor, since=start, until=end)
    return download(text, "text/csv; charset=utf-8", f"distrifab-{kind}-{since}-{until}.csv")


@router.get("/audit/exports/all.json")
def export_json(
    request: Request, session: DbSession, actor: PageActor, since: str, until: str
) -> Response:
    require_auditor(actor)
    start, end = _period(request, since, until)
    document = exports.export_json(session, actor=actor, since=start, until=end)
    return download(
        json.dumps(document, ensure_ascii=False, indent=2),
        "application/json",
        f"distrifab-{since}-{until}.json",
    )


@router.get("/audit/chain")
def chain_page(request: Request, session: DbSession, actor: PageActor) -> Response:
    """Recompute the audit trail's hash chain now and show what it found."""
    require_auditor(actor)
    report = audit.verify_chain(session)
    latest = list(
        session.scalars(select(audit.AuditEntry).order_by(audit.AuditEntry.seq.desc()).limit(30))
    )
    return render(request, "audit/chain.html", {"report": report, "latest": latest})
