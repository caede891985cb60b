"""Values a person recorded through the bot, and what an import does with them.

The buttons and the reason modal write a row here in the same transaction as the value
itself. An import then keeps the value where the export's cell is blank, and where the
export carries a different value the export wins (it is the system of record) and the
recorded value, with who recorded it and when, goes to the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)

# The columns a person can record through the bot, per table.
RECORDABLE = {
    "meeting": ("minutes_issued", "rmp_ratified", "reason"),
    "invitation": ("written_contribution", "reason"),
}


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
    """Note that `column` of the `table` row `key` was recorded by a person (call it in the
    transaction that writes the value)."""
    if column not in RECORDABLE.get(table, ()):
        raise ValueError(f"{table}.{column} is not recorded through the bot")
    t = SQLModel.metadata.tables["recorded_value"]
    rk = row_key(key)
    where = and_(t.c.target_table == table, t.c.row_key == rk, t.c.target_column == column)
    values = {"value": show_value(value)[:64], "person_id": person_id,
              "slack_user_id": (slack_user_id or "")[:32] or None, "recorded_at": at}
    if conn.execute(select(t.c.value).where(where)).first() is None:
        conn.execute(t.insert().values(target_table=table, row_key=rk, target_column=column,
                                       **values))
    else:
        conn.execute(t.update().where(where).values(**values))


@dataclass(frozen=True)
class Recorded:
    column: str
    value: str
    person_id: str | None
    slack_user_id: str | None
    recorded_at: dt.datetime


def load(conn: Connection, table: str) -> dict[tuple, list[Recorded]]:
    """Every value recorded through the bot in `table`, by row key (one query)."""
    if table not in RECORDABLE:
        return {}
    t = SQLModel.metadata.tables["recorded_value"]
    out: dict[tuple, list[Recorded]] = {}
    rows = conn.execute(select(t.c.row_key, t.c.target_column, t.c.value, t.c.person_id,
                               t.c.slack_user_id, t.c.recorded_at)
                        .where(t.c.target_table == table))
    for rk, column, value, person_id, slack_id, at in rows:
        out.setdefault(tuple(json.loads(rk)), []).append(
            Recorded(column, value, person_id, slack_id, at))
    return out


def forget(conn: Connection, table: str, replaced: list[tuple[tuple, str]]) -> None:
    """Drop the provenance of values the export has replaced (executemany)."""
    if not replaced:
        return
    from sqlalchemy import bindparam

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
               people.c.name, t.c.recorded_at)
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

