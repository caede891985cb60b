"""One settings source (issue 11 item 3) and bad input: the environment and `.env` for every
command, one line and a non-zero exit for every bad setting, `mappa config`."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, defaults, env_names, load
from mappa_core.rules.planner import NudgeRules
from tests.conftest import GRAMPIAN
from tests.helpers import run_cli as _run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"


@pytest.fixture
def clean(monkeypatch, tmp_path):
    """A working directory with no .env and none of the settings in the environment."""
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _example() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", EXAMPLE.read_text(), flags=re.M)
    names = [n for n, _ in pairs]
    assert len(names) == len(set(names)), "a variable twice in .env.example"
    return dict(pairs)


def test_env_example_and_the_settings_object_list_the_same_names():
    assert set(_example()) == set(env_names())


def test_env_example_shows_every_default_with_a_comment():
    text = EXAMPLE.read_text().splitlines()
    for name, shown in _example().items():
        default = defaults()[name]
        if isinstance(default, bool):
            assert shown == ("yes" if default else "no"), name
        elif isinstance(default, float):
            assert float(shown) == default, name
        elif default is None:
            assert shown == "", name
        else:
            assert shown == str(default), name
        line = next(i for i, x in enumerate(text) if x.startswith(f"{name}="))
        assert any(text[j].startswith("# ") for j in range(max(0, line - 3), line)), name
    # Copied to .env unchanged, it is exactly the defaults.
    assert load(EXAMPLE, environ={}).settings == Settings()


def test_the_thresholds_are_every_field_of_nudge_rules():
    rules = Settings().nudge_rules()
    assert rules == NudgeRules()
    assert {f.name for f in dataclasses.fields(NudgeRules)} <= set(Settings.model_fields)


def test_the_environment_wins_over_env_file_and_config_says_where_each_came_from(clean, monkeypatch, capsys):
    (clean / ".env").write_text("MAPPA_REVIEW_NUDGE_WD=3\nSMTP_HOST=mail.example.org\n"
                                "MAPPA_LOOKBACK_DAYS=60\nSMTP_PASSWORD=MAILSECRET\n")
    monkeypatch.setenv("MAPPA_REVIEW_NUDGE_WD", "4")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-SECRET")
    monkeypatch.setenv("MAPPA_DATABASE_URL", "postgresql+psycopg://mappa:hunter2@db.example:5432/mappa")
    loaded = load()
    s = loaded.settings
    assert (s.review_nudge_wd, s.smtp_host, s.lookback_days, s.minutes_nudge_wd) == (
        4, "mail.example.org", 60, 7)
    assert s.nudge_rules().review_nudge_wd == 4 and s.nudge_rules().lookback_days == 60
    code, out, err = _run(capsys, "config")
    assert code == 0, err
    lines = {line.split("=")[0]: line for line in out.splitlines() if not line.startswith("#")}
    assert set(lines) == set(env_names())
    assert re.fullmatch(r"MAPPA_REVIEW_NUDGE_WD=4 +# environment", lines["MAPPA_REVIEW_NUDGE_WD"])
    assert re.fullmatch(r"SMTP_HOST=mail.example.org +# \.env", lines["SMTP_HOST"])
    assert re.fullmatch(r"MAPPA_MINUTES_NUDGE_WD=7 +# default", lines["MAPPA_MINUTES_NUDGE_WD"])
    assert re.fullmatch(r"SLACK_BOT_TOKEN=\*\*\* +# environment", lines["SLACK_BOT_TOKEN"])
    assert re.fullmatch(r"SMTP_PASSWORD=\*\*\* +# \.env", lines["SMTP_PASSWORD"])
    assert "mappa:***@db.example:5432/mappa" in lines["MAPPA_DATABASE_URL"]
    for secret in ("xoxb-SECRET", "MAILSECRET", "hunter2"):
        assert secret not in out


def test_every_command_reads_the_database_url_from_env_file(clean, capsys):
    """The issue's import that silently wrote ./mappa.db while .env named another database."""
    (clean / ".env").write_text(f"MAPPA_DATABASE_URL=sqlite:///{clean / 'real.db'}\n")
    assert _run(capsys, "import", str(GRAMPIAN))[0] == 0
    code, out, _ = _run(capsys, "status", "--as-of", "2026-11-26", "--json")
    assert code == 0 and '"area": null' in out
    assert (clean / "real.db").exists() and not (clean / "mappa.db").exists()


def test_thresholds_in_env_file_reach_the_jobs(clean, capsys):
    (clean / ".env").write_text("MAPPA_WORK_START=07:45\nMAPPA_WORK_END=16:00\n")
    code, out, _ = _run(capsys, "jobs", "list", "--as-of", "2026-11-26T12:00")
    assert code == 0
    assert re.search(r"^digest +Fri 2026-11-27 07:45$", out, flags=re.M), out


BAD = [
    ("MAPPA_REVIEW_NUDGE_WD", "abc", "MAPPA_REVIEW_NUDGE_WD=abc: expected a whole number of working days"),
    ("MAPPA_REVIEW_NUDGE_WD", "-2", "MAPPA_REVIEW_NUDGE_WD=-2: expected a whole number of working days"),
    ("MAPPA_PRE_RELEASE_NUDGE_DAYS", "12 weeks", "MAPPA_PRE_RELEASE_NUDGE_DAYS=12 weeks: expected a whole number of days"),
    ("MAPPA_ESCALATION_REPEAT_WD", "0", "MAPPA_ESCALATION_REPEAT_WD=0: expected a whole number of working days"),
    ("MAPPA_WORK_START", "8.30", "MAPPA_WORK_START=8.30: not a time of day; expected a time of day as HH:MM"),
    ("MAPPA_WORK_START", "18:00", "MAPPA_WORK_END=17:30: expected a time after MAPPA_WORK_START=18:00"),
    ("MAPPA_TIMEZONE", "Scotland/Aberdeen", "MAPPA_TIMEZONE=Scotland/Aberdeen: not a known time zone; expected an IANA time zone"),
    ("SMTP_PORT", "smtp", "SMTP_PORT=smtp: expected a port number from 1 to 65535"),
    ("SMTP_PORT", "70000", "SMTP_PORT=70000: expected a port number from 1 to 65535"),
    ("SMTP_STARTTLS", "maybe", "SMTP_STARTTLS=maybe: expected yes or no"),
    ("SMTP_TLS", "sometimes", "SMTP_TLS=sometimes: expected yes or no"),
    ("SMTP_TIMEOUT", "soon", "SMTP_TIMEOUT=soon: expected a number of seconds above 0"),
    ("MAIL_FROM", "mappa bot", "MAIL_FROM=mappa bot: not an email address; expected an email address"),
    ("SLACK_API_URL", "slack.com/api", "SLACK_API_URL=slack.com/api: not an http(s) URL; expected an http(s) URL"),
    ("SLACK_BOT_TOKEN", "xoxp-USERTOKEN", "SLACK_BOT_TOKEN=***: does not start with xoxb-"),
    ("SLACK_APP_TOKEN", "xoxb-WRONG", "SLACK_APP_TOKEN=***: does not start with xapp-"),
    ("MAPPA_DATABASE_URL", "mysql://u:hunter2@db/mappa", "MAPPA_DATABASE_URL=mysql://u:***@db/mappa: unsupported database 'mysql'"),
    ("MAPPA_DATABASE_URL", "postgresql+psycopg://u:hunter2@db:fivefour/mappa",
     "MAPPA_DATABASE_URL=postgresql+psycopg://u:***@db:fivefour/mappa: cannot be parsed (the port is not a number)"),
    ("MAPPA_DATABASE_URL", "mappa.db", "MAPPA_DATABASE_URL=mappa.db: cannot be parsed"),
]


@pytest.mark.parametrize(("name", "value", "line"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
@pytest.mark.parametrize("where", ["environment", ".env"])
def test_a_bad_setting_stops_every_command_with_one_line(clean, monkeypatch, capsys, name, value, line, where):
    if where == "environment":
        monkeypatch.setenv(name, value)
    else:
        (clean / ".env").write_text(f'{name}="{value}"\n')
    for args in (["status"], ["import", str(GRAMPIAN)], ["config"], ["demo-data", "d"]):
        code, out, err = _run(capsys, *args)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith(f"mappa: {line}"), err
        if "MAPPA_WORK_END" not in line:
            assert err.rstrip().endswith(f"(set in {where})")
        for secret in ("hunter2", "USERTOKEN", "xoxb-WRONG"):
            assert secret not in err
    assert list(clean.iterdir()) == ([] if where == "environment" else [clean / ".env"])


@pytest.mark.process
def test_a_bad_setting_as_a_subprocess_is_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "MAPPA_REVIEW_NUDGE_WD": "abc", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "status"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("mappa: MAPPA_REVIEW_NUDGE_WD=abc: expected a whole number of "
                             "working days (set in environment)\n")
    assert list(tmp_path.iterdir()) == []  # no mappa.db: nothing written


def test_a_missing_env_file_is_fine_but_a_missing_named_one_is_an_error(clean, capsys):
    assert load().env_file is None
    code, out, _ = _run(capsys, "config")
    assert code == 0 and "no settings file (.env) found" in out
    code, _, err = _run(capsys, "--env-file", "prod.env", "status")
    assert code == 2 and err == "mappa: prod.env: the settings file does not exist\n"
    code, _, err = _run(capsys, "serve", "--env-file", "prod.env")
    assert code == 2 and err == "mappa: prod.env: the settings file does not exist\n"
    assert list(clean.iterdir()) == []


def test_an_unreadable_env_file_is_one_line(clean, capsys):
    (clean / ".env").mkdir()  # a directory: open() fails even for root
    code, out, err = _run(capsys, "status")
    assert code == 2 and out == ""
    assert err.startswith("mappa: .env: cannot read the settings file: ") and err.count("\n") == 1
    (clean / ".env").rmdir()
    (clean / ".env").write_bytes(b"SMTP_HOST=mail\xff\n")
    code, _, err = _run(capsys, "status")
    assert code == 2 and err == "mappa: .env: cannot read the settings file: it is not UTF-8 text\n"
    (clean / ".env").write_text("SMTP_HOST=mail\nthis is not a setting\n")
    code, _, err = _run(capsys, "status")
    assert code == 2 and err == "mappa: .env:2: cannot parse this line (expected NAME=value)\n"
    assert sorted(p.name for p in clean.iterdir()) == [".env"]


@pytest.mark.process
def test_unreadable_env_file_as_a_subprocess(tmp_path):
    (tmp_path / ".env").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in env_names()}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "due"], cwd=tmp_path,
                            env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("mappa: .env: cannot read the settings file:")
    assert result.stderr.count("\n") == 1


def test_direct_settings_never_read_the_environment(clean, monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "from-the-environment")
    (clean / ".env").write_text("SMTP_PORT=2525\n")
    s = Settings(smtp_timeout=5)
    assert (s.smtp_host, s.smtp_port, s.smtp_timeout) == ("", 587, 5.0)


def test_settings_error_is_a_value_error():
    with pytest.raises(ValueError):
        load(environ={"SMTP_PORT": "x"})
    assert issubclass(SettingsError, ValueError)


def test_postgresql_url_without_a_driver_uses_psycopg():
    s = load(environ={"MAPPA_DATABASE_URL": "postgresql://u:p@h:5432/db"}).settings
    assert s.database_url == "postgresql+psycopg://u:p@h:5432/db"


# ------------------------------------------------------------------ databases: bad input


def test_a_database_that_cannot_be_reached_is_one_line(clean, monkeypatch, capsys):
    monkeypatch.setenv("MAPPA_DATABASE_URL", "postgresql+psycopg://u:s3cret@127.0.0.1:1/x")
    code, out, err = _run(capsys, "due")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("mappa: cannot use the database postgresql+psycopg://u:***@127.0.0.1:1/x")
    assert "s3cret" not in err


def test_a_file_that_is_not_a_database_is_one_line_and_untouched(clean, monkeypatch, capsys):
    notes = clean / "notes.db"
    notes.write_bytes(b"these are someone's notes, not a database\n" * 20)
    before = notes.read_bytes()
    monkeypatch.setenv("MAPPA_DATABASE_URL", f"sqlite:///{notes}")
    for args in (["status"], ["import", str(GRAMPIAN)], ["db", "upgrade"]):
        code, out, err = _run(capsys, *args)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"mappa: cannot use the database sqlite:///{notes}")
    assert notes.read_bytes() == before


def test_a_database_of_another_program_is_refused_and_untouched(clean, monkeypatch, capsys):
    import sqlite3

    other = clean / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.close()
    monkeypatch.setenv("MAPPA_DATABASE_URL", f"sqlite:///{other}")
    for args in (["status"], ["import", str(GRAMPIAN)], ["db", "upgrade"], ["jobs", "run", "digest"]):
        code, out, err = _run(capsys, *args)
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert "has tables but no mappa-bot schema version" in err
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("invoices",)]
    conn.close()


def test_a_database_with_a_foreign_alembic_revision_is_refused_by_upgrade(clean, monkeypatch, capsys):
    import sqlite3

    other = clean / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('9f1c2e')")
    conn.close()
    monkeypatch.setenv("MAPPA_DATABASE_URL", f"sqlite:///{other}")
    code, out, err = _run(capsys, "db", "upgrade")
    assert code == 2 and err.count("\n") == 1 and "not a mappa-bot database" in err
    # Every other command says the same at once (it used to send the reader to `db upgrade`,
    # which then refused).
    code, out, err = _run(capsys, "status")
    assert code == 2 and "not a mappa-bot database" in err and "db upgrade`" not in err


def test_a_misspelt_setting_in_env_file_is_named_with_the_one_it_probably_meant(clean, capsys):
    # Ignored without a word, MAPPA_DATABSE_URL sent every command to ./mappa.db.
    (clean / ".env").write_text("MAPPA_DATABSE_URL=sqlite:///elsewhere.db\n"
                                "MAPPA_TEST_POSTGRES_URL=postgresql+psycopg://x@y/z\n"
                                "OTHER_TOOL_SETTING=1\n")
    code, out, err = _run(capsys, "config")
    assert code == 0
    assert err.splitlines() == [
        "mappa: warning: .env: MAPPA_DATABSE_URL is not a setting, and is ignored "
        "(did you mean MAPPA_DATABASE_URL?)"]
    assert "MAPPA_DATABASE_URL=sqlite:///mappa.db  # default" in out


def test_every_setting_is_in_the_readme_and_the_operator_guide():
    """MAPPA_TEAMS_WEBHOOKS was in .env.example only. (The guide gives the thresholds as one
    row, MAPPA_REVIEW_NUDGE_WD ... MAPPA_LOOKBACK_DAYS.)"""
    from pathlib import Path

    from bot.settings import env_names

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    readme = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    guide = (root / "docs" / "operator-guide.md").read_text(encoding="utf-8")
    guide = guide.split("\n## Configure\n", 1)[1].split("\n## ", 1)[0]
    assert [n for n in env_names() if f"`{n}`" not in readme] == []
    assert [n for n in env_names() if f"`{n}`" not in guide
            and not n.endswith(("_WD", "_DAYS"))] == []
