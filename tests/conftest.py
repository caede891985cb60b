"""Shared fixtures: real SQLite files and, where MAPPA_TEST_POSTGRES_URL is set, a real
PostgreSQL database created fresh for each test and dropped afterwards."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from mappa_core.storage import db

FIXTURES = Path(__file__).parent / "fixtures"
GRAMPIAN = FIXTURES / "grampian"
PG_URL = os.environ.get("MAPPA_TEST_POSTGRES_URL")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mappa.db'}"


@pytest.fixture
def postgres_url():
    if not PG_URL:
        pytest.skip("MAPPA_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    name = f"mappa_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        # A fresh connection: a test may have restarted the server meanwhile.
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_execute(sql: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(sql))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    """Runs the test once on a SQLite file and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(db_url):
    eng = db.make_engine(db_url)
    db.ensure_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url):
    eng = db.make_engine(sqlite_url)
    db.ensure_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def scenario(engine):
    """scenario(tmp_path, individuals=[...], meetings=[...], ...): the database (SQLite and
    PostgreSQL in turn) holding exactly these records, imported from real CSV files."""
    from tests.helpers import load_scenario

    calls = iter(range(1000))

    def build(tmp_path, agencies=None, **tables):
        return load_scenario(engine, tmp_path / f"csv{next(calls)}", agencies, **tables)

    return build


@pytest.fixture
def grampian_cli(sqlite_url, monkeypatch, capsys):
    """MAPPA_DATABASE_URL set to a SQLite file holding the Grampian example, for `mappa`."""
    from bot.cli import main

    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    assert main(["import", str(GRAMPIAN)]) == 0
    capsys.readouterr()
    return sqlite_url


def pytest_collection_modifyitems(items):
    """Mark `postgres` every test that runs on PostgreSQL: one using the postgres_url fixture
    (itself or through another fixture) or a fixture parametrised with "postgres" (db_url,
    engine, scenario, a module's own `database`). Its SQLite twin stays unmarked, so
    `-m "not postgres"` keeps it."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgres_url" in item.fixturenames or any(
                isinstance(v, str) and v == "postgres" for v in params.values()):
            item.add_marker(pytest.mark.postgres)
