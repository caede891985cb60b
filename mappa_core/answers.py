"""Answers the edges ask for: load what a question needs from storage, then compute it
with the rules. The CLI, the bot and the benchmark share these, so they agree."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from .rules.indicators import compute_deadlines, reads_invitations
from .rules.periods import Period
from .rules.records import LOOKBACK_DAYS, window_start
from .rules.status import resolve, status_of
from .storage.queries import load_records


def status(
    engine: Engine, as_of: dt.date, topic: str = "all", period: Period | None = None,
    area: str | None = None, lookback_days: int = LOOKBACK_DAYS,
) -> dict:
    """The `status --json` answer for a topic, period and area, as of a date (the live
    counts look `lookback_days` back for open paperwork, MAPPA_LOOKBACK_DAYS)."""
    ids, per = resolve(topic, period, as_of)  # bad arguments fail before any query
    records = load_records(engine, area, since=window_start(as_of, per.start, lookback_days),
                           with_invitations=reads_invitations(ids),
                           with_people=False)
    return status_of(compute_deadlines(records, as_of, lookback_days), topic, per, area)
