"""The outbox: planned notifications stored with unique dedupe keys, claimed by senders.

Jobs only plan (insert, ignoring duplicate keys). A delivery worker claims whole groups
(one message each) with a conditional update (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so
two replicas never claim the same row; a claim left by a crashed worker is released after
`stale_after`, so nothing is lost (a crash mid-send may repeat that one message).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401
from ..rules.calendar import WorkingHours, release_time
from ..rules.vocabulary import Channel, Rule

MAX_ATTEMPTS = 8


def _table():
    return SQLModel.metadata.tables["outbox"]


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


@dataclass
class Claimed:
    token: str
    groups: dict[str, list[dict]]  # group_key -> rows
    # Nothing claimed although rows are due: another replica holds them for its claim
    # this instant (SKIP LOCKED passes over them), so look again once it commits.
    busy: bool = False


def renew_claim(engine: Engine, token: str, at: dt.datetime) -> None:
    """A live worker's claim renewed (release_stale takes only claims not renewed)."""
    table = _table()
    with engine.begin() as conn:
        conn.execute(update(table).where(and_(table.c.claim_token == token,
                                              table.c.status == "sending"))
                     .values(claimed_at=at))


def release_stale(engine: Engine, now: dt.datetime, stale_after: dt.timedelta) -> tuple[int, list[int]]:
    """Give back claims a crashed worker left behind: (rows released, ids given up).

    Each release counts as an attempt, so a row whose sending keeps killing the worker
    is given up (and reported) after MAX_ATTEMPTS instead of being claimed for ever.
    """
    table = _table()
    stale = and_(table.c.status == "sending", table.c.claimed_at < now - stale_after)
    with engine.begin() as conn:
        dead = list(conn.execute(
            select(table.c.id).where(and_(stale, table.c.attempts + 1 >= MAX_ATTEMPTS))
        ).scalars())
        if dead:
            conn.execute(
                update(table).where(and_(stale, table.c.id.in_(dead)))
                .values(status="dead", attempts=table.c.attempts + 1, claim_token=None,
                        last_error="the delivery worker stopped while sending it, "
                                   f"{MAX_ATTEMPTS} times")
            )
        res = conn.execute(
            update(table).where(stale)
            .values(status="pending", claim_token=None, attempts=table.c.attempts + 1)
        )
        return res.rowcount or 0, dead


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


def due_groups(engine: Engine, now: dt.datetime) -> dict[str, list[dict]]:
    """The groups a delivery run at `now` would send, read only (claims nothing)."""
    table = _table()
    with engine.connect() as conn:
        return _grouped(conn.execute(
            select(table).where(_due(table, now)).order_by(table.c.id)).mappings().all())


def claim(engine: Engine, now: dt.datetime, max_groups: int = 100,
          group_keys: list[str] | None = None, skip_channels: Iterable[str] = ()) -> Claimed:
    """Claim up to `max_groups` whole groups of due rows for this worker (only those in
    `group_keys`, if given: an urgent message delivered the moment it is planned; none in
    `skip_channels`: channels this deployment has not configured, whose rows wait)."""
    table = _table()
    token = uuid.uuid4().hex
    due = _due(table, now)
    if group_keys is not None:
        due = and_(due, table.c.group_key.in_(list(group_keys)))
    if skip_channels:
        due = and_(due, table.c.channel.not_in(list(skip_channels)))
    pick = select(table.c.group_key).where(due).order_by(table.c.id).limit(max_groups * 20)
    if engine.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    with engine.begin() as conn:
        groups = list(dict.fromkeys(conn.execute(pick).scalars()))[:max_groups]
        if not groups:
            waiting = conn.execute(select(func.count()).select_from(table).where(due)).scalar()
            return Claimed(token, {}, busy=bool(waiting))
        conn.execute(
            update(table)
            .where(and_(table.c.group_key.in_(groups), due))
            .values(status="sending", claim_token=token, claimed_at=now)
        )
        rows = conn.execute(
            select(table).where(table.c.claim_token == token).order_by(table.c.id)
        ).mappings().all()
    return Claimed(token, _grouped(rows))


def due_by_channel(engine: Engine, now: dt.datetime, channels: Iterable[str],
                   group_keys: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Channel -> (rows, messages) due now in `channels` (only in `group_keys`, if given)."""
    table = _table()
    where = and_(_due(table, now), table.c.channel.in_(list(channels)))
    if group_keys is not None:
        where = and_(where, table.c.group_key.in_(list(group_keys)))
    with engine.connect() as conn:
        found = conn.execute(
            select(table.c.channel, func.count(), func.count(table.c.group_key.distinct()))
            .where(where).group_by(table.c.channel)).all()
    return {channel: (rows, messages) for channel, rows, messages in found}


def held_for_working_hours(engine: Engine, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Pending rows not yet released (planned outside working hours: `release_time`), and
    the earliest time one is released (None: there are none)."""
    table = _table()
    with engine.connect() as conn:
        n, first = conn.execute(
            select(func.count(), func.min(table.c.not_before))
            .where(and_(table.c.status == "pending", table.c.not_before > now))).one()
    return n, first


def group_of(engine: Engine, row_id: int) -> list[dict]:
    """The rows sent in one message with row `row_id` (its group, claimed together), as
    `claim` gives them: to draw a sent message again (another page of it, or after a
    button). Empty if the row is gone."""
    table = _table()
    with engine.connect() as conn:
        first = conn.execute(select(table.c.group_key, table.c.claim_token)
                             .where(table.c.id == row_id)).first()
        if first is None:
            return []
        same = table.c.group_key == first.group_key
        if first.claim_token is not None:  # a group planned twice a day is two messages
            same = and_(same, table.c.claim_token == first.claim_token)
        rows = conn.execute(select(table).where(same).order_by(table.c.id)).mappings().all()
    return _grouped(rows).get(first.group_key, [])


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
    """A transient failure retries with exponential backoff (or Retry-After); a permanent
    one, or too many attempts, gives up and is reported to the co-ordinator."""
    table = _table()
    with engine.begin() as conn:
        for r in rows:
            attempts = r["attempts"] + 1
            dead = permanent or attempts >= MAX_ATTEMPTS
            delay = retry_after if retry_after is not None else min(60 * 2 ** (attempts - 1), 3600)
            conn.execute(
                update(table).where(and_(table.c.id == r["id"], table.c.status == "sending"))
                .values(status="dead" if dead else "pending", attempts=attempts,
                        next_attempt_at=now + dt.timedelta(seconds=delay),
                        last_error=error[:500], claim_token=None)
            )


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


def recent_item_keys(engine: Engine, rule: str, since: dt.datetime) -> set[str]:
    """Item keys of `rule` planned at or after `since`."""
    table = _table()
    with engine.connect() as conn:
        return set(conn.execute(select(table.c.item_key).distinct().where(and_(
            table.c.rule == rule, table.c.planned_at >= since))).scalars())


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


def snoozes_and_acks(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = SQLModel.metadata.tables
    with engine.connect() as conn:
        snoozes = pd.DataFrame(conn.execute(select(t["snooze"])).mappings().all(),
                               columns=["item_key", "person_id", "until", "created_at"])
        acks = pd.DataFrame(conn.execute(select(t["escalation_ack"])).mappings().all(),
                            columns=["item_key", "stage", "person_id", "at"])
    return snoozes, acks



STATES = ("pending", "sending", "sent", "dead", "superseded")


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
    person = SQLModel.metadata.tables["person"]
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
        current = conn.execute(select(person.c.slack_user_id, person.c.email)
                               .where(person.c.person_id == row.recipient_id)).first()
        if current is not None:
            address = current.slack_user_id if row.channel == Channel.SLACK else current.email
            if address:
                values["address"] = address
        res = conn.execute(
            update(table).where(and_(table.c.group_key == row.group_key,
                                     table.c.status.in_(("dead", "pending"))))
            .values(**values)
        )
        return res.rowcount or 0
