"""Values a person recorded through the bot, and what an import does with them.

The buttons and the reason form write a row here in the same transaction as the value
itself, with the export's value at that moment: the base. A recorded value stands until
the system of record changes. An import whose cell
- is blank, or still says the base, keeps the recorded value (the export has not caught
  up: ViSOR and the meeting spreadsheets lag the bot, and write `no` for a contribution
  not received);
- says the recorded value has caught up: the row stays (who recorded it), its base becomes
  the value, and it is no longer waiting to be keyed into ViSOR;
- says anything else wins (someone changed the system of record): the recorded value
  goes to the audit log with who recorded it and when, and its row here goes.
`pending` lists what waits to be keyed into ViSOR: the values whose base is not the value.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)

# The columns a person can record through the bot, per table.
RECORDABLE = {
    "meeting": ("minutes_issued", "rmp_ratified", "reason"),
    "invitation": ("written_contribution", "reason"),
}
KEYS = {"meeting": ("meeting_id",), "invitation": ("meeting_id", "agency")}


def row_key(key: tuple) -> str:
    """A row's key as stored: a JSON list, so that any id round-trips."""
    return json.dumps([str(k) for k in key], ensure_ascii=False)


def show_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def record(conn: Connection, table: str, key: tuple, column: str, value, *,
           person_id: str | None, slack_user_id: str | None, at: dt.datetime) -> None:
    """Note that `column` of the `table` row `key` is being recorded as `value` by a person.
    Call it in the transaction that writes the value, BEFORE writing it: the stored value
    is then still the export's, and is kept as the base (a value recorded again keeps the
    base of the first)."""
    if column not in RECORDABLE.get(table, ()):
        raise ValueError(f"{table}.{column} is not recorded through the bot")
    t = SQLModel.metadata.tables["recorded_value"]
    rk = row_key(key)
    where = and_(t.c.target_table == table, t.c.row_key == rk, t.c.target_column == column)
    values = {"value": show_value(value)[:64], "person_id": person_id,
              "slack_user_id": (slack_user_id or "")[:32] or None, "recorded_at": at}
    if conn.execute(select(t.c.value).where(where)).first() is not None:
        conn.execute(t.update().where(where).values(**values))
        return
    target = SQLModel.metadata.tables[table]
    stored = conn.execute(select(target.c[column]).where(
        *[target.c[k] == v for k, v in zip(KEYS[table], key)])).scalar()
    conn.execute(t.insert().values(target_table=table, row_key=rk, target_column=column,
                                   base=show_value(stored)[:64] or None, **values))


@dataclass(frozen=True)
class Recorded:
    column: str
    value: str
    person_id: str | None
    slack_user_id: str | None
    recorded_at: dt.datetime
    base: str | None = None  # the export's value when it was recorded (None: blank)

    @property
    def pending(self) -> bool:
        """The export does not show it yet."""
        return self.base != self.value


def load(conn: Connection, table: str) -> dict[tuple, list[Recorded]]:
    """Every value recorded through the bot in `table`, by row key (one query)."""
    if table not in RECORDABLE:
        return {}
    t = SQLModel.metadata.tables["recorded_value"]
    out: dict[tuple, list[Recorded]] = {}
    rows = conn.execute(select(t.c.row_key, t.c.target_column, t.c.value, t.c.person_id,
                               t.c.slack_user_id, t.c.recorded_at, t.c.base)
                        .where(t.c.target_table == table))
    for rk, column, value, person_id, slack_id, at, base in rows:
        out.setdefault(tuple(json.loads(rk)), []).append(
            Recorded(column, value, person_id, slack_id, at, base))
    return out


def settle(new, stored, rec: Recorded) -> str:
    """What an import whose cell for `rec` says `new` does with it (`stored`: the value in
    the database, the recorded one): `kept` (blank, or still the base: the recorded value
    stays), `caught_up` (the export now says it), `agrees` (it did already), `replaced`
    (the export says something else: it wins). SPEC section 5."""
    if new is None:
        return "kept"
    if new == stored:
        return "agrees" if rec.base == rec.value else "caught_up"
    if show_value(new) == rec.base:
        return "kept"
    return "replaced"


def caught_up(conn: Connection, table: str, rows: list[tuple[tuple, str]]) -> None:
    """The export shows these values now: each is its own base (no longer pending)."""
    if not rows:
        return
    t = SQLModel.metadata.tables["recorded_value"]
    conn.execute(
        t.update().where(and_(t.c.target_table == table, t.c.row_key == bindparam("rk"),
                              t.c.target_column == bindparam("col")))
        .values(base=t.c.value),
        [{"rk": row_key(key), "col": column} for key, column in rows],
    )


def forget(conn: Connection, table: str, replaced: list[tuple[tuple, str]]) -> None:
    """Drop the provenance of values the export has replaced (executemany)."""
    if not replaced:
        return
    t = SQLModel.metadata.tables["recorded_value"]
    conn.execute(
        t.delete().where(and_(t.c.target_table == table, t.c.row_key == bindparam("rk"),
                              t.c.target_column == bindparam("col"))),
        [{"rk": row_key(key), "col": column} for key, column in replaced],
    )


def listing(conn: Connection) -> list[dict]:
    """Every value recorded through the bot and still standing, with who recorded it and
    when (UTC), oldest first; and each value an import replaced (from the audit log)."""
    t, people = (SQLModel.metadata.tables[n] for n in ("recorded_value", "person"))
    standing = conn.execute(
        select(t.c.target_table, t.c.row_key, t.c.target_column, t.c.value, t.c.person_id,
               people.c.name, t.c.recorded_at, t.c.base)
        .select_from(t.outerjoin(people, people.c.person_id == t.c.person_id))
        .order_by(t.c.recorded_at, t.c.target_table, t.c.row_key, t.c.target_column)
    ).mappings().all()
    return [dict(r, row_key=", ".join(json.loads(r["row_key"]))) for r in standing]


def standing_and_replaced(engine: Engine) -> tuple[list[dict], list[dict]]:
    """`listing` and `replaced_by_imports`, read on one connection (`mappa recorded`)."""
    with engine.connect() as conn:
        return listing(conn), replaced_by_imports(conn)


def replaced_by_imports(conn: Connection) -> list[dict]:
    """The audit log's account of each recorded value an import replaced, oldest first."""
    audit = SQLModel.metadata.tables["audit_log"]
    return [dict(r) for r in conn.execute(
        select(audit.c.at, audit.c.detail).where(audit.c.action == "import:replaced_recorded")
        .order_by(audit.c.at, audit.c.id)).mappings()]



def pending(conn: Connection) -> list[dict]:
    """The values recorded through the bot that the latest export does not show yet, as a
    co-ordinator keys them into ViSOR: by case, then meeting (its date), then agency and
    column. Each with the meeting's ref, date and area, the agency's name, the export's
    value (`base`) and who recorded it (name) and when (UTC)."""
    t, people, meeting, agency, individual = (SQLModel.metadata.tables[n] for n in (
        "recorded_value", "person", "meeting", "agency", "individual"))
    rows = conn.execute(
        select(t.c.target_table, t.c.row_key, t.c.target_column, t.c.value, t.c.base,
               t.c.person_id, people.c.name, t.c.recorded_at)
        .select_from(t.outerjoin(people, people.c.person_id == t.c.person_id))
        .where(or_(t.c.base.is_(None), t.c.base != t.c.value))
    ).mappings().all()
    if not rows:
        return []
    out = []
    for r in rows:
        key = json.loads(r["row_key"])
        out.append({**r, "meeting_id": key[0], "agency": key[1] if len(key) > 1 else None})
    ids = sorted({r["meeting_id"] for r in out})
    meetings = {}
    for i in range(0, len(ids), 1000):
        meetings.update({m: (ref, date, area) for m, ref, date, area in conn.execute(
            select(meeting.c.meeting_id, meeting.c.ref, meeting.c.date, individual.c.area)
            .join(individual, individual.c.ref == meeting.c.ref)
            .where(meeting.c.meeting_id.in_(ids[i:i + 1000])))})
    names = dict(conn.execute(select(agency.c.agency, agency.c.name)).all())
    for r in out:
        r["ref"], r["meeting_date"], r["area"] = meetings.get(r["meeting_id"], (None, None, None))
        r["agency_name"] = names.get(r["agency"]) if r["agency"] else None
    order = {c: i for i, c in enumerate(("minutes_issued", "rmp_ratified", "written_contribution",
                                         "reason"))}
    out.sort(key=lambda r: (r["ref"] or "", r["meeting_date"] or dt.date.min, r["meeting_id"],
                            r["agency"] or "", r["target_table"] == "invitation",
                            order.get(r["target_column"], 9)))
    return out


def pending_by_area(engine) -> dict[str, int]:
    """How many values wait to be keyed into ViSOR, by the area of their case (the
    co-ordinator's weekly summary says it)."""
    with engine.connect() as conn:
        rows = pending(conn)
    out: dict[str, int] = {}
    for r in rows:
        if r["area"] is not None:
            out[r["area"]] = out.get(r["area"], 0) + 1
    return out


def pending_in(engine, area: str | None = None) -> list[dict]:
    """`pending`, of one area's cases (all areas: None)."""
    with engine.connect() as conn:
        rows = pending(conn)
    return [r for r in rows if area is None or r["area"] == area]
