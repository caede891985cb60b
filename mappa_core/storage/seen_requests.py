"""Requests already acted on: Slack signs a request with a timestamp and accepts it for 5
minutes either side, so a captured request (a button press, a form, a command) could be
sent again within that window and would be applied again. The Slack door claims each
request by an idempotency key from its payload before acting on it (bot/channels/slack/
app.py says which key); the first claim wins on every replica, as the key is the table's
primary key, and a replay is answered "already done".

Keys are kept KEEP (an hour: a request accepted at the last moment of its window is
replayable for 10 minutes at most). Storage never reads the clock: the caller passes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)

KEEP = dt.timedelta(hours=1)


def digest(key: str) -> str:
    """What is stored of a key: its SHA-256, so that what a payload carried (an item key,
    a case reference) is not kept, and every key has one length."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def claim(engine: Engine, key: str, now: dt.datetime, prune: bool = False) -> bool:
    """True the first time `key` is claimed (on any replica), False for a replay. With
    `prune`, keys older than KEEP are removed in the same transaction."""
    table = SQLModel.metadata.tables["seen_request"]
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Visible to every replica at commit all the same; not waiting for the WAL's
            # fsync keeps a claim per request off the path the acknowledgement waits on
            # (a crash can lose the last few claims, so a replay just then applies again).
            conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
        if prune:
            conn.execute(table.delete().where(table.c.seen_at < now - KEEP))
        inserted = conn.execute(dialect.insert(table).values(key=digest(key), seen_at=now)
                                .on_conflict_do_nothing().returning(table.c.key))
        return inserted.first() is not None
