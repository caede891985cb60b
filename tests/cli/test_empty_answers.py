"""Empty answers that are really errors say so (issue 11 item 6), and `mappa demo-day`
never touches the configured database's notifications (item 5)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from bot.cli import main
from mappa_core.storage import db
from tests.conftest import GRAMPIAN
from tests.helpers import run_cli as _run

AS_OF = ["--as-of", "2026-11-26"]
RECORD_COMMANDS = [
    ["status", *AS_OF],
    ["due", *AS_OF],
    ["exceptions", *AS_OF],
    ["report", "quarterly", "--period", "2026-27-Q3", *AS_OF],
    ["report", "stats", "--from", "2026-04-01", "--to", "2026-11-26"],
    ["report", "annual", "--year", "2026-27"],
    ["report", "compare", *AS_OF],
]
AREA_COMMANDS = [c for c in RECORD_COMMANDS if c[:2] != ["report", "compare"]]


@pytest.fixture
def in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # reports write their files here
    return tmp_path


@pytest.mark.parametrize("args", AREA_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_unknown_area_is_an_error_listing_the_known_ones(grampian_cli, in_tmp, capsys, args):
    code, out, err = _run(capsys, *args, "--area", "Grampain")
    assert code == 2 and out == ""
    assert err == "mappa: error: No area is called 'Grampain'. Areas: Grampian.\n"
    assert [p.name for p in in_tmp.iterdir() if not p.name.startswith("mappa.db")] == []  # no report


def test_area_names_match_without_regard_to_case_and_answer_with_the_stored_spelling(grampian_cli, capsys):
    code, out, err = _run(capsys, "status", "--period", "2026-27", "--as-of", "2027-01-31",
                          "--json", "--area", "grampian")
    assert code == 0, err
    lower = json.loads(out)
    code, out, _ = _run(capsys, "status", "--period", "2026-27", "--as-of", "2027-01-31",
                        "--json", "--area", "Grampian")
    assert lower["area"] == "Grampian" and lower == json.loads(out)
    assert sum(i["denominator"] for i in lower["indicators"]) > 0
    code, out, _ = _run(capsys, "status", "level3", *AS_OF, "--area", "GRAMPIAN")
    assert code == 0 and out.startswith("MAPPA indicators - Grampian - ")


def test_an_unknown_chair_is_an_error_listing_the_known_ones(grampian_cli, capsys):
    code, out, err = _run(capsys, "due", *AS_OF, "--chair", "nobody")
    assert code == 2 and out == ""
    assert err == "mappa: error: unknown chair 'nobody': the known chairs are g-chair-1, g-chair-2\n"
    code, out, _ = _run(capsys, "due", *AS_OF, "--days", "400", "--chair", "g-chair-1")
    assert code == 0 and "g-chair-1" in out and "g-chair-2" not in out


@pytest.mark.parametrize("args", RECORD_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_empty_database_says_so_and_which_it_read(in_tmp, monkeypatch, capsys, args):
    sqlite = f"sqlite:///{in_tmp / 'empty.db'}"
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite)
    code, out, err = _run(capsys, *args)
    assert code == 1 and out == ""
    assert err == (f"mappa: the database {sqlite} is empty (no individuals): import the CSV "
                   "files with `mappa import DIR`, or set MAPPA_DATABASE_URL to the database "
                   "that holds them\n")
    assert {p.name for p in in_tmp.iterdir()} <= {"empty.db", "empty.db-wal", "empty.db-shm"}


def test_an_empty_postgresql_database_is_named_without_its_password(postgres_url, monkeypatch, capsys):
    from sqlalchemy.engine import make_url

    with_password = make_url(postgres_url).set(username="postgres", password="hunter2")
    monkeypatch.setenv("MAPPA_DATABASE_URL", with_password.render_as_string(hide_password=False))
    code, _, err = _run(capsys, "status", *AS_OF)
    assert code == 1 and "hunter2" not in err
    assert f"the database {with_password.render_as_string(hide_password=True)} is empty" in err


# ---------------------------------------------------------------------- demo-day


def _snapshot(url: str) -> dict[str, list]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: sorted(map(tuple, conn.execute(select(t))), key=repr)
                    for t in SQLModel.metadata.sorted_tables}
    finally:
        engine.dispose()


def test_demo_day_never_writes_the_configured_database(grampian_cli, capsys):
    before = _snapshot(grampian_cli)
    assert before["individual"] and before["outbox"] == []
    code, out, err = _run(capsys, "demo-day", "--as-of", "2026-11-26", "--show", "1")
    assert code == 0, err
    assert "=== A simulated working day: Thursday 26 November 2026 ===" in out
    assert "a temporary copy of" in out and "the configured database is not written to" in out
    assert "--- Slack DM to Ailsa Chair (U1CHAIR1) ---" in out and "email(s) to 2 addresses" in out  # one an agency
    assert _snapshot(grampian_cli) == before
    # Run twice: the second day plans and sends the same again, since the copy is new each time.
    code, again, _ = _run(capsys, "demo-day", "--as-of", "2026-11-26", "--show", "1")
    assert again.split("Summary of the day:")[1] == out.split("Summary of the day:")[1]


def test_demo_day_on_a_day_off_says_which_day_it_simulates_instead(grampian_cli, capsys):
    # Saturday 28 November; Monday 30th is St Andrew's Day: Tuesday 1 December is simulated.
    code, out, err = _run(capsys, "demo-day", "--as-of", "2026-11-28", "--show", "0")
    assert code == 0, err
    assert "Saturday 28 November 2026 is not a working day" in out
    assert "=== A simulated working day: Tuesday 1 December 2026 ===" in out


def test_demo_day_leaves_a_real_outbox_as_it_was(grampian_cli, capsys):
    """A real digest planned for the day but not yet sent stays unsent for the real worker."""
    code, _, err = _run(capsys, "jobs", "run", "digest", "--as-of", "2026-11-26T08:30")
    assert code == 0, err
    engine = db.make_engine(grampian_cli)
    with engine.connect() as conn:
        pending = conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar()
    engine.dispose()
    assert pending > 0
    before = _snapshot(grampian_cli)
    code, out, _ = _run(capsys, "demo-day", "--as-of", "2026-11-26")
    assert code == 0 and "Summary of the day:" in out
    assert _snapshot(grampian_cli) == before


def test_demo_day_on_a_missing_database_makes_up_a_region_and_creates_nothing(in_tmp, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", f"sqlite:///{in_tmp / 'none.db'}")
    code, out, err = _run(capsys, "demo-day", "--as-of", "2026-11-26", "--show", "0")
    assert code == 0, err
    assert "synthetic individuals" in out and "Summary of the day:" in out
    assert list(in_tmp.iterdir()) == []


def test_demo_day_copies_from_postgresql(postgres_url, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", postgres_url)
    assert _run(capsys, "import", str(GRAMPIAN))[0] == 0
    before = _snapshot(postgres_url)
    code, out, err = _run(capsys, "demo-day", "--as-of", "2026-11-26", "--show", "1")
    assert code == 0, err
    assert "--- Slack DM to Ailsa Chair (U1CHAIR1) ---" in out and "email(s) to 2 addresses" in out  # one an agency
    assert _snapshot(postgres_url) == before


def test_an_empty_relative_sqlite_database_names_the_file_it_read(in_tmp, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", "sqlite:///mappa.db")
    code, _, err = _run(capsys, "due", *AS_OF)
    assert code == 1
    assert err.startswith(f"mappa: the database sqlite:///mappa.db ({in_tmp.resolve() / 'mappa.db'}) is empty")


def test_demo_day_refuses_another_programs_database(tmp_path, monkeypatch, capsys):
    # It said "holds no records" and made up a region, exit 0; every other command refuses.
    import sqlite3


    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE foo (x)")
    monkeypatch.setenv("MAPPA_DATABASE_URL", f"sqlite:///{path}")
    with pytest.raises(SystemExit) as exit_:
        main(["demo-day"])
    assert exit_.value.code == 2
    assert "has tables but no mappa-bot schema version" in capsys.readouterr().err
