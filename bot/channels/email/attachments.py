"""Files that travel with a notice: the SOG's quarterly pack with the quarterly reminder."""

from __future__ import annotations

import datetime as dt

from bot.exports import quarterly_html
from mappa_core.rules import reports
from mappa_core.rules.periods import parse_period, previous_quarters
from mappa_core.rules.records import window_start
from mappa_core.storage.queries import load_records


def attachments_for(engine, rows: list[dict], today: dt.date) -> list[tuple[str, bytes, str]]:
    first = rows[0]
    if not first["group_key"].startswith("quarterly|"):
        return []
    payload = first["payload"]
    period = parse_period(payload["quarter"])
    area = payload.get("area")
    records = load_records(engine, area, since=window_start(today, previous_quarters(period, 8)[0].start))
    pack = reports.quarterly_pack(records, period, today, area)
    names = dict(zip(records.agencies["agency"], records.agencies["name"]))
    name = f"mappa-pack-{(area or 'all').replace(' ', '-').lower()}-{period.label}.html"
    return [(name, quarterly_html(pack, names).encode("utf-8"), "text/html")]
