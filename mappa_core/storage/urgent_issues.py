"""Urgent issues raised with `/mappa escalate`: each recorded once per request, whatever
the retries, with the agencies its raiser chose to e-mail it to."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)


def record(engine: Engine, dedupe_key: str, at: dt.datetime, raised_by: str,
           area: str | None, text: str, agencies: list[str]) -> tuple[int, bool]:
    """The issue's id, and whether it was recorded now (False: this request, under
    `dedupe_key`, was recorded before and nothing changes)."""
    issue = SQLModel.metadata.tables["urgent_issue"]
    with engine.begin() as conn:
        existing = conn.execute(select(issue.c.id).where(issue.c.dedupe_key == dedupe_key)).scalar()
        if existing is not None:
            return existing, False
        result = conn.execute(issue.insert().values(
            dedupe_key=dedupe_key, raised_at=at, raised_by=raised_by, area=area, text=text,
            agencies=";".join(agencies)))
        return result.inserted_primary_key[0], True


def get(engine: Engine, issue_id: int) -> dict | None:
    """The issue (id, raised_at, raised_by, area, text, agencies as a list), or None."""
    issue = SQLModel.metadata.tables["urgent_issue"]
    with engine.connect() as conn:
        row = conn.execute(select(issue).where(issue.c.id == issue_id)).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["agencies"] = [a for a in (out["agencies"] or "").split(";") if a]
    return out


def add_agencies(engine: Engine, issue_id: int, agencies: list[str]) -> list[str]:
    """Record that the raiser chose these agencies too; every agency chosen so far."""
    issue = SQLModel.metadata.tables["urgent_issue"]
    with engine.begin() as conn:
        current = conn.execute(select(issue.c.agencies).where(issue.c.id == issue_id)
                               .with_for_update()).scalar() or ""
        chosen = list(dict.fromkeys([a for a in current.split(";") if a] + list(agencies)))
        conn.execute(issue.update().where(issue.c.id == issue_id)
                     .values(agencies=";".join(chosen)))
    return chosen
