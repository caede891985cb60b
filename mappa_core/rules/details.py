"""What a notice names beside an open item, so that its reader can act on it: the agency by
its display name, the meeting's date and level, and the chair (name and email) to send
things to. Staff and agencies only: nothing more about the individual than the `ref`.
"""

from __future__ import annotations

import pandas as pd

from .addresses import email_problem

# The columns `with_details` adds; a notice's payload carries those its planner added.
DETAIL_COLUMNS = ["agency_name", "chair_id", "chair_name", "chair_email", "meeting_date",
                  "meeting_level"]


def _text(values: pd.Series) -> pd.Series:
    """Blank and missing text as None (a payload never says `nan`)."""
    return pd.Series([v if isinstance(v, str) and v.strip() else None for v in values],
                     index=values.index, dtype=object)


def agency_names(agency: pd.Series, agencies: pd.DataFrame) -> pd.Series:
    """Each agency id's display name (`name` in agencies.csv); None where it has none."""
    names = agencies.drop_duplicates("agency").set_index("agency")["name"] \
        if not agencies.empty else pd.Series(dtype=object)
    return _text(agency.map(names))


def with_details(items: pd.DataFrame, people: pd.DataFrame, agencies: pd.DataFrame,
                 meetings: pd.DataFrame) -> pd.DataFrame:
    """`items` (from `due.open_items`) with DETAIL_COLUMNS: the agency's `name` from
    agencies.csv, the chair's id, `name` and `email` (only when it is one valid address)
    from people.csv (by `chair_id`), and the meeting's `date` (ISO) and `level` (by
    `meeting_id`). Unknown ones are None."""
    out = items.copy()
    out["agency_name"] = agency_names(items["agency"], agencies)
    chairs = people.drop_duplicates("person_id").set_index("person_id") \
        if not people.empty else pd.DataFrame(columns=["name", "email"])
    out["chair_id"] = _text(items["chair_id"])
    out["chair_name"] = _text(items["chair_id"].map(chairs["name"]))
    # Only an address that is one (a stored one with a line break would carry whatever
    # follows it into the message): otherwise the reader is told to reply instead.
    email = _text(items["chair_id"].map(chairs["email"]))
    out["chair_email"] = pd.Series([e if e and email_problem(e) is None else None for e in email],
                                   index=out.index, dtype=object)
    held = meetings.drop_duplicates("meeting_id").set_index("meeting_id") \
        if not meetings.empty else pd.DataFrame(columns=["date", "level"])
    date = pd.to_datetime(items["meeting_id"].map(held["date"]))
    out["meeting_date"] = pd.Series(
        [d.date().isoformat() if pd.notna(d) else None for d in date], index=out.index, dtype=object)
    level = pd.to_numeric(items["meeting_id"].map(held["level"]), errors="coerce")
    # Object, not float: a payload says "Level 2", never "Level 2.0".
    out["meeting_level"] = pd.Series([int(v) if pd.notna(v) else None for v in level],
                                     index=out.index, dtype=object)
    return out
