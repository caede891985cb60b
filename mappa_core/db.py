"""Database engine, schema creation and the out-of-date-schema check (Alembic)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine

DEFAULT_URL = "sqlite:///mappa.db"
# The newest migration in migrations/versions. Kept here so that the check every command
# makes does not have to import Alembic; a test asserts it equals Alembic's head.
SCHEMA_REVISION = "0007_custody_history"
MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaError(RuntimeError):
    """The database exists but its schema is not the one this version expects."""


def database_url() -> str:
    return os.environ.get("MAPPA_DATABASE_URL") or DEFAULT_URL


def make_engine(url: str | None = None) -> Engine:
    url = url or database_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL survives any crash of the process (only a power cut can lose
            # the last commits) and saves an fsync per commit: an outbox row marked sent per
            # message, an audit row per command.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config(engine: Engine | None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision (`mappa db upgrade`)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), "head")


def ensure_schema(engine: Engine) -> None:
    """Create the schema on an empty database; refuse to run on an out-of-date one."""
    current = current_revision(engine)
    if current == SCHEMA_REVISION:
        return
    if current is None:
        tables = set(inspect(engine).get_table_names())
        if tables:
            raise SchemaError(
                f"the database at {engine.url.render_as_string(hide_password=True)} has tables "
                "but no mappa-bot schema version; point MAPPA_DATABASE_URL at an empty "
                "database or run `mappa db upgrade` on a mappa-bot one"
            )
        upgrade(engine)
        return
    raise SchemaError(
        f"the database schema is at revision {current} but this version needs "
        f"{SCHEMA_REVISION}: run `mappa db upgrade`"
    )
