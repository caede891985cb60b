"""What every part of the outbox shares: the table, what "due" means, and rows as the
delivery worker sees them (grouped by message, payload decoded)."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import and_
from sqlmodel import SQLModel

from .. import models  # noqa: F401  (registers the outbox table)

# Every state a row can be in: planned and waiting (pending), claimed by a worker
# (sending), delivered (sent), given up (dead), replaced by a later digest (superseded).
STATES = ("pending", "sending", "sent", "dead", "superseded")


def _table():
    return SQLModel.metadata.tables["outbox"]


def _due(table, now: dt.datetime):
    return and_(table.c.status == "pending", table.c.not_before <= now,
                table.c.next_attempt_at <= now)


def _grouped(rows) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        d = dict(r)
        d["payload"] = json.loads(d["payload"])
        out.setdefault(d["group_key"], []).append(d)
    return out
