"""The audit log: one row per request a person made of the bot (who, what, the outcome)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)


def write_rows(engine: Engine, rows: list[dict]) -> None:
    """Several audit rows (at, slack_user_id, person_id, action, detail, outcome) in one
    transaction."""
    if rows:
        with engine.begin() as conn:
            conn.execute(SQLModel.metadata.tables["audit_log"].insert(), rows)
