"""Writing an import: each batch of checked rows counted against what is stored and
written in the import's one transaction; the values people recorded through the bot kept
or replaced; the custody history kept.

A table empty when its file starts (a first import) is only inserted into. Otherwise each
batch reads the stored rows of its keys (one query) to tell new, changed and unchanged
rows apart. Rows go to the database driver as tuples (PostgreSQL: COPY for new rows),
without SQLAlchemy's per-row parameter processing; the values are already typed.
"""

from __future__ import annotations

import datetime as dt
import queue
import sqlite3
import threading
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from .. import models  # noqa: F401  (models registers the tables)
from .. import recorded as _recorded
from ...rules.schema import FileSpec
from .validate import overlap, stored_periods

# What SQLite's driver did by default until Python 3.12 deprecated it, and what
# SQLAlchemy stores for a Date on SQLite: YYYY-MM-DD. (By exact type: datetimes keep theirs.)
sqlite3.register_adapter(dt.date, dt.date.isoformat)
# Keys looked up in one query (SQLite allows 32,766 parameters).
LOOKUP = 5000


@dataclass
class FileReport:
    filename: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # values recorded through the bot that the export does not show yet
    caught_up: int = 0  # ... that it shows now (no longer waiting to be keyed into ViSOR)
    replaced: int = 0  # ... and that the export replaced (the old ones are in the audit log)


class Pipe:
    """The import's database work on a thread of its own, in order, while the next batch
    is read and checked: the database does its part (SQLite in the driver, without
    Python's lock; PostgreSQL in its own process) while Python checks the next. A bounded
    queue (two batches) keeps memory bounded; a job that fails stops the rest, and `wait`
    raises its error. `threaded=False` runs each job at once (an in-memory SQLite
    database, which a second connection cannot see)."""

    def __init__(self, threaded: bool = True) -> None:
        self.error: BaseException | None = None
        self.jobs: queue.Queue | None = queue.Queue(maxsize=2) if threaded else None
        if self.jobs is not None:
            self.thread = threading.Thread(target=self._run, name="mappa-import-writes",
                                           daemon=True)
            self.thread.start()

    def put(self, job) -> None:
        if self.jobs is None:
            job()
        else:
            self.jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                if self.error is None:
                    job()
            except BaseException as exc:  # noqa: BLE001 (raised again by wait, in the caller)
                self.error = exc
            finally:
                self.jobs.task_done()

    def wait(self) -> None:
        """Until every job is done; raises a job's error."""
        if self.jobs is not None:
            self.jobs.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.jobs is not None:
            self.jobs.put(None)
            self.thread.join()


class Writer:
    """One file's rows, batch by batch: counted (always) and written (when `write`)."""

    def __init__(self, conn: Connection, spec: FileSpec, report: FileReport) -> None:
        self.conn, self.spec = conn, spec
        self.table = SQLModel.metadata.tables[spec.table]
        self.names = list(spec.column_names)
        self.key_idx = [self.names.index(k) for k in spec.key]
        self.key = itemgetter(*self.key_idx)  # a value for a one-column key, else a tuple
        self.report = report
        self.empty = conn.execute(select(self.table.c[spec.key[0]]).limit(1)).first() is None
        self.recorded = {} if self.empty else {
            (k[0] if len(k) == 1 else k): v for k, v in _recorded.load(conn, spec.table).items()}
        self.postgres = conn.dialect.name == "postgresql"
        self._dates: dict[str, dt.date] = {}
        self._temp = False  # the batch table of _upsert exists

    def add(self, rows: list[tuple], write: bool) -> None:
        report = self.report
        report.rows += len(rows)
        if self.empty:  # a first import: every row is new
            report.created += len(rows)
            if write and rows:
                self._insert(rows)
            return
        if not write:  # a dry run: compared here, nothing sent
            inserts, updates, replaced = self._compare(rows)
            report.created += len(inserts)
            report.updated += len(updates)
            report.replaced += len(replaced)
            return
        replaced: list[tuple] = []
        caught_up: list[tuple] = []
        if self.recorded:
            rows = self._with_recorded(rows, replaced, caught_up)
        report.replaced += len(replaced)
        _log_replaced(self.conn, self.spec.table, replaced)
        _recorded.caught_up(self.conn, self.spec.table, caught_up)
        if rows:
            created, updated = self._upsert(rows)
            report.created += created
            report.updated += updated
            report.unchanged += len(rows) - created - updated

    def _with_recorded(self, rows: list[tuple], replaced: list, caught_up: list) -> list[tuple]:
        """The batch with the values people recorded through the bot settled (SPEC section
        5, recorded.settle); only the few rows that have them are read."""
        key, recorded = self.key, self.recorded
        mine = [r for r in rows if key(r) in recorded]
        if not mine:
            return rows
        stored = self._stored(mine)
        changed = {}
        for values in mine:
            k = key(values)
            old = stored.get(k)
            if old is not None:
                changed[k] = _keep_recorded(k if isinstance(k, tuple) else (k,), values, old,
                                            recorded[k], self.names, self.report, replaced,
                                            caught_up)
        return [changed.get(key(r), r) for r in rows]

    def _upsert(self, rows: list[tuple]) -> tuple[int, int]:
        """New rows inserted and changed rows updated by the database, which compares each
        row with the stored one (unchanged rows are not written). Returns (created,
        updated)."""
        names, keys = self.names, [self.names[i] for i in self.key_idx]
        others = [c for c in names if c not in keys]
        assert others, "every file has a column besides its key"
        table, temp = f'"{self.spec.table}"', f'"mappa_import_{self.spec.table}"'
        cols = ", ".join(f'"{c}"' for c in names)
        dbapi = self.conn.connection.dbapi_connection
        cursor = dbapi.cursor()
        try:
            if self.postgres:
                if not self._temp:
                    # Its batch: COPY into a table of its own, then one upsert statement.
                    cursor.execute(f"CREATE TEMP TABLE {temp} AS "
                                   f"SELECT {cols} FROM {table} WITH NO DATA")
                    self._temp = True
                with cursor.copy(f"COPY {temp} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                differs = (f"({', '.join(f't.{chr(34)}{c}{chr(34)}' for c in others)}) IS DISTINCT "
                           f"FROM ({', '.join(f'EXCLUDED.{chr(34)}{c}{chr(34)}' for c in others)})")
                sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in others)
                cursor.execute(
                    f"WITH up AS (INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM {temp} "
                    f"ON CONFLICT ({', '.join(f'{chr(34)}{k}{chr(34)}' for k in keys)}) "
                    f"DO UPDATE SET {sets} WHERE {differs} RETURNING (xmax = 0) AS inserted) "
                    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
                    "FROM up")
                created, updated = cursor.fetchone()
                cursor.execute(f"TRUNCATE {temp}")
                return created, updated
            # One multi-row upsert per few thousand rows, the database comparing each row
            # with the stored one. New rows take the next rowids, so the rise of the
            # largest rowid counts them; the changes the driver counts are the new and
            # the changed rows.
            last = f'SELECT coalesce(max(rowid), 0) FROM {table}'
            before, changes = cursor.execute(last).fetchone()[0], dbapi.total_changes
            differs = " OR ".join(f'{table}."{c}" IS NOT excluded."{c}"' for c in others)
            sets = ", ".join(f'"{c}" = excluded."{c}"' for c in others)
            conflict = ", ".join(f'"{k}"' for k in keys)
            _insert_many(cursor, f"INSERT INTO {table} ({cols}) VALUES ", len(names), rows,
                         f" ON CONFLICT ({conflict}) DO UPDATE SET {sets} WHERE {differs}")
            created = cursor.execute(last).fetchone()[0] - before
            return created, dbapi.total_changes - changes - created
        finally:
            cursor.close()

    def close(self) -> None:
        """Drop the batch table (at the end of the file)."""
        if self._temp:
            self.conn.exec_driver_sql(f'DROP TABLE "mappa_import_{self.spec.table}"')
            self._temp = False

    def _compare(self, rows: list[tuple]) -> tuple[list, list, list]:
        stored = self._stored(rows)
        key, recorded, report = self.key, self.recorded, self.report
        inserts, updates, replaced = [], [], []
        for values in rows:
            k = key(values)
            old = stored.get(k)
            if old is None:
                inserts.append(values)
                continue
            if recorded and k in recorded:
                values = _keep_recorded(k if isinstance(k, tuple) else (k,), values, old,
                                        recorded[k], self.names, report, replaced, [])
            if old != values:
                updates.append(values)
            else:
                report.unchanged += 1
        return inserts, updates, replaced

    def _stored(self, rows: list[tuple]) -> dict:
        """The stored rows of the batch's keys, by key, typed as the checked rows are."""
        key = self.key
        keys = list(set(map(key, rows)))
        out = {}
        cursor = self.conn.connection.dbapi_connection.cursor()
        try:
            for i in range(0, len(keys), LOOKUP):
                chunk = keys[i:i + LOOKUP]
                cursor.execute(*self._lookup(chunk))
                found = cursor.fetchall()
                if found and not self.postgres:
                    found = self._typed(found)
                for rec in found:
                    out[key(rec)] = rec
        finally:
            cursor.close()
        return out

    def _lookup(self, keys: list) -> tuple[str, list]:
        """The query for the stored rows of `keys`, and its parameters: an index probe per
        key (a join with the keys as a table), never a scan."""
        table = f'"{self.spec.table}"'
        cols = ", ".join(f't."{c}"' for c in self.names)
        key_cols = [self.names[i] for i in self.key_idx]
        if len(key_cols) == 1:
            if self.postgres:
                return f'SELECT {cols} FROM {table} t WHERE t."{key_cols[0]}" = ANY(%s)', [keys]
            return (f'SELECT {cols} FROM {table} t WHERE t."{key_cols[0]}" IN ('
                    + ", ".join("?" * len(keys)) + ")", keys)
        on = " AND ".join(f't."{c}" = k.c{n}' for n, c in enumerate(key_cols))
        if self.postgres:
            kinds = {c.name: c.kind for c in self.spec.columns}
            arrays = ", ".join("%s::date[]" if kinds[c] == "date" else "%s::text[]"
                               for c in key_cols)
            names = ", ".join(f"c{n}" for n in range(len(key_cols)))
            return (f"SELECT {cols} FROM unnest({arrays}) AS k({names}) JOIN {table} t ON {on}",
                    [list(column) for column in zip(*keys)])
        row = "(" + ", ".join("?" * len(key_cols)) + ")"
        names = ", ".join(f"column{n + 1} AS c{n}" for n in range(len(key_cols)))
        return (f"SELECT {cols} FROM (SELECT {names} FROM (VALUES "
                + ", ".join([row] * len(keys)) + f")) AS k CROSS JOIN {table} t ON {on}",
                [v for k in keys for v in k])

    def _typed(self, found: list[tuple]) -> list[tuple]:
        """SQLite's rows as the checked rows are typed: its dates are text, its yes/no 0/1."""
        columns = list(zip(*found))
        for i, col in enumerate(self.spec.columns):
            if col.kind == "date":
                memo = self._dates
                columns[i] = [None if v is None else memo.get(v) or memo.setdefault(
                    v, dt.date.fromisoformat(v)) for v in columns[i]]
            elif col.kind == "bool":
                columns[i] = [None if v is None else bool(v) for v in columns[i]]
        return list(zip(*columns))

    def _insert(self, rows: list[tuple]) -> None:
        dbapi = self.conn.connection.dbapi_connection
        if self.postgres:
            from psycopg import sql

            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(self.spec.table), sql.SQL(", ").join(map(sql.Identifier, self.names)))
            with dbapi.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        cursor = dbapi.cursor()
        try:
            _insert_many(cursor, f'INSERT INTO "{self.spec.table}" ('
                         + ", ".join(f'"{c}"' for c in self.names) + ") VALUES ",
                         len(self.names), rows)
        finally:
            cursor.close()


def _insert_many(cursor, insert: str, width: int, rows: list[tuple], tail: str = "") -> None:
    """SQLite: rows as few multi-row INSERTs (up to its 32,766 parameters each): one call
    into the driver per few thousand rows, where executemany makes one a row."""
    per = 32766 // width
    for i in range(0, len(rows), per):
        chunk = rows[i:i + per]
        cursor.execute(insert + ", ".join(["(" + ", ".join("?" * width) + ")"] * len(chunk))
                       + tail, list(chain.from_iterable(chunk)))


def _keep_recorded(key: tuple, values: tuple, old: tuple, recorded: list, names: list[str],
                   report: FileReport, replaced: list[tuple], caught_up: list[tuple]) -> tuple:
    """A row whose stored values include some a person recorded through the bot, settled
    by recorded.settle: a recorded value the export does not show yet (a blank cell, or
    the base it had when the value was recorded) stays; one the export now shows is noted
    in `caught_up`; a different value from the export wins, and the recorded one is noted
    in `replaced` for the audit log."""
    row = list(values)
    for rec in recorded:
        i = names.index(rec.column)
        current = old[i]
        if current is None:
            continue
        outcome = _recorded.settle(row[i], current, rec)
        if outcome == "kept":
            row[i] = current
            report.kept += 1
        elif outcome == "caught_up":
            report.caught_up += 1
            caught_up.append((key, rec.column))
        elif outcome == "replaced":
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


# ----------------------------------------------------------------- custody history


def keep_custody_history(conn: Connection, spec: FileSpec, rows: list[tuple],
                         stored_current: dict, stored_past: dict) -> None:
    """Keep a stored current custody period as a past one when the import moves the
    current period to one starting on or after its release (SPEC section 5): a quarter
    already reported then keeps its answer. A change that does not start after the stored
    release is a correction, and simply replaces it. `stored_*`: as they were before the
    import wrote anything."""
    if not stored_current:
        return
    i_ref, i_cf = spec.column_names.index("ref"), spec.column_names.index("custody_from")
    kept = []
    for row in rows:
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


def drop_replaced_periods(conn: Connection, spec: FileSpec, rows: list[tuple]) -> None:
    """A stored past period that a period of custody.csv overlaps under another
    custody_from was an earlier version of it (ViSOR's history is the record): it goes."""
    _current, stored_past = stored_periods(conn)
    c_ref, c_cf, c_rel = (spec.column_names.index(c) for c in ("ref", "custody_from", "release_date"))
    cust = SQLModel.metadata.tables["custody_period"]
    gone = set()
    for row in rows:
        for p_cf, p_rel, _lvl in stored_past.get(row[c_ref], []):
            if p_cf != row[c_cf] and overlap(p_cf, p_rel, row[c_cf], row[c_rel]):
                gone.add((row[c_ref], p_cf))
    for ref, cf in sorted(gone):
        conn.execute(cust.delete().where(cust.c.ref == ref, cust.c.custody_from == cf))
