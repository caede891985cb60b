"""Load the records into pandas frames: one query per table, filtered by area in SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import String, cast, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401

DATE_COLUMNS = {
    "individual": ("mappa_start", "mappa_end", "custody_from", "release_date"),
    "meeting": ("date", "minutes_issued", "rmp_ratified"),
    "event": ("date",),
    "local_holiday": ("date",),
}


BOOL_COLUMNS = {
    "meeting": ("disclosure_considered",),
    "invitation": ("seniority_ok", "written_contribution"),
}


@dataclass
class Records:
    """Everything the rules need, one frame per table. Dates are datetime64 columns."""

    individuals: pd.DataFrame
    meetings: pd.DataFrame
    invitations: pd.DataFrame
    agencies: pd.DataFrame
    people: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    local_holidays: dict[str, list[dt.date]] = field(default_factory=dict)
    area: str | None = None


def _frame(conn, table_name: str, where=None, join=None) -> pd.DataFrame:
    table = SQLModel.metadata.tables[table_name]
    dates = DATE_COLUMNS.get(table_name, ())
    # Dates travel as ISO text and are parsed by pandas in one vectorised call: much
    # faster than building a Python date object per value.
    stmt = select(*[cast(c, String).label(c.name) if c.name in dates else c for c in table.c])
    if join is not None:
        stmt = stmt.select_from(join)
    if where is not None:
        stmt = stmt.where(where)
    result = conn.execute(stmt)
    # Raw DBAPI tuples: building SQLAlchemy Row objects costs more than the query itself.
    df = pd.DataFrame.from_records(result.cursor.fetchall(), columns=list(result.keys()))
    for col in dates:
        df[col] = pd.to_datetime(df[col], format="%Y-%m-%d").astype("datetime64[s]")
    for col in BOOL_COLUMNS.get(table_name, ()):
        df[col] = pd.array(df[col].astype("float64"), dtype="boolean")
    return df


def load_records(engine: Engine, area: str | None = None, with_events: bool = False) -> Records:
    t = SQLModel.metadata.tables
    ind, meet, inv = t["individual"], t["meeting"], t["invitation"]
    in_area = (ind.c.area == area) if area is not None else None
    with engine.connect() as conn:
        individuals = _frame(conn, "individual", in_area)
        meetings = _frame(
            conn, "meeting", in_area, meet.join(ind, meet.c.ref == ind.c.ref) if area else None
        )
        invitations = _frame(
            conn,
            "invitation",
            in_area,
            inv.join(meet, inv.c.meeting_id == meet.c.meeting_id).join(
                ind, meet.c.ref == ind.c.ref
            )
            if area
            else None,
        )
        agencies = _frame(conn, "agency")
        people = _frame(conn, "person")
        events = (
            _frame(conn, "event", in_area, t["event"].join(ind, t["event"].c.ref == ind.c.ref) if area else None)
            if with_events
            else pd.DataFrame()
        )
        local = _local_holidays(conn)
    return Records(individuals, meetings, invitations, agencies, people, events, local, area)


def _local_holidays(conn) -> dict[str, list[dt.date]]:
    hol = _frame(conn, "local_holiday")
    local: dict[str, list[dt.date]] = {}
    for a, d in zip(hol["area"], hol["date"]):
        local.setdefault(a, []).append(pd.Timestamp(d).date())
    return local


def local_holidays(engine: Engine) -> dict[str, list[dt.date]]:
    """Each area's local holidays (the calendar's only input from the database)."""
    with engine.connect() as conn:
        return _local_holidays(conn)


def known_areas(engine: Engine) -> list[str]:
    ind = SQLModel.metadata.tables["individual"]
    with engine.connect() as conn:
        return sorted(conn.execute(select(ind.c.area).distinct()).scalars())


def as_days(values) -> np.ndarray:
    """Dates (datetime64 series/array) as int64 days since 1970-01-01; NaT stays NaT-int."""
    return np.asarray(values, dtype="datetime64[D]").astype(np.int64)
