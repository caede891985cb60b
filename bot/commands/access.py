"""Who is asking: callers are looked up by Slack user id in `people` (SPEC section 5).

Staff see aggregates. Case-level detail goes only to the co-ordinator, the SOG chair
(of the case's area, or national ones) and the case's own chair, and only privately.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from mappa_core.storage import models  # noqa: F401


@dataclass(frozen=True)
class Caller:
    person_id: str
    name: str
    roles: frozenset[str]
    area: str | None  # None: national
    slack_user_id: str | None = None
    agency: str | None = None

    @property
    def oversees(self) -> bool:
        """A co-ordinator or SOG chair: sees the cases of their area (or all, if national)."""
        return bool(self.roles & {"coordinator", "sog_chair"})

    @property
    def chairs(self) -> bool:
        return "chair" in self.roles

    def covers_area(self, area: str | None) -> bool:
        return self.area is None or self.area == area

    def may_see_case(self, case_area: str | None, case_chair: str | None) -> bool:
        return (self.oversees and self.covers_area(case_area)) or (
            self.chairs and case_chair == self.person_id
        )


def find_caller(engine: Engine, slack_user_id: str) -> Caller | None:
    person = SQLModel.metadata.tables["person"]
    if not slack_user_id:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(person).where(person.c.slack_user_id == slack_user_id)
        ).mappings().first()
    if row is None:
        return None
    roles = frozenset(r for r in (row["roles"] or "").split(";") if r)
    return Caller(row["person_id"], row["name"], roles, row["area"] or None,
                  row["slack_user_id"], row["agency"] or None)


def write_audit(
    engine: Engine, slack_user_id: str | None, caller: Caller | None, action: str,
    detail: str, outcome: str, at: dt.datetime | None = None,
) -> None:
    audit = SQLModel.metadata.tables["audit_log"]
    with engine.begin() as conn:
        conn.execute(audit.insert().values(
            at=at or dt.datetime.now(dt.UTC),
            slack_user_id=(slack_user_id or "")[:32] or None,
            person_id=caller.person_id if caller else None,
            action=action[:64], detail=detail[:500], outcome=outcome[:64],
        ))


def audit_row(slack_user_id: str | None, caller: Caller | None, action: str, detail: str,
              outcome: str, at: dt.datetime | None = None) -> dict:
    return {"at": at or dt.datetime.now(dt.UTC), "slack_user_id": (slack_user_id or "")[:32] or None,
            "person_id": caller.person_id if caller else None, "action": action[:64],
            "detail": detail[:500], "outcome": outcome[:64]}


def write_audit_rows(engine: Engine, rows: list[dict]) -> None:
    """Several audit rows in one transaction."""
    if rows:
        with engine.begin() as conn:
            conn.execute(SQLModel.metadata.tables["audit_log"].insert(), rows)
