"""A safe first start (issue 11 item 4): schema creation and upgrades take a lock, so any
number of processes started at once on an empty or out-of-date database end with one schema
and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from mappa_core.storage import db

ROOT = Path(__file__).resolve().parents[2]
N = 6


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _ensure_in_threads(url: str, n: int = N) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def work() -> None:
        engine = db.make_engine(url)
        try:
            start.wait()
            db.ensure_schema(engine)
        except BaseException as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def test_threads_creating_the_schema_at_once_end_with_one_schema(db_url):
    assert _ensure_in_threads(db_url) == []
    engine = db.make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            db.SCHEMA_REVISION]
    engine.dispose()
    assert {"individual", "meeting", "outbox"} <= _tables(db_url)


ENSURE = """
import sys, time
from mappa_core.storage import db
engine = db.make_engine(sys.argv[1])
while time.time() < float(sys.argv[2]):
    time.sleep(0.001)
{call}
print("ok")
"""


def _at_once(url: str, call: str, n: int = N) -> list[subprocess.CompletedProcess]:
    """`n` Python processes running `call` on `url` at the same instant."""
    go = time.time() + 3.0  # all processes are up and waiting by then
    procs = [subprocess.Popen([sys.executable, "-c", ENSURE.format(call=call), url, str(go)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    return [subprocess.CompletedProcess(p.args, p.wait(120), *p.communicate()) for p in procs]


@pytest.mark.process
def test_processes_creating_the_schema_at_once_end_with_one_schema(db_url):
    for result in _at_once(db_url, "db.ensure_schema(engine)"):
        assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "ok", "")
    engine = db.make_engine(db_url)
    assert db.current_revision(engine) == db.SCHEMA_REVISION
    engine.dispose()


@pytest.mark.process
def test_processes_upgrading_an_out_of_date_schema_at_once(db_url):
    from alembic import command

    engine = db.make_engine(db_url)
    command.upgrade(db._alembic_config(engine), "0004")
    assert db.current_revision(engine) == "0004"
    for result in _at_once(db_url, "db.upgrade(engine)"):
        assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "ok", "")
    assert db.current_revision(engine) == db.SCHEMA_REVISION
    assert "scr_action" in set(inspect(engine).get_table_names())  # made by 0006
    engine.dispose()


def test_the_postgresql_lock_is_released_after(postgres_url):
    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    with engine.connect() as conn:
        held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
        assert held.scalar() == 0
    engine.dispose()


@pytest.mark.http
@pytest.mark.process
def test_two_mappa_serve_processes_start_at_once_on_a_new_postgresql(postgres_url, tmp_path):
    """Two replicas, started together on an empty database: both answer /healthz, neither
    logs a traceback (before the lock, one crashed on a duplicate alembic_version)."""
    from tests.slack_harness import SIGNING_SECRET, SlackStandIn, free_port, stop, wait_until_up

    stand_in = SlackStandIn()
    (tmp_path / "empty.env").write_text("")
    env = {**os.environ, "MAPPA_DATABASE_URL": postgres_url, "SLACK_BOT_TOKEN": "xoxb-replica",
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": stand_in.api_url(),
           "SMTP_HOST": "", "PYTHONPATH": str(ROOT)}
    ports = [free_port(), free_port()]
    logs = [open(tmp_path / f"replica{i}.log", "w+") for i in range(2)]  # noqa: SIM115
    servers = [subprocess.Popen([sys.executable, "-m", "bot.cli", "--env-file",
                                 str(tmp_path / "empty.env"), "serve", "--port", str(port)],
                                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
               for port, log in zip(ports, logs)]
    try:
        for port, server in zip(ports, servers):
            wait_until_up(port, server)
    finally:
        for server in servers:
            stop(server)
        stand_in.close()
    for log in logs:
        log.seek(0)
        output = log.read()
        log.close()
        assert "Traceback" not in output and "ERROR" not in output, output
    engine = db.make_engine(postgres_url)
    assert db.current_revision(engine) == db.SCHEMA_REVISION
    engine.dispose()


def test_a_database_of_another_program_is_refused_by_upgrade(sqlite_url):
    engine = db.make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('abc123')"))
    with pytest.raises(db.SchemaError, match="not a mappa-bot database"):
        db.upgrade(engine)
    engine.dispose()
