"""The `mappa` command as users run it: status, due, exceptions, schema checks, errors."""

import json
import os

import pytest
from sqlalchemy import text

from bot.cli import main
from mappa_core.storage import db
from tests.conftest import GRAMPIAN
from tests.helpers import run_cli as _run


def test_human_status_shows_target_tick_cross_margin_and_pending(grampian_cli, capsys):
    code, out, _ = _run(capsys, "status", "level3", "--period", "2026-27-Q3", "--as-of", "2026-11-26")
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("l3-reviews"))
    # 2 of 3 met, 2 pending: 5 items at 95% allow 0 failures, 1 used -> margin -1.
    assert line.split() == ["l3-reviews", "95%", "66.7%", "(2/3)", "\u2717", "-1", "2"]
    assert "now: open cases 4, overdue 0, due 14 days 1" in out


def test_status_defaults_to_the_quarter_containing_as_of(grampian_cli, capsys):
    code, out, _ = _run(capsys, "status", "minutes", "--as-of", "2026-11-26", "--json")
    data = json.loads(out)
    assert data["period"] == {"start": "2026-10-01", "end": "2026-12-31"}
    assert [i["id"] for i in data["indicators"]] == ["minutes-10wd"]
    assert data["indicators"][0]["pending"] == 3


@pytest.mark.parametrize("topic, ids", [
    ("attendance", ["dtc-attendance", "police-attendance", "cbsw-attendance"]),
    ("contributions", ["ra-written", "dtc-written"]),
    ("custody", ["custody-initial-l3"]),
    ("disclosure", ["disclosure"]),
    ("level2", ["l2-reviews"]),
])
def test_status_topics(grampian_cli, capsys, topic, ids):
    _, out, _ = _run(capsys, "status", topic, "--as-of", "2026-11-26", "--json")
    assert [i["id"] for i in json.loads(out)["indicators"]] == ids


@pytest.mark.parametrize("args, message", [
    (["status", "--period", "2026-28"], "consecutive years"),
    (["status", "--period", "last quarter"], "is not one of 2026-27"),
    (["status", "--as-of", "31/02/2026"], "not a real date"),
    (["status", "levelx"], "invalid choice"),
    (["due", "--days", "-3"], "--days must be 0 or more"),
    (["exceptions", "--indicator", "nope"], "unknown indicator"),
])
def test_bad_arguments_get_a_clear_error_and_exit_2(grampian_cli, capsys, args, message):
    code, out, err = _run(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_due_lists_overdue_first_with_working_days_left(grampian_cli, capsys):
    code, out, _ = _run(capsys, "due", "--as-of", "2026-11-26", "--days", "14")
    assert code == 0
    rows = [ln for ln in out.splitlines() if ln[:1] in ("!", " ") and ln[3:4].isdigit()]
    # GRA-0103's Level 2 review was due 2026-11-12 and has not been held by 11-26.
    assert rows[0].split()[:6] == ["!!", "2026-11-12", "-10", "review", "due", "GRA-0103"]
    assert all(r.startswith("!!") for r in rows[:1])
    # G12 (2026-11-16) minutes: 10th working day is 2026-12-01 (St Andrew's Day skipped):
    # 27 Nov, 1 Dec -> 2 working days left.
    g12 = [r for r in rows if " G12 " in r]
    assert g12 and g12[0].split()[:2] == ["2026-12-01", "2"]
    # The chair by name (with the id --chair takes).
    assert rows[0].endswith(" Ailsa Chair (g-chair-1)") and g12[0].endswith(" Calum Chair (g-chair-2)")


def test_due_for_one_chair(grampian_cli, capsys):
    _, out, _ = _run(capsys, "due", "--as-of", "2026-11-26", "--chair", "g-chair-2")
    assert "GRA-0103" not in out  # g-chair-1's case
    assert "GRA-0105" in out


def test_exceptions_groups_by_reason_agency_case_and_chair(grampian_cli, capsys):
    code, out, _ = _run(capsys, "exceptions", "--period", "2026-27", "--as-of", "2027-01-31")
    assert code == 0
    assert "cases with more than one exception" in out
    code, out, _ = _run(capsys, "exceptions", "--period", "2026-27", "--as-of", "2027-01-31",
                        "--indicator", "l3-reviews", "--csv")
    lines = out.strip().splitlines()
    assert lines[0] == "indicator,ref,meeting_id,agency,due,done,reason,chair_id"
    assert len(lines) == 1 + 5


def test_empty_database_gets_its_schema_from_any_command(sqlite_url, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    code, out, err = _run(capsys, "status", "--as-of", "2026-11-26", "--json")
    # The schema is made; the answer is an error, not zeros (issue 11 item 6).
    assert code == 1 and "is empty" in err and out == ""
    assert db.current_revision(db.make_engine(sqlite_url)) == db.SCHEMA_REVISION


def test_out_of_date_schema_stops_every_command_naming_the_fix(grampian_cli, capsys):
    engine = db.make_engine(grampian_cli)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
    for args in (["status"], ["due"], ["import", str(GRAMPIAN)]):
        code, _, err = _run(capsys, *args)
        assert code == 2
        assert "run `mappa db upgrade`" in err


def test_db_upgrade_creates_the_schema(sqlite_url, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", sqlite_url)
    code, out, _ = _run(capsys, "db", "upgrade")
    assert code == 0 and db.SCHEMA_REVISION in out


def test_schema_revision_constant_is_alembics_head():
    assert db.alembic_head() == db.SCHEMA_REVISION


def test_unreachable_database_is_a_clear_error_without_the_password(monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", "postgresql+psycopg://u:s3cret@127.0.0.1:1/x")
    code, _, err = _run(capsys, "status")
    assert code == 2
    assert "cannot use the database" in err and "s3cret" not in err


def test_migrations_build_exactly_the_models_schema(tmp_path):
    """A model change without its migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = db.make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []


def test_due_with_a_limit_lists_the_first_items_and_counts_them_all(grampian_cli, capsys):

    assert main(["due", "--as-of", "2026-12-01", "--days", "14"]) == 0
    full = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["due", "--as-of", "2026-12-01", "--days", "14", "--limit", "2"]) == 0
    limited = capsys.readouterr().out.strip().splitlines()
    # The totals are the whole list's (it said "2 overdue, 0 due soon" before).
    assert limited[-1] == full + "; the first 2 listed (--limit)"
    import re

    assert sum(bool(re.match(r"(!! |   )\d{4}-\d{2}-\d{2}", line)) for line in limited) == 2


def test_a_database_from_a_newer_version_is_named_as_such_not_sent_to_db_upgrade(grampian_cli,
                                                                                  capsys):
    from sqlalchemy import text

    from mappa_core.storage import db

    engine = db.make_engine(grampian_cli)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(SystemExit) as exit_:
        main(["status"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'9999_future', which this version of mappa-bot does not know" in err
    assert "run `mappa db upgrade`" not in err


def test_a_period_that_starts_after_as_of_is_an_error_not_a_page_of_zeros(grampian_cli, capsys):
    code, out, err = _run(capsys, "status", "--period", "2030-31", "--as-of", "2026-11-26")
    assert code == 2 and out == ""
    assert "period 2030-31 starts after 2026-11-26" in err
    assert _run(capsys, "status", "--period", "2026-27-Q3", "--as-of", "2026-10-01")[0] == 0


def test_each_command_is_defined_by_the_module_its_line_names():
    """bot/cli is one module per group of commands; COMMANDS says which module defines each
    (so that only that one is imported), and each module's ARGUMENTS defines exactly those.
    That the modules build no SQL is tests/architecture/test_import_graph.py's check, for all of bot/."""
    import importlib
    import pkgutil

    import bot.cli as cli

    modules = {m.name for m in pkgutil.iter_modules(cli.__path__)} - {"__main__", "common"}
    assert {module for module, _ in cli.COMMANDS.values()} == modules
    for module in modules:
        defined = importlib.import_module(f"bot.cli.{module}").ARGUMENTS
        assert list(defined) == [c for c, (m, _) in cli.COMMANDS.items() if m == module]
    commands = cli.build_parser()._subparsers._group_actions[0].choices
    assert list(commands) == list(cli.COMMANDS)  # in the order of `mappa --help`


HEAVY = ("pandas", "sqlalchemy", "sqlmodel", "pydantic", "pydantic_settings", "numpy",
         "holidays", "jinja2", "apscheduler", "slack_bolt", "slack_sdk", "asyncio")


def _loaded_by(*argv: str) -> set[str]:
    """The modules a `mappa ...` run in a fresh interpreter had loaded when it exited."""
    import json
    import subprocess
    import sys

    code = ("import atexit, json, sys\n"
            "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
            "from bot.cli import main\n"
            f"sys.exit(main({list(argv)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return set(json.loads(out.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["status", "--help"],
                                  ["report", "quarterly", "--help"], ["jobs", "run", "--help"],
                                  ["audit", "--help"], ["demo-data", "--help"]])
def test_help_and_version_load_no_heavy_library_and_no_other_command(argv):
    loaded = _loaded_by(*argv)
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY), sorted(
        {m.split(".")[0] for m in loaded} & set(HEAVY))
    import bot.cli as cli

    chosen = set() if argv[0].startswith("-") else {f"bot.cli.{cli.COMMANDS[argv[0]][0]}"}
    assert {m for m in loaded if m.startswith("bot.cli.")} <= {"bot.cli.common", *chosen}


def test_a_command_loads_only_its_own_module_and_pydantic_scans_for_no_plugins(tmp_path):
    # `mappa config` builds the settings (pydantic); pydantic would read every installed
    # distribution's entry points for plugins unless told not to.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    loaded = _loaded_by("--env-file", str(env_file), "config")
    assert {m for m in loaded if m.startswith("bot.cli.")} == {"bot.cli.common", "bot.cli.config"}
    assert "pydantic" in {m.split(".")[0] for m in loaded}
    import subprocess
    import sys

    code = ("import importlib.metadata as md, sys\n"
            "seen = []\n"
            "real = md.entry_points\n"
            "md.entry_points = lambda **kw: seen.append(kw.get('group')) or real(**kw)\n"
            "from bot.cli import main\n"
            "try:\n"
            f"    main(['--env-file', {str(env_file)!r}, 'config'])\n"
            "finally:\n"
            "    print('groups', seen, file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"})
    assert out.returncode == 0, out.stderr
    assert "groups [" in out.stderr and "'pydantic'" not in out.stderr, out.stderr


def test_the_table_renderer_pads_each_column_but_not_past_the_last_cell():
    from bot.cli.common import Col, table

    out = table([Col("id", 3, ">"), Col("what", 6), Col("who")],
                [(1, "review", "ann"), "   a note", (22, "x", "")])
    assert out.splitlines() == [" id what   who", "  1 review ann", "   a note", " 22 x      "]
    assert table([Col(width=None), Col(gap="  ")], [("a", "b"), ("ccc", "d")],
                 header=False, indent="> ") == "> a    b\n> ccc  d"


@pytest.mark.parametrize("word, value", [
    ("yes", True), ("Y", True), ("true", True), ("1", True), ("on", True),
    ("no", False), ("N", False), ("FALSE", False), ("0", False), ("off", False),
    ("maybe", None), ("t", None), ("", None),
])
def test_one_yes_no_for_the_import_the_settings_and_the_cli(word, value, tmp_path):
    """The same words mean yes and no in a CSV file, a setting and `mappa audit record`."""
    from bot.cli.audits_and_scrs import _yes_no
    from bot.cli.common import UsageError
    from bot.settings import SettingsError, load
    from mappa_core.rules.schema import FILES
    from mappa_core.storage.importer import _converter

    column = next(c for f in FILES for c in f.columns if c.kind == "bool")
    got = {}
    for name, read in (("import", _converter(column)),
                       ("settings", lambda w: load(tmp_path / "none.env",
                                                   environ={"SMTP_TLS": w}).settings.smtp_tls),
                       ("cli", _yes_no)):
        (tmp_path / "none.env").write_text("")
        try:
            got[name] = read(word)
        except (ValueError, SettingsError, UsageError) as exc:
            got[name] = None
            assert "yes or no" in str(exc)
    # An empty setting is "not set" (the default, False), not an error: the one exception.
    expected = {"import": value, "settings": value, "cli": value}
    if word == "":
        expected["settings"] = False
    assert got == expected


@pytest.mark.parametrize("word, message", [
    ("26/11/2026", None), ("2026-11-26", None),
    ("2026-02-30", "'2026-02-30' is not a real date (day is out of range for month)"),
    ("11/26/2026", "'11/26/2026' is not a real date (month must be in 1..12)"),
    ("0001-01-01", "'0001-01-01' is outside the years 1900-2100"),
])
def test_one_date_parser_for_the_cli_the_jobs_clock_and_periods(word, message):
    """`--as-of` of `mappa status` and of `mappa jobs`, and a period's range, read a date
    the same way the import does, with the same message when it is not one."""
    import argparse
    import datetime as dt

    from bot.cli.common import date_arg
    from bot.jobs.ticks import parse_when
    from mappa_core.rules.periods import PeriodError, parse_period

    readers = [date_arg, lambda w: parse_when(w).date(),
               lambda w: parse_period(f"{w}..{w}").start if "-" in w else date_arg(w)]
    for read in readers:
        if message is None:
            assert read(word) == dt.date(2026, 11, 26)
        else:
            with pytest.raises((ValueError, argparse.ArgumentTypeError, PeriodError),
                               match=message.replace("(", r"\(").replace(")", r"\)")
                               .replace(".", r"\.")):
                read(word)


def test_version_is_the_installed_distributions_and_needs_no_settings(tmp_path, monkeypatch, capsys):
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    # Even with a settings file that would stop every command: --version reads none.
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MAPPA_TIMEZONE=Nowhere/Nothing\n")
    code, out, err = _run(capsys, "--version")
    assert (code, out, err) == (0, f"mappa {version(project['name'])}\n", "")
    assert version(project["name"]) == project["version"]


def test_status_keeps_its_columns_when_an_agency_id_is_longer_than_the_first():
    """The demo's ten areas have agency ids such as housing-north-strathclyde: the figures
    stay in their columns (they were pushed right, row by row)."""
    from bot.cli.status import render_status

    def result(agency, n, d):
        return {"agency": agency, "numerator": n, "denominator": d, "percent": 100 * n / d,
                "met": n / d >= 0.9}
    data = {"period": {"start": "2026-10-01", "end": "2026-12-31"}, "area": None,
            "as_of": "2026-12-06", "indicators": [
                {"id": "dtc-attendance", "target": 90, "percent": 87.5, "numerator": 7,
                 "denominator": 8, "met": False, "margin": -1, "pending": 0, "counts": {},
                 "breakdown": [result("scra", 3, 4), result("housing-north-strathclyde", 4, 4)]}]}
    rows = render_status(data).splitlines()[2:6]
    assert len({line.rindex("%") for line in rows[1:]}) == 1, rows
    assert rows[0].index("result") + len("result") == rows[1].rindex("%") + 1
