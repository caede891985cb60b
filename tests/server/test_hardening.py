"""Load, secrets and the authorisation table: proof for docs/RELIABILITY.md."""

from __future__ import annotations

import json
import logging
import re

import pytest

from bench.load import run_load
from bot.settings import Settings, load_settings
from tests.channels.slack.test_commands_and_buttons import slack  # noqa: F401  (the fixture)
from tests.channels.slack.test_commands_and_buttons import CHAIR1, CHAIR2, COORD, SOG, STAFF, text_of

UNKNOWN = "U999NOBODY"


@pytest.mark.http
@pytest.mark.process
def test_fifty_concurrent_commands_are_all_acknowledged_within_three_seconds(sqlite_url, tmp_path):
    """`mappa serve` in its own process, 50 clients sending signed commands for 10 seconds."""
    import os
    import subprocess
    import sys

    from mappa_core.storage import db
    from mappa_core.storage.importer import import_directory
    from tests.conftest import GRAMPIAN
    from tests.slack_harness import SIGNING_SECRET, SlackStandIn, free_port, stop, wait_until_up

    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    assert import_directory(engine, GRAMPIAN).ok
    stand_in, port = SlackStandIn(), free_port()
    (tmp_path / "none.env").write_text("")  # a named settings file must exist (issue 11)
    env = {**os.environ, "MAPPA_DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": "xoxb-load",
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": stand_in.api_url(),
           "SMTP_HOST": ""}
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                               "--env-file", str(tmp_path / "none.env")],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_up(port, server, timeout=30)
        result = run_load(f"http://127.0.0.1:{port}", stand_in,
                          [STAFF, CHAIR1, CHAIR2, COORD, SOG], clients=50, seconds=10)
    finally:
        stop(server)
        stand_in.close()
    assert result["error_count"] == 0, result["errors"]
    assert result["acknowledged"] >= 50
    assert result["within_3s"] == result["acknowledged"], {k: v for k, v in result.items() if k != "errors"}
    assert result["answered"] == result["acknowledged"]


# Who may see what: case-level detail (a ref) only for the co-ordinator, the SOG chair and
# the case's own chair (g-chair-2 chairs GRA-0102); aggregates for every known person.
TABLE = [
    # command,            unknown, staff, other chair, case chair, co-ordinator, SOG chair
    ("status",             "deny", "agg", "agg", "agg", "agg", "agg"),
    ("status compare",     "deny", "agg", "agg", "agg", "agg", "agg"),
    ("due",                "deny", "none", "own", "own", "case", "case"),
    ("overdue",            "deny", "none", "own", "own", "case", "case"),
    ("case GRA-0102",      "deny", "none", "none", "case", "case", "case"),
    ("scr",                "deny", "agg", "agg", "agg", "agg", "agg"),
    ("help",               "deny", "agg", "agg", "agg", "agg", "agg"),
]
ROLES = [UNKNOWN, STAFF, CHAIR1, CHAIR2, COORD, SOG]


@pytest.mark.http
@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_authorisation_table(slack, row):  # noqa: F811
    command, *expected = row
    for user, want in zip(ROLES, expected):
        reply = slack.command(user, command)
        body = text_of(reply)
        assert reply["response_type"] == "ephemeral", (command, user)
        if want == "deny":
            assert "not authorised" in body, (command, user)
            assert "GRA-" not in body
        elif want in ("agg", "none"):
            # Only a reference the person typed may come back (in the refusal), no detail.
            refs = set(re.findall(r"GRA-\d{4}", body)) - set(re.findall(r"GRA-\d{4}", command))
            assert not refs and "Category" not in body, (command, user, body[:300])
        elif want == "own":
            # g-chair-1 chairs 0101, 0103, 0104, 0107, 0109; g-chair-2 the others.
            mine = {CHAIR1: {"GRA-0101", "GRA-0103", "GRA-0104", "GRA-0107", "GRA-0109"},
                    CHAIR2: {"GRA-0102", "GRA-0105", "GRA-0106", "GRA-0110"}}[user]
            shown = {w.strip("`*():,") for w in body.replace("\\n", " ").split() if "GRA-" in w}
            assert shown and {s[s.index("GRA-"):s.index("GRA-") + 8] for s in shown} <= mine, (command, user)
        elif want == "case":
            assert "GRA-" in body, (command, user)
    # Nothing was ever posted to a channel: chat.postMessage went only to people (U...).
    for call in slack.stand_in.posts("/api/chat.postMessage"):
        assert call["body"]["channel"].startswith("U")


@pytest.mark.http
def test_secrets_never_reach_logs_answers_or_reprs(slack, caplog, monkeypatch, tmp_path):  # noqa: F811
    from sqlalchemy import text

    secrets = ["xoxb-test", "test-signing-secret-0123456789"]
    with caplog.at_level(logging.DEBUG):
        with slack.engine.begin() as conn:
            conn.execute(text("DROP TABLE scr_update"))  # make a handler fail and log
        slack.command(COORD, "scr done 1")
        slack.command(STAFF, "status")
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    answers = json.dumps([c["body"] for c in slack.stand_in.calls])
    for secret in secrets:
        assert secret not in logged
        assert secret not in answers.replace('"token": "xoxb-test"', "")
    s = Settings(database_url="postgresql+psycopg://u:hunter2@h/db", slack_bot_token="xoxb-SECRET",
                 slack_signing_secret="SIGNSECRET", smtp_password="MAILSECRET")
    assert all(x not in repr(s) for x in ("hunter2", "xoxb-SECRET", "SIGNSECRET", "MAILSECRET"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMTP_PORT", "not-a-port")
    monkeypatch.setenv("SMTP_PASSWORD", "MAILSECRET")
    with pytest.raises(ValueError) as err:
        load_settings("cli")
    assert "MAILSECRET" not in str(err.value)


def test_no_table_has_a_column_for_a_mappa_individuals_name():
    from sqlmodel import SQLModel

    for table in SQLModel.metadata.tables.values():
        for column in table.c:
            if table.name in ("person", "agency", "local_holiday") and column.name == "name":
                continue  # staff, agencies and holidays: not MAPPA individuals
            assert "name" not in column.name.lower(), f"{table.name}.{column.name}"
