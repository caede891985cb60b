"""Claims: a delivery worker takes whole groups of due rows (one message each) for itself.

A claim is a conditional update (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so two replicas
never claim the same row; a live worker renews its claim while it sends; a claim nobody
renewed for `stale_after` was left by a stopped worker and is given back, so nothing is
lost (a crash mid-send may repeat that one message).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Engine

from .backoff import MAX_ATTEMPTS
from .rows import _due, _grouped, _table


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
