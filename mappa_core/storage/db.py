"""Database engine, schema creation and the out-of-date-schema check (Alembic).

The URL comes in as an argument (bot/settings.py reads MAPPA_DATABASE_URL); this module
never reads the environment. Creating or upgrading the schema takes a lock, so that any
number of processes started at once on an empty or out-of-date database end with one
schema: on PostgreSQL a session advisory lock on a connection of its own; on SQLite an
exclusive flock(2) on the database file (SQLite's own locks are fcntl(2) locks, which
Linux keeps apart from flock's, so this one never blocks SQLite's reads and writes).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

DEFAULT_URL = "sqlite:///mappa.db"
# The newest migration in migrations/versions. Kept here so that the check every command
# makes does not have to import Alembic; a test asserts it equals Alembic's head.
SCHEMA_REVISION = "0015_reason_agency_whole_issue"
MIGRATIONS = Path(__file__).parent / "migrations"


# pg_advisory_lock key of schema changes: any fixed 64-bit number no other lock uses.
SCHEMA_LOCK_KEY = 0x6D61707061_0001  # "mappa", 1


class SchemaError(RuntimeError):
    """The database exists but its schema is not the one this version expects."""


# The errors that say the database cannot be used at all: unreachable, refused, a URL or
# driver the engine cannot take, or tables that are not mappa-bot's.
UNUSABLE = (DBAPIError, ArgumentError, NoSuchModuleError)


def why_unusable(exc: Exception, url: str | None = None) -> str:
    """One line on why the database could not be used (an error of UNUSABLE), with any
    password of `url` taken out of the driver's words."""
    from .urls import redact

    reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
    if url:
        reason = redact(reason, url)
    if any(x in reason for x in ("no such table", "no such column", "does not exist")):
        reason = f"it is not a mappa-bot database, or not of this version ({reason})"
    return reason


# Case data is for its owner only: the SQLite file (and SQLite's -wal and -shm beside it,
# which SQLite creates with the database file's own mode), whatever the umask.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        path = _sqlite_file(engine)

        @event.listens_for(engine, "do_connect")
        def _create_private(_dialect, _record, _cargs, _cparams):
            if path is not None:  # before SQLite creates it with the umask's mode
                _create_owner_only(path)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            _wal(cur)
            # In WAL mode NORMAL survives any crash of the process (only a power cut can lose
            # the last commits) and saves an fsync per commit: an outbox row marked sent per
            # message, an audit row per command.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            if path is not None:  # a file an earlier version made readable by others
                for name in (path, f"{path}-wal", f"{path}-shm"):
                    owner_only(name)

        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_file(engine: Engine) -> str | None:
    """The SQLite database's file, or None (in memory, or a `file:` URI)."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def _create_owner_only(path: str) -> None:
    """Create `path` empty and owner-only if it does not exist (SQLite takes an empty file
    for a new database); anything else is left for SQLite to report."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except OSError:
        pass


def owner_only(path: str | Path, mode: int = PRIVATE_FILE) -> None:
    """Take group and other permissions off a file or directory of ours, if it exists."""
    try:
        st = os.stat(path)
        if stat.S_IMODE(st.st_mode) & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077 & mode | (mode & 0o700))
    except OSError:
        pass


def _wal(cur, seconds: float = 30.0) -> None:
    """Put a SQLite file in WAL mode (it stays so). Only the first connection to a new file
    changes it; the change needs the file to itself and, unlike other statements, does not
    wait for it: processes starting together on a new file were told "database is locked"
    while another created the schema. So ask first, and wait while it is locked."""
    if cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    tries = int(seconds / 0.05)
    for attempt in range(tries + 1):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries:
                raise
            time.sleep(0.05)


def _alembic_config(engine: Engine | None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


def ping(engine: Engine) -> None:
    """A trivial query: raises when the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def current_revision(engine: Engine) -> str | None:
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


_thread_lock = threading.Lock()  # flock is per open file: this keeps threads apart too


@contextlib.contextmanager
def schema_lock(engine: Engine):
    """Held while the schema is checked and created or upgraded (see the module docstring)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEMA_LOCK_KEY})
        return
    path = _sqlite_file(engine)
    if path is None:
        with _thread_lock:
            yield
        return
    import fcntl

    try:  # (an empty file is an empty database to SQLite)
        handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE),
                           "ab")
    except OSError:
        with _thread_lock:  # SQLite itself will say why it cannot open the file
            yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}


def _where(engine: Engine) -> str:
    from .urls import hide_password

    return hide_password(engine.url.render_as_string(hide_password=False))


def _not_ours(engine: Engine, current: str) -> SchemaError:
    return SchemaError(
        f"the database at {_where(engine)} is at schema revision {current!r}, which this "
        "version of mappa-bot does not know: it is not a mappa-bot database, or a newer "
        "version of mappa-bot upgraded it"
    )


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision (`mappa db upgrade`)."""
    from alembic import command

    with schema_lock(engine):
        current = current_revision(engine)
        if current is None:
            refuse_foreign_tables(engine)
        elif current not in known_revisions():
            raise _not_ours(engine, current)
        if current != SCHEMA_REVISION:
            command.upgrade(_alembic_config(engine), "head")


def refuse_foreign_tables(engine: Engine) -> None:
    if set(inspect(engine).get_table_names()):
        raise SchemaError(
            f"the database at {_where(engine)} has tables but no mappa-bot schema version; "
            "point MAPPA_DATABASE_URL at an empty database or at a mappa-bot one"
        )


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database; refuse to run on an out-of-date one."""
    if current_revision(engine) == SCHEMA_REVISION:
        return
    with schema_lock(engine):
        current = current_revision(engine)  # another process may have made it meanwhile
        if current == SCHEMA_REVISION:
            return
        if current is None:
            refuse_foreign_tables(engine)
            from alembic import command

            command.upgrade(_alembic_config(engine), "head")
            return
    if current not in known_revisions():  # upgrading would not help: say what it is
        raise _not_ours(engine, current)
    raise SchemaError(
        f"the database schema is at revision {current} but this version needs "
        f"{SCHEMA_REVISION}: run `mappa db upgrade`"
    )


def bump_change_stamp(conn) -> None:
    """Call inside the transaction that changes records the answers are built from (an
    import, a button): every replica's answer cache sees the new version and starts again.
    Last in the transaction, so that its row lock is held as briefly as possible."""
    conn.execute(text("UPDATE change_stamp SET version = version + 1 WHERE id = 1"))


def change_stamp(engine: Engine) -> int:
    """The current version of the records (one indexed row: cheap enough for every answer)."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT version FROM change_stamp WHERE id = 1")).scalar() or 0
