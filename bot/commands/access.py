"""Who is asking: callers are looked up by Slack user id in `people` (SPEC section 5).

Staff see aggregates. Case-level detail goes only to the co-ordinator, the SOG chair
(of the case's area, or national ones) and the case's own chair, and only privately.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from typing import TYPE_CHECKING

from mappa_core.storage import people

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


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
    if not slack_user_id:
        return None
    row = people.by_slack_user(engine, slack_user_id)
    if row is None:
        return None
    roles = frozenset(r for r in (row["roles"] or "").split(";") if r)
    return Caller(row["person_id"], row["name"], roles, row["area"] or None,
                  row["slack_user_id"], row["agency"] or None)


def audit_row(slack_user_id: str | None, caller: Caller | None, action: str, detail: str,
              outcome: str, at: dt.datetime | None = None) -> dict:
    """The audit log's row for one request (mappa_core.storage.audit writes them)."""
    return {"at": at or dt.datetime.now(dt.UTC), "slack_user_id": (slack_user_id or "")[:32] or None,
            "person_id": caller.person_id if caller else None, "action": action[:64],
            "detail": detail[:500], "outcome": outcome[:64]}
