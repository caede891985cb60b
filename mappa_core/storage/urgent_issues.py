"""Urgent issues raised with `/mappa escalate`: each recorded once per request, whatever
the retries."""

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
