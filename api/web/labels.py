"""Words shown for the domain's enumerations (roles, job states, printer states, waste
kinds...), marked here so that the catalogues carry them; identifiers stay English."""

from __future__ import annotations

from core.i18n import N_, _

LABELS: dict[str, dict[str, str]] = {
    "role": {
        "coordinator": N_("coordinator"),
        "operator": N_("operator"),
        "auditor": N_("auditor"),
        "admin": N_("administrator"),
    },
    "job": {
        "queued": N_("waiting for a plan"),
        "planned": N_("proposed"),
        "accepted": N_("accepted"),
        "dispatched": N_("sent to the printer"),
        "printing": N_("printing"),
        "printed": N_("printed, to inspect"),
        "passed": N_("passed inspection"),
        "delivered": N_("delivered"),
        "refused": N_("refused"),
        "failed": N_("failed"),
        "cancelled": N_("cancelled"),
        "rejected": N_("rejected at inspection"),
    },
    "printer": {
        "unknown": N_("not polled yet"),
        "offline": N_("offline"),
        "operational": N_("ready"),
        "printing": N_("printing"),
        "paused": N_("paused"),
        "cancelling": N_("cancelling"),
        "error": N_("error"),
    },
    "need": {
        "open": N_("open"),
        "delivered": N_("delivered"),
        "cancelled": N_("cancelled"),
    },
    "waste": {
        "failed_print": N_("failed print"),
        "rejected_part": N_("rejected part"),
        "support_and_brim": N_("supports and brim"),
        "purge": N_("purge"),
        "spool_end": N_("spool end"),
    },
    "site": {
        "fablab": N_("fablab"),
        "sme": N_("small firm"),
        "third_place": N_("third place"),
        "school": N_("school"),
        "maker": N_("individual maker"),
    },
    "design": {
        "draft": N_("draft"),
        "approved": N_("approved"),
        "retired": N_("retired"),
    },
    "export": {
        "inspections": N_("inspections"),
        "non_conformities": N_("non-conformities"),
        "deliveries": N_("deliveries and certificates"),
        "traceability": N_("traceability of delivered plates"),
        "waste": N_("waste ledger"),
        "recycling": N_("recycling register"),
        "audit": N_("audit trail"),
    },
    "disposition": {
        "pending": N_("to decide"),
        "reprint": N_("reprint"),
        "scrap": N_("scrap"),
        "use_as_is": N_("use as is (concession)"),
    },
    "severity": {
        "normal": N_("normal"),
        "tightened": N_("tightened"),
        "discontinued": N_("discontinued"),
    },
    "verdict": {
        "passed": N_("passed"),
        "rejected": N_("rejected"),
    },
    "run": {
        "dispatched": N_("sent"),
        "printing": N_("printing"),
        "done": N_("done"),
        "failed": N_("failed"),
        "cancelled": N_("cancelled"),
    },
    "priority": {
        "1": N_("1 · routine"),
        "2": N_("2 · low"),
        "3": N_("3 · normal"),
        "4": N_("4 · urgent"),
        "5": N_("5 · life-critical"),
    },
}


def label(kind: str, value: object) -> str:
    """The translated word for ``value`` of enumeration ``kind`` (the value itself if unknown)."""
    key = str(getattr(value, "value", value))
    text = LABELS.get(kind, {}).get(key)
    return _(text) if text else key
