"""Case data is private on disk and in what people read (issue 22.6): the SQLite database
with its -wal and -shm files, every report and export and every directory the product
creates are owner-only (0600 / 0700) under umask 022; a database password, in the URL's
user-info or its query string, is *** in `mappa config` and in errors.

On main before the fix: the database, the pack, exceptions --csv and data_quality_cases.csv
were 0644 under umask 022, and `?password=` was printed in clear."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.cli import main
from mappa_core.storage import db, urls
from tests.conftest import GRAMPIAN
from tests.helpers import run_cli

MAPPA = [sys.executable, "-m", "bot.cli"]


@pytest.fixture(autouse=True)
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_sqlite_database_and_its_wal_and_shm_are_owner_only(tmp_path, monkeypatch, capsys):
    path = tmp_path / "mappa.db"
    monkeypatch.setenv("MAPPA_DATABASE_URL", f"sqlite:///{path}")
    assert main(["import", str(GRAMPIAN)]) == 0
    assert mode(path) == 0o600
    # While a connection writes, SQLite's -wal and -shm files exist beside it.
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE change_stamp SET version = version + 1"))
        assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
            "mappa.db": 0o600, "mappa.db-wal": 0o600, "mappa.db-shm": 0o600}
    engine.dispose()


def test_a_database_an_earlier_version_left_readable_is_made_owner_only(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)  # as made before: the umask's 0644, in WAL mode
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    assert mode(path) == 0o644 and mode(f"{path}-wal") == 0o644
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.connect() as c:
        c.execute(text("SELECT 1"))
        assert mode(path) == mode(f"{path}-wal") == mode(f"{path}-shm") == 0o600
    engine.dispose()
    conn.close()


@pytest.mark.parametrize(("args", "out", "files"), [
    (["report", "quarterly", "--period", "2026-27-Q2", "--as-of", "2026-11-26"],
     "pack.html", None),
    (["report", "quarterly", "--period", "2026-27-Q2", "--as-of", "2026-11-26", "--format", "csv"],
     "new/nested/pack", {"data_quality_cases.csv", "exceptions.csv", "indicators.csv"}),
    (["report", "annual", "--year", "2025-26"], "new/annual", {"table1.csv", "annual.html"}),
    (["report", "stats", "--from", "2026-04-01", "--to", "2026-11-26"], "new/stats", None),
])
def test_every_report_file_and_directory_it_creates_is_owner_only(grampian_cli, tmp_path, capsys,
                                                                   args, out, files):
    target = tmp_path / out
    code, _, err = run_cli(capsys, *args, "--out", str(target))
    assert code == 0, err
    if target.suffix == ".html":
        assert mode(target) == 0o600
        return
    written = {p.name: mode(p) for p in target.iterdir()}
    assert files is None or files <= set(written)
    assert set(written.values()) == {0o600}, written
    created = [target, *[p for p in target.parents if tmp_path in p.parents]]
    assert {str(p.relative_to(tmp_path)): mode(p) for p in created} == {
        str(p.relative_to(tmp_path)): 0o700 for p in created}


@pytest.mark.process
@pytest.mark.parametrize("args", [["exceptions", "--csv", "--as-of", "2026-11-26"],
                                  ["report", "compare", "--csv", "--as-of", "2026-11-26"]])
def test_a_csv_sent_to_a_file_through_standard_output_is_owner_only(grampian_cli, tmp_path,
                                                                    args):
    """`mappa exceptions --csv > exceptions.csv`: the shell makes the file (0644 under umask
    022); mappa makes it owner-only as it writes case references into it."""
    target = tmp_path / "export.csv"
    env = {**os.environ, "MAPPA_DATABASE_URL": grampian_cli}
    with open(target, "w") as out:
        subprocess.run([*MAPPA, *args], stdout=out, env=env, check=True, timeout=120)
    assert target.stat().st_size > 0 and mode(target) == 0o600


URL = "postgresql+psycopg://mappa:userinfo-secret@127.0.0.1:{port}/mappa?password=query-secret"


def test_a_database_password_in_the_user_info_or_the_query_is_hidden(tmp_path, monkeypatch,
                                                                      capsys):
    from tests.slack_harness import free_port

    monkeypatch.chdir(tmp_path)
    url = URL.format(port=free_port())  # nothing listens there: a connection error
    monkeypatch.setenv("MAPPA_DATABASE_URL", url)
    code, out, err = run_cli(capsys, "config")
    assert code == 0 and "secret" not in out + err
    assert "mappa:***@127.0.0.1" in out and "password=***" in out
    code, out, err = run_cli(capsys, "status", "--as-of", "2026-11-26")
    assert code == 2 and "cannot use the database" in err
    assert "secret" not in out + err and "password=***" in err
    # The settings' own refusal of a bad value says where, not what the password is.
    monkeypatch.setenv("MAPPA_DATABASE_URL", url.replace("{port}", "x") + "&port=abc")
    code, out, err = run_cli(capsys, "config")
    assert "secret" not in out + err


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://u:pw@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
    ("postgresql+psycopg://u@h/db?password=pw&sslmode=require",
     "postgresql+psycopg://u@h/db?password=***&sslmode=require"),
    ("postgresql+psycopg://u:a@h/db?PASSWORD=b&sslpassword=c",
     "postgresql+psycopg://u:***@h/db?PASSWORD=***&sslpassword=***"),
    ("postgresql://u:p%40ss@h:notaport/db?password=q", "postgresql://u:***@h:notaport/db?password=***"),
    ("sqlite:///mappa.db", "sqlite:///mappa.db"),
])
def test_hide_password(url, shown):
    assert urls.hide_password(url) == shown
    assert urls.redact(f"error near {' and '.join(urls.passwords(url)) or 'nothing'}", url) \
        .count("***") == len(urls.passwords(url))


def test_redact_leaves_words_that_merely_contain_a_short_password():
    url = "postgresql://u:p@h/db"
    assert urls.redact("password p refused", url) == "password *** refused"


def test_the_lock_file_path_makes_a_new_database_owner_only(tmp_path):
    """`mappa db upgrade` on a new file takes the schema lock first, which creates it."""
    path = tmp_path / "new.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    assert mode(path) == 0o600
    assert Path(path).stat().st_size > 0
