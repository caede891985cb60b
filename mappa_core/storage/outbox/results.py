"""Results (the outcomes of sending): what became of each claimed message (sent, failed
and retried, given up), and what people and the co-ordinator's digest are told of them."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Engine

from ...rules.vocabulary import Rule
from .backoff import after_failure
from .contacts import current_address
from .rows import _due, _table


def mark_sent(engine: Engine, ids: list[int], now: dt.datetime,
              posted: tuple[str, str] | None = None) -> None:
    """Rows sent in one message; `posted`: where it was posted (Slack: channel id, ts), so
    that the message is only ever drawn again there."""
    table = _table()
    where = {"posted_channel": posted[0], "posted_ts": posted[1]} if posted else {}
    with engine.begin() as conn:
        conn.execute(update(table).where(and_(table.c.id.in_(ids), table.c.status == "sending"))
                     .values(status="sent", sent_at=now, last_error=None, **where))


def mark_failed(
    engine: Engine, rows: list[dict], now: dt.datetime, error: str, permanent: bool,
    retry_after: float | None = None,
) -> None:
    """A transient failure retries with backoff (or Retry-After); a permanent one, or too
    many attempts, gives up and is reported to the co-ordinator (the rule: backoff.py)."""
    table = _table()
    with engine.begin() as conn:
        for r in rows:
            then = after_failure(r["attempts"], permanent, retry_after)
            conn.execute(
                update(table).where(and_(table.c.id == r["id"], table.c.status == "sending"))
                .values(status="dead" if then.given_up else "pending", attempts=then.attempts,
                        next_attempt_at=now + dt.timedelta(seconds=then.delay),
                        last_error=error[:500], claim_token=None)
            )


def release(engine: Engine, ids: list[int], now: dt.datetime, delay: float,
            reason: str) -> None:
    """Rows claimed but not tried (their channel paused for this run) go back to the outbox,
    due again after `delay` seconds, with no attempt counted; `reason` says why they wait."""
    if not ids:
        return
    table = _table()
    with engine.begin() as conn:
        conn.execute(update(table).where(and_(table.c.id.in_(ids), table.c.status == "sending"))
                     .values(status="pending", claim_token=None, last_error=reason[:500],
                             next_attempt_at=now + dt.timedelta(seconds=delay)))


def postpone(engine: Engine, now: dt.datetime, channel: str, delay: float, reason: str,
             group_keys: list[str] | None = None) -> tuple[int, int]:
    """Rows of `channel` due now (only in `group_keys`, if given) made due `delay` seconds
    later, with no attempt counted: the channel is paused. Returns (rows, messages)."""
    table = _table()
    where = and_(_due(table, now), table.c.channel == channel)
    if group_keys is not None:
        where = and_(where, table.c.group_key.in_(list(group_keys)))
    with engine.begin() as conn:
        rows, messages = conn.execute(
            select(func.count(), func.count(table.c.group_key.distinct())).where(where)).one()
        if rows:
            conn.execute(update(table).where(where).values(
                next_attempt_at=now + dt.timedelta(seconds=delay), last_error=reason[:500]))
    return rows, messages


def outcomes(engine: Engine, group_keys: list[str]) -> dict[str, dict]:
    """Each group's state (status, attempts, last_error), for a caller waiting on it."""
    table = _table()
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.group_key, table.c.status, table.c.attempts,
                                   table.c.last_error)
                            .where(table.c.group_key.in_(list(group_keys)))).mappings().all()
    return {r["group_key"]: dict(r) for r in rows}


def unreported_failures(engine: Engine) -> pd.DataFrame:
    table = _table()
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.id, table.c.area, table.c.rule, table.c.recipient_id,
                   table.c.channel, table.c.last_error)
            .where(and_(table.c.status == "dead", table.c.reported.is_(False),
                        table.c.rule != Rule.DELIVERY_PROBLEM.value))
        ).mappings().all()
    return pd.DataFrame(rows, columns=["id", "area", "rule", "recipient_id", "channel", "last_error"])


def mark_reported(engine: Engine, ids: list[int]) -> None:
    if not ids:
        return
    table = _table()
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id.in_(ids)).values(reported=True))


def counts(engine: Engine) -> dict[str, int]:
    table = _table()
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.status, func.count()).group_by(table.c.status)).all()
    return {status: n for status, n in rows}


def queue(engine: Engine, now: dt.datetime) -> tuple[list[tuple[str, str, int]], dt.datetime | None]:
    """What an operator's metrics show: (state, channel, rows) for each pair that has rows,
    and when the oldest row due at `now` (pending or sending) was released (None: none)."""
    table = _table()
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.status, table.c.channel, func.count())
                            .group_by(table.c.status, table.c.channel)).all()
        oldest = conn.execute(select(func.min(table.c.not_before)).where(and_(
            table.c.status.in_(("pending", "sending")),
            table.c.not_before <= now))).scalar()
    return [(status, channel, n) for status, channel, n in rows], oldest


def list_rows(engine: Engine, state: str | None = None, limit: int = 50) -> list[dict]:
    """The newest outbox rows (of one state), for `mappa outbox list`: no payload, no item key
    (those carry case references), just who, how and what went wrong."""
    table = _table()
    query = select(table.c.id, table.c.status, table.c.channel, table.c.rule,
                   table.c.recipient_id, table.c.attempts, table.c.planned_at,
                   table.c.next_attempt_at, table.c.last_error).order_by(table.c.id.desc())
    if state:
        query = query.where(table.c.status == state)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query.limit(limit)).mappings()]


def retry(engine: Engine, row_id: int, now: dt.datetime) -> int | None:
    """Send a failed row again, with the rest of its message (its group): back to pending,
    due now, attempts from zero, reported again if it fails again. Returns how many rows
    were reset, or None when there is no such row; a row already sent or being sent is
    left alone (0)."""
    table = _table()
    with engine.begin() as conn:
        row = conn.execute(select(table.c.group_key, table.c.recipient_id, table.c.channel)
                           .where(table.c.id == row_id)).first()
        if row is None:
            return None
        values = dict(status="pending", attempts=0, next_attempt_at=now, claim_token=None,
                      reported=False)
        # The person's address as it stands now: a retry usually follows a corrected Slack
        # id or email. (An agency chaser's recipient is its address; a corrected one is a
        # new recipient, planned afresh by the next digest.)
        address = current_address(conn, row.recipient_id, row.channel)
        if address:
            values["address"] = address
        res = conn.execute(
            update(table).where(and_(table.c.group_key == row.group_key,
                                     table.c.status.in_(("dead", "pending"))))
            .values(**values)
        )
        return res.rowcount or 0
