"""Load the records into pandas frames: one query per table, filtered by area in SQL; and
the few lookups the edges make before they answer (areas, chairs, populations)."""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import pandas as pd
from sqlalchemy import String, and_, cast, func, not_, or_, select, union, union_all
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from ..rules.deadlines import REVIEW_INTERVAL
from ..rules.records import Records
from . import models  # noqa: F401

DATE_COLUMNS = {
    "individual": ("mappa_start", "mappa_end", "level_from", "custody_from", "release_date"),
    "custody_period": ("custody_from", "release_date"),
    "meeting": ("date", "minutes_issued", "rmp_ratified"),
    "event": ("date",),
    "local_holiday": ("date",),
}


BOOL_COLUMNS = {
    "meeting": ("disclosure_considered",),
    "invitation": ("seniority_ok", "written_contribution"),
}


def _select(table_name: str, where=None, join=None, columns=None):
    table = SQLModel.metadata.tables[table_name]
    dates = DATE_COLUMNS.get(table_name, ())
    cols = [c for c in table.c if columns is None or c.name in columns]
    # Dates travel as ISO text and are parsed by pandas in one vectorised call: much
    # faster than building a Python date object per value.
    stmt = select(*[cast(c, String).label(c.name) if c.name in dates else c for c in cols])
    if join is not None:
        stmt = stmt.select_from(join)
    if where is not None:
        stmt = stmt.where(where)
    return stmt


def _frame(conn, table_name: str, where=None, join=None, columns=None, union=()) -> pd.DataFrame:
    """One table's rows as a frame; `union` adds (where, join) parts as UNION ALL.

    One query for several parts: at a few thousand rows the round trip and the frame's
    making cost more than the rows themselves.
    """
    stmt = _select(table_name, where, join, columns)
    if union:
        stmt = union_all(stmt, *[_select(table_name, w, j, columns) for w, j in union])
    result = conn.execute(stmt)
    # Raw DBAPI tuples: building SQLAlchemy Row objects costs more than the query itself.
    df = pd.DataFrame.from_records(result.cursor.fetchall(), columns=list(result.keys()))
    for col in DATE_COLUMNS.get(table_name, ()):
        if col in df:
            df[col] = pd.to_datetime(df[col], format="%Y-%m-%d").astype("datetime64[s]")
    for col in BOOL_COLUMNS.get(table_name, ()):
        if col in df:
            df[col] = pd.array(df[col].astype("float64"), dtype="boolean")
    return df


def _empty(table_name: str) -> pd.DataFrame:
    """A table's frame with no rows, without asking the database."""
    return _empty_frame(table_name).copy()


@cache
def _empty_frame(table_name: str) -> pd.DataFrame:
    # Made once: a frame of typed empty columns costs about a millisecond to build.
    table = SQLModel.metadata.tables[table_name]
    return pd.DataFrame({c.name: pd.Series(dtype="datetime64[s]" if c.name in
                                           DATE_COLUMNS.get(table_name, ()) else object)
                         for c in table.c})


# The longest review interval: a meeting more than this before `since` can only matter
# through a chain of late due dates, which only the case's last meeting can start.
_LONGEST_INTERVAL = dt.timedelta(days=max(REVIEW_INTERVAL.values()))
_RULE_COLUMNS = {
    "individual": ("ref", "area", "category", "level", "status", "mappa_end", "level_from",
                   "custody_from", "release_date", "release_level", "chair_id"),
}


def load_records(
    engine: Engine, area: str | None = None, with_events: bool = False,
    since: dt.date | None = None, with_invitations: bool = True, with_people: bool = True,
) -> Records:
    """The records of one area (or all), one query per table.

    With `since`, only what the deadline rules need for due dates, meetings and deadlines
    from that date on: every case at Level 2/3, with meetings, or due for release at
    Level 3 from `since` on, and any case the data-quality check status_custody_mismatch
    may name (in the community with a current custody period, at any level);
    meetings from `since` less the longest review interval, plus each case's last earlier
    meeting (which alone can carry a chain of late due dates forward) and its initial Level
    3 community meetings (for pre-release deadlines); invitations to the meetings from then.
    The answers for any period starting on or after `since` are the same as from a full
    load (tests/storage/test_loading.py checks it); the load is several times smaller.
    Without invitations (the largest table) only the review, custody, minutes and
    disclosure indicators can be computed; the attendance and written ones come out empty,
    and the agencies (read only with the invitations) are not loaded either. The people
    are for the notices; the indicators never read them.
    """
    t = SQLModel.metadata.tables
    ind, meet, inv, cust = t["individual"], t["meeting"], t["invitation"], t["custody_period"]
    in_area = (ind.c.area == area) if area is not None else None
    meet_join = meet.join(ind, meet.c.ref == ind.c.ref) if area else None

    def both(*conds):
        conds = [c for c in conds if c is not None]
        return and_(*conds) if conds else None

    with engine.connect() as conn:
        if since is None:
            individuals = _frame(conn, "individual", in_area)
            meetings = _frame(conn, "meeting", in_area, meet_join)
            invitations = _frame(
                conn, "invitation", in_area,
                inv.join(meet, inv.c.meeting_id == meet.c.meeting_id).join(ind, meet.c.ref == ind.c.ref)
                if area else None,
            )
        else:
            cut = since - _LONGEST_INTERVAL
            # Two selects, not one with `OR ref IN (...)`: inside an OR, PostgreSQL cannot
            # hash an IN-list too large for work_mem and rescans the meetings for every case
            # (minutes at a million); an EXISTS there is probed per case (slow at 7,000).
            # Alone, the IN becomes a semi-join. UNION ALL keeps them one round trip.
            managed = or_(ind.c.level >= 2,
                          and_(ind.c.release_level == 3, ind.c.release_date >= since),
                          # any individual the status_custody_mismatch check may name
                          # (SPEC section 3): in the community with a current custody period
                          and_(ind.c.status == "community", ind.c.custody_from.is_not(None)))
            # The second select leaves out the first's cases, so no row comes twice.
            individuals = _frame(
                conn, "individual", both(in_area, managed), columns=_RULE_COLUMNS["individual"],
                union=[(both(in_area, not_(func.coalesce(managed, False)),
                             ind.c.ref.in_(union_all(
                                 select(meet.c.ref),
                                 # a past release at Level 3 (custody-initial-l3)
                                 select(cust.c.ref).where(cust.c.release_level == 3,
                                                          cust.c.release_date >= since)))),
                         None)],
            )
            last = (select(meet.c.ref, func.max(meet.c.date).label("last"))
                    .where(meet.c.date < cut).group_by(meet.c.ref).subquery())
            meetings = _frame(
                conn, "meeting", both(in_area, meet.c.date >= cut), meet_join,
                union=[
                    (in_area, (meet_join if area is not None else meet).join(
                        last, and_(meet.c.ref == last.c.ref, meet.c.date == last.c.last))),
                    (both(in_area, meet.c.date < cut, meet.c.kind == "initial",
                          meet.c.level == 3, meet.c.setting == "community"), meet_join),
                ],
            ).drop_duplicates("meeting_id").reset_index(drop=True)
            individuals = _entries_after_last_early_meeting(individuals, meetings, cut)
            inv_join = inv.join(meet, inv.c.meeting_id == meet.c.meeting_id)
            if area is not None:
                inv_join = inv_join.join(ind, meet.c.ref == ind.c.ref)
            invitations = _frame(conn, "invitation", both(in_area, meet.c.date >= cut), inv_join) \
                if with_invitations else _empty("invitation")
        # Past custody periods: a few per case at most; every one of the area's is read
        # (an old period can pause a chain of late due dates running into the window).
        custody = _frame(conn, "custody_period", in_area,
                         cust.join(ind, cust.c.ref == ind.c.ref) if area else None)
        agencies = _frame(conn, "agency") if with_invitations else _empty("agency")
        people = _frame(conn, "person") if with_people else _empty("person")
        events = (
            _frame(conn, "event", in_area, t["event"].join(ind, t["event"].c.ref == ind.c.ref) if area else None)
            if with_events
            else pd.DataFrame()
        )
        local = _local_holidays(conn)
        review_notes = _review_notes(conn)
    return Records(individuals, meetings, invitations, agencies, people, events, local, area,
                   custody, review_notes)


REVIEW_NOTE_COLUMNS = ["item_key", "reason", "agency", "at"]


def _review_notes(conn) -> pd.DataFrame:
    """The reasons recorded through the bot on review items, oldest first (a few per late
    review at most): item_key, reason, agency, at."""
    note = SQLModel.metadata.tables["item_note"]
    rows = conn.execute(select(note.c.item_key, note.c.reason, note.c.agency, note.c.at)
                        .where(note.c.item_key.like("review:%"))
                        .order_by(note.c.at, note.c.id)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=REVIEW_NOTE_COLUMNS)


def _entries_after_last_early_meeting(individuals: pd.DataFrame, meetings: pd.DataFrame,
                                      cut: dt.date) -> pd.DataFrame:
    """Blank a `level_from` earlier than the case's last meeting before `cut`.

    That meeting restarts the chain, so the entry point's due dates all fall before it
    (before the window): they change no answer, but with the meetings in between not
    loaded the entry's chain would run on to that meeting, years of due dates for nothing.
    """
    early = meetings[meetings["date"] < pd.Timestamp(cut)]
    if early.empty or "level_from" not in individuals:
        return individuals
    last = early.groupby("ref")["date"].max()
    before = (individuals["level_from"] < individuals["ref"].map(last)).to_numpy()
    if before.any():
        individuals = individuals.copy()
        individuals.loc[before, "level_from"] = pd.NaT
    return individuals


def _local_holidays(conn) -> dict[str, list[dt.date]]:
    hol = SQLModel.metadata.tables["local_holiday"]
    local: dict[str, list[dt.date]] = {}
    for a, d in conn.execute(select(hol.c.area, hol.c.date)):  # a few rows: no frame
        local.setdefault(a, []).append(d)
    return local


def local_holidays(engine: Engine) -> dict[str, list[dt.date]]:
    """Each area's local holidays (the calendar's only input from the database)."""
    with engine.connect() as conn:
        return _local_holidays(conn)


def load_people(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return _frame(conn, "person")


def known_areas(engine: Engine) -> list[str]:
    ind = SQLModel.metadata.tables["individual"]
    with engine.connect() as conn:
        return sorted(conn.execute(select(ind.c.area).distinct()).scalars())


def as_days(values) -> np.ndarray:
    """Dates (datetime64 series/array) as int64 days since 1970-01-01; NaT stays NaT-int."""
    return np.asarray(values, dtype="datetime64[D]").astype(np.int64)


def count_individuals(engine: Engine) -> int:
    """How many individuals the database holds (none: nothing has been imported)."""
    ind = SQLModel.metadata.tables["individual"]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ind)).scalar() or 0


def known_chairs(engine: Engine) -> list[str]:
    """Person ids with the chair role, and every chair named on a meeting or a case."""
    t = SQLModel.metadata.tables
    with engine.connect() as conn:
        named = set(conn.execute(union(select(t["meeting"].c.chair_id),
                                       select(t["individual"].c.chair_id))).scalars())
        people = conn.execute(select(t["person"].c.person_id, t["person"].c.roles)).all()
    named |= {pid for pid, roles in people if "chair" in (roles or "").split(";")}
    return sorted(x for x in named if x)


def area_populations(engine: Engine) -> dict[str, int]:
    """Each area's population where it is recorded (the annual report's rate per 100,000)."""
    area = SQLModel.metadata.tables["area"]
    with engine.connect() as conn:
        return {a: p for a, p in conn.execute(select(area.c.area, area.c.population)) if p}
