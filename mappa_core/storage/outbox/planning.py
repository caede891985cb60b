"""Planning: what the jobs write into the outbox, and what they read back from it.

Jobs only plan (insert, ignoring duplicate keys), so planning twice (a restart, two
replicas, a retry) plans nothing new. Non-urgent rows wait for working hours.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from ...rules.calendar import WorkingHours, release_time
from ...rules.vocabulary import Rule
from .rows import _table


def _insert(engine: Engine):
    table = _table()
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
    raise NotImplementedError(f"outbox on {engine.dialect.name}")


# The start of a digest's group key (planner.notice.group_key: reminders ride in it).
DIGEST_GROUP = f"{Rule.DIGEST}|"


def plan(
    engine: Engine, notes: pd.DataFrame, now: dt.datetime, rules: WorkingHours,
    local_holidays: dict | None = None,
) -> int:
    """Insert planned notifications; duplicates (same dedupe key) are ignored.

    Returns how many were new. Non-urgent ones wait for working hours.
    """
    if notes.empty:
        return 0
    rows = []
    release = {}
    for n in notes.itertuples(index=False):
        urgent = n.urgency == "urgent"
        key = (urgent, n.area)
        if key not in release:
            release[key] = release_time(now, urgent, rules, local_holidays, n.area)
        rows.append({
            "dedupe_key": n.dedupe_key, "rule": n.rule, "item_key": n.item_key, "stage": n.stage,
            "recipient_id": n.recipient_id, "channel": n.channel, "address": n.address or "",
            "urgency": n.urgency, "group_key": n.group_key, "area": n.area,
            "payload": json.dumps(n.payload, default=str), "planned_at": now,
            "not_before": release[key], "status": "pending", "attempts": 0,
            "next_attempt_at": release[key], "reported": False,
        })
    table = _table()
    with engine.begin() as conn:
        before = conn.execute(select(func.count()).select_from(table)).scalar()
        stmt = _insert(engine)
        for i in range(0, len(rows), 1000):
            conn.execute(stmt, rows[i : i + 1000])
        after = conn.execute(select(func.count()).select_from(table)).scalar()
        _supersede_digests(conn, table, notes, now)
    return after - before


def _supersede_digests(conn, table, notes: pd.DataFrame, now: dt.datetime) -> None:
    """A reader's earlier digests that were never attempted (their channel not set up, the
    bot stopped for days) are replaced by today's: it lists everything still open, and
    several days' digests arriving at once, the older out of date, help no one. They are
    kept as `superseded`, never sent."""
    digests = notes[notes["group_key"].str.startswith(DIGEST_GROUP)]
    if digests.empty:
        return
    for channel, group in digests.groupby("channel"):
        recipients = sorted(set(group["recipient_id"]))
        keys = sorted(set(group["group_key"]))
        for i in range(0, len(recipients), 500):
            conn.execute(
                update(table).where(and_(
                    table.c.status == "pending", table.c.attempts == 0,
                    table.c.channel == channel, table.c.group_key.like(DIGEST_GROUP + "%"),
                    table.c.recipient_id.in_(recipients[i:i + 500]),
                    table.c.group_key.not_in(keys), table.c.planned_at < now))
                .values(status="superseded", last_error="replaced by a later digest"))


def held_for_working_hours(engine: Engine, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Pending rows not yet released (planned outside working hours: `release_time`), and
    the earliest time one is released (None: there are none)."""
    table = _table()
    with engine.connect() as conn:
        n, first = conn.execute(
            select(func.count(), func.min(table.c.not_before))
            .where(and_(table.c.status == "pending", table.c.not_before > now))).one()
    return n, first


def recent_item_keys(engine: Engine, rule: str, since: dt.datetime) -> set[str]:
    """Item keys of `rule` planned at or after `since`."""
    table = _table()
    with engine.connect() as conn:
        return set(conn.execute(select(table.c.item_key).distinct().where(and_(
            table.c.rule == rule, table.c.planned_at >= since))).scalars())


def snoozes_and_acks(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = SQLModel.metadata.tables
    with engine.connect() as conn:
        snoozes = pd.DataFrame(conn.execute(select(t["snooze"])).mappings().all(),
                               columns=["item_key", "person_id", "until", "created_at"])
        acks = pd.DataFrame(conn.execute(select(t["escalation_ack"])).mappings().all(),
                            columns=["item_key", "stage", "person_id", "at"])
    return snoozes, acks
