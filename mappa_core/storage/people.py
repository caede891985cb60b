"""Who is who, as the bot asks: a person by their Slack user id, and the directory of
agencies and people an urgent issue is sent from (the people and agencies files, SPEC
section 5)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)


def by_slack_user(engine: Engine, slack_user_id: str) -> dict | None:
    """The person row whose Slack user id this is, or None."""
    person = SQLModel.metadata.tables["person"]
    with engine.connect() as conn:
        row = conn.execute(
            select(person).where(person.c.slack_user_id == slack_user_id)
        ).mappings().first()
    return None if row is None else dict(row)


def directory(engine: Engine) -> tuple[list[dict], list[dict], list[str]]:
    """Every agency row, every person row, and the person table's columns in order."""
    t = SQLModel.metadata.tables
    person, agency = t["person"], t["agency"]
    with engine.connect() as conn:
        agencies = [dict(r) for r in conn.execute(select(agency)).mappings()]
        people = [dict(r) for r in conn.execute(select(person)).mappings()]
    return agencies, people, list(person.c.keys())
