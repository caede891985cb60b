"""Writing an import: the validated rows upserted in the import's one transaction, the
values people recorded through the bot kept or replaced, and the custody history kept.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sqlalchemy import Table, and_, bindparam, func, select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from .. import models  # noqa: F401  (models registers the tables)
from .. import recorded as _recorded
from ...rules.schema import FileSpec
from .validate import Parsed, overlap, stored_periods

BATCH = 5000


@dataclass
class FileReport:
    filename: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # values recorded through the bot that the export left blank
    replaced: int = 0  # ... and that the export replaced (the old ones are in the audit log)


def keep_custody_history(conn: Connection, ind_p: Parsed) -> None:
    """Keep a stored current custody period as a past one when the import moves the
    current period to one starting on or after its release (SPEC section 5): a quarter
    already reported then keeps its answer. A change that does not start after the stored
    release is a correction, and simply replaces it."""
    stored_current, stored_past = stored_periods(conn)
    if not stored_current:
        return
    i_ref, i_cf = ind_p.index("ref"), ind_p.index("custody_from")
    kept = []
    for row in ind_p.rows:
        old = stored_current.get(row[i_ref])
        new_cf = row[i_cf]
        if old is None or new_cf is None or new_cf == old[0]:
            continue
        old_cf, old_rel, old_lvl = old
        if old_rel is not None and new_cf >= old_rel and \
                old_cf not in {p[0] for p in stored_past.get(row[i_ref], [])}:
            kept.append({"ref": row[i_ref], "custody_from": old_cf, "release_date": old_rel,
                         "release_level": old_lvl})
    if kept:
        conn.execute(SQLModel.metadata.tables["custody_period"].insert(), kept)


def drop_replaced_periods(conn: Connection, cust_p: Parsed) -> None:
    """A stored past period that a period of custody.csv overlaps under another
    custody_from was an earlier version of it (ViSOR's history is the record): it goes."""
    _current, stored_past = stored_periods(conn)
    c_ref, c_cf, c_rel = (cust_p.index(c) for c in ("ref", "custody_from", "release_date"))
    cust = SQLModel.metadata.tables["custody_period"]
    gone = set()
    for row in cust_p.rows:
        for p_cf, p_rel, _lvl in stored_past.get(row[c_ref], []):
            if p_cf != row[c_cf] and overlap(p_cf, p_rel, row[c_cf], row[c_rel]):
                gone.add((row[c_ref], p_cf))
    for ref, cf in sorted(gone):
        conn.execute(cust.delete().where(cust.c.ref == ref, cust.c.custody_from == cf))


def _load_existing(conn: Connection, table: Table, spec: FileSpec) -> dict[tuple, tuple]:
    cols = [table.c[c] for c in spec.column_names]
    out = {}
    key_idx = [spec.column_names.index(k) for k in spec.key]
    for rec in conn.execute(select(*cols)):
        out[tuple(rec[i] for i in key_idx)] = tuple(rec)
    return out


def _progress(filename: str, done: int, total: int) -> None:
    if total >= 20000 and sys.stderr.isatty():
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{filename:18} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _copy_rows(conn: Connection, table: str, names: list[str], rows: list[tuple]) -> None:
    """New rows by PostgreSQL's COPY, in the import's transaction: several times faster
    than INSERT at a million cases (the values are already validated and typed)."""
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)))
    with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def upsert(conn: Connection, parsed: Parsed, write: bool) -> FileReport:
    spec = parsed.spec
    table = SQLModel.metadata.tables[spec.table]
    existing = _load_existing(conn, table, spec)
    names = spec.column_names
    report = FileReport(spec.filename, rows=len(parsed.rows))
    inserts, updates = [], []
    key_idx = [names.index(k) for k in spec.key]
    recorded = _recorded.load(conn, spec.table)
    replaced: list[tuple] = []
    for values in parsed.rows:
        key = tuple(values[i] for i in key_idx)
        old = existing.get(key)
        if old is not None and recorded and key in recorded:
            values = _keep_recorded(key, values, old, recorded[key], names, report, replaced)
        if old is None:
            inserts.append(values)
        elif old != values:
            updates.append(values)
        else:
            report.unchanged += 1
    report.created, report.updated = len(inserts), len(updates)
    report.replaced = len(replaced)
    if not write:
        return report
    _log_replaced(conn, spec.table, replaced)
    total = len(inserts) + len(updates)
    done = 0
    copy = _copy_rows if conn.dialect.name == "postgresql" else None
    for i in range(0, len(inserts), BATCH):
        chunk = inserts[i : i + BATCH]
        if copy:
            copy(conn, spec.table, names, chunk)
        else:
            conn.execute(table.insert(), [dict(zip(names, r)) for r in chunk])
        done += len(chunk)
        _progress(spec.filename, done, total)
    if updates:
        stmt = (
            table.update()
            .where(and_(*[table.c[k] == bindparam(f"k_{k}") for k in spec.key]))
            .values({c: bindparam(f"v_{c}") for c in names if c not in spec.key})
        )
        for i in range(0, len(updates), BATCH):
            chunk = updates[i : i + BATCH]
            params = [{("k_" if c in spec.key else "v_") + c: v for c, v in zip(names, r)}
                      for r in chunk]
            conn.execute(stmt, params)
            done += len(chunk)
            _progress(spec.filename, done, total)
    return report


def _keep_recorded(key: tuple, values: tuple, old: tuple, recorded: list, names: list[str],
                   report: FileReport, replaced: list[tuple]) -> tuple:
    """A row whose stored values include some a person recorded through the bot: a blank
    cell keeps the stored value; a different value from the export wins, and the recorded
    one is noted in `replaced` for the audit log."""
    row = list(values)
    for rec in recorded:
        i = names.index(rec.column)
        current = old[i]
        if current is None:
            continue
        if row[i] is None:
            row[i] = current
            report.kept += 1
        elif row[i] != current:
            replaced.append((key, rec, current, row[i]))
    return tuple(row)


def _log_replaced(conn: Connection, table: str, replaced: list[tuple]) -> None:
    """Each recorded value the export replaced: one audit-log row with who recorded it and
    when, and its provenance dropped (the stored value is now the export's)."""
    if not replaced:
        return
    audit = SQLModel.metadata.tables["audit_log"]
    rows = []
    for key, rec, current, new in replaced:
        when = rec.recorded_at.strftime("%Y-%m-%d %H:%M:%S") if rec.recorded_at else "?"
        detail = (f"{table} {_recorded.row_key(key)} {rec.column}: "
                  f"{_recorded.show_value(current)} recorded by {rec.person_id or '?'} "
                  f"at {when} UTC replaced by the export's {_recorded.show_value(new)}")
        rows.append({"slack_user_id": rec.slack_user_id, "person_id": rec.person_id,
                     "action": "import:replaced_recorded", "detail": detail[:500],
                     "outcome": "replaced"})
    # Stamped by the database's clock: the core reads none.
    conn.execute(audit.insert().values(at=func.now()), rows)
    _recorded.forget(conn, table, [(key, rec.column) for key, rec, _c, _n in replaced])


