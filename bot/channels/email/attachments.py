"""Files that travel with a notice: the SOG's quarterly pack with the quarterly reminder, and
the whole list, as CSV, with an escalation too long for its email's body."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from bot.channels import escalation
from bot.exports import neutralise, quarterly_html
from mappa_core.rules import reports
from mappa_core.rules.periods import parse_period
from mappa_core.storage.queries import load_records

ESCALATION_CSV_COLUMNS = [
    "urgent", "kind", "level", "ref", "meeting_id", "meeting_date", "agency", "agency_name",
    "chair", "deadline", "overdue", "working_days_left", "stage", "detail", "item_key",
]


def attachments_for(engine, rows: list[dict], today: dt.date) -> list[tuple[str, bytes, str]]:
    first = rows[0]
    if first["group_key"].startswith("escalation|"):
        name = escalation_csv_name(rows)
        return [(name, escalation_csv(rows), "text/csv")] if name else []
    if first["group_key"].startswith("weekly|"):
        name = to_key_csv_name(rows)
        return [(name, to_key_csv(engine, rows), "text/csv")] if name else []
    if not first["group_key"].startswith("quarterly|"):
        return []
    payload = first["payload"]
    period = parse_period(payload["quarter"])
    area = payload.get("area")
    records = load_records(engine, area, since=reports.pack_since(period, today))
    pack = reports.quarterly_pack(records, period, today, area)
    names = dict(zip(records.agencies["agency"], records.agencies["name"]))
    name = f"mappa-pack-{(area or 'all').replace(' ', '-').lower()}-{period.label}.html"
    return [(name, quarterly_html(pack, names).encode("utf-8"), "text/html")]


def escalation_csv_name(rows: list[dict]) -> str | None:
    """The CSV's file name when an escalation is too long to list in its email (None: the
    body lists every item)."""
    if len(rows) <= escalation.EMAIL_LIST_MAX:
        return None
    first = rows[0]
    area = re.sub(r"[^a-z0-9]+", "-", str(first.get("area") or "all-areas").lower()).strip("-")
    day = first["group_key"].rsplit("|", 1)[-1]
    return f"mappa-escalation-{area or 'area'}-{day}.csv"


def _row(r: dict) -> list:
    p = r["payload"]
    kind = escalation.kind_of(p)
    if kind == "scr_action":
        detail = f"Significant Case Review \"{p.get('title')}\", action {p.get('action_id')}: " \
                 f"{p.get('description')}"
        return [r.get("urgency") == "urgent", kind, None, None, None,
                None, p.get("owner"), None, None, p.get("due"), True, None, r["stage"], detail,
                r["item_key"]]
    return [r.get("urgency") == "urgent", p.get("kind"), p.get("level"),
            p.get("ref"), p.get("meeting_id"), p.get("meeting_date"), p.get("agency"),
            p.get("agency_name"), p.get("chair_name") or p.get("chair_id"), p.get("deadline"),
            p.get("overdue"), p.get("working_days_left"), r["stage"], p.get("detail"),
            r["item_key"]]


def escalation_csv(rows: list[dict]) -> bytes:
    """Every item of an escalation, one row each, most urgent and most overdue first (the
    email's order); cells a spreadsheet would run as formulas are neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(ESCALATION_CSV_COLUMNS)
    for r in escalation.ordered(rows):
        cells = _row(r)
        writer.writerow(["" if v is None else ("yes" if v is True else "no" if v is False
                                               else neutralise(str(v))) for v in cells])
    return out.getvalue().encode("utf-8")


TO_KEY_CSV_COLUMNS = ["ref", "meeting_id", "meeting_date", "agency", "agency_name", "column",
                      "value", "export_value", "recorded_by", "recorded_at"]


def to_key_csv_name(rows: list[dict]) -> str | None:
    """The co-ordinator's weekly summary carries the values to key into ViSOR as CSV (None:
    the summary says none wait)."""
    area = next((r.get("area") for r in rows if r["payload"].get("to_key")), None)
    if area is None:
        return None
    slug = re.sub(r"[^a-z0-9]+", "-", str(area).lower()).strip("-")
    return f"mappa-to-key-into-visor-{slug or 'area'}-{rows[0]['group_key'].rsplit('|', 1)[-1]}.csv"


def to_key_csv(engine, rows: list[dict]) -> bytes:
    """`mappa recorded --pending --csv` of the summary's area, as it stands when sent:
    by case, then meeting; cells a spreadsheet would run as formulas neutralised."""
    from mappa_core.storage import recorded

    area = next(r.get("area") for r in rows if r["payload"].get("to_key"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TO_KEY_CSV_COLUMNS)
    for r in recorded.pending_in(engine, area):
        cells = [r["ref"], r["meeting_id"], r["meeting_date"], r["agency"], r["agency_name"],
                 r["target_column"], r["value"], r["base"], r["name"] or r["person_id"],
                 f"{r['recorded_at']:%Y-%m-%d %H:%M} UTC" if r["recorded_at"] else None]
        writer.writerow(["" if v is None else neutralise(str(v)) for v in cells])
    return out.getvalue().encode("utf-8")
