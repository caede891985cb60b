"""A whole database copied into another, for `mappa demo-day`'s temporary copy: every
mappa table's rows, read from the source only; and whether a database has records to copy.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import db, models  # noqa: F401  (models registers the tables)
from .urls import sqlite_file_missing


def copy_database(source: Engine, target: Engine) -> int:
    """Every mappa table's rows from engine `source` into engine `target` (an empty schema
    at the same revision); only reads `source`. Returns the number of individuals."""
    tables = SQLModel.metadata.sorted_tables
    with source.connect() as src, target.begin() as dst:
        # A new schema may hold rows of its own (the change stamp's one row): the copy
        # replaces them.
        for table in reversed(tables):
            dst.execute(table.delete())
        for table in tables:
            result = src.execution_options(stream_results=True, yield_per=5000).execute(
                select(table))
            for chunk in result.mappings().partitions(5000):
                dst.execute(table.insert(), [dict(r) for r in chunk])
        return dst.execute(select(func.count()).select_from(
            SQLModel.metadata.tables["individual"])).scalar()


def source_state(url: str) -> str:
    """`records`, `empty` (no schema, or no individuals) or raises db.SchemaError; reads only."""
    if sqlite_file_missing(url):
        return "empty"  # connecting would create the file
    engine = db.make_engine(url)
    try:
        current = db.current_revision(engine)
        if current is None:
            db.refuse_foreign_tables(engine)  # another program's database: say so
            return "empty"
        if current != db.SCHEMA_REVISION:
            raise db.SchemaError(
                f"the database schema is at revision {current} but this version needs "
                f"{db.SCHEMA_REVISION}: run `mappa db upgrade`")
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(
                SQLModel.metadata.tables["individual"])).scalar()
        return "records" if n else "empty"
    finally:
        engine.dispose()
