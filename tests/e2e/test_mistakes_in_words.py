"""A person's mistake is answered as one, from every door (issue 22 item 4): a period that
has not started, one too long, a malformed date in a period, an unknown area, and the other
arguments a command refuses. Each goes through the one check (bot/commands/checks.py) and
is answered in words, never "something went wrong", with no traceback in the log; the CLI
says the same words and exits 2. Slack over real signed HTTP, the Grampian records as of
2026-11-26 (2026-27-Q4 starts on 2027-01-01)."""

from __future__ import annotations

import datetime as dt
import logging
import time

import pytest
from slack_sdk.models.blocks import Block
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.commands import handlers
from bot.commands.access import find_caller
from bot.commands.answers import Help
from bot.commands.parser import parse
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import Bot

TODAY = dt.date(2026, 11, 26)
COORD, CHAIR1 = "U1COORD1", "U1CHAIR1"
NOT_STARTED = ("period 2026-27-Q4 starts after 2026-11-26, the date the answer is as of: "
               "nothing in it has happened yet")
TOO_LONG = ("period '2010-04-01..2026-04-01' is longer than 10 years; ask for at most 10 "
            "years at a time")
BAD_DATE = ("period '2026-02-30..2026-03-31': '2026-02-30' is not a real date (day is out "
            "of range for month)")
NO_AREA = "No area is called 'Nowhere'. Areas: Grampian."

# (what is typed after /mappa, the problem the answer names), for every command.
SLACK = [
    ("status 2026-27-Q4", NOT_STARTED),
    ("status level2 2026-27-Q4", NOT_STARTED),
    ("status 2010-04-01..2026-04-01", TOO_LONG),
    ("status 2026-02-30..2026-03-31", BAD_DATE),
    ("status 2026-28", "period '2026-28': a reporting year is written with consecutive "
                       "years, e.g. 2026-27"),
    ("status nowhere", "'nowhere' is neither a topic"),
    ("status compare 2026-27-Q4", NOT_STARTED),
    ("status compare 2010-04-01..2026-04-01", TOO_LONG),
    ("status compare 2026-02-30..2026-03-31", BAD_DATE),
    ("due 7 Nowhere", NO_AREA),
    ("due 400", "`due` takes a number of days from 0 to 365"),
    ("overdue Nowhere", NO_AREA),
    ("overdue minutes Nowhere", NO_AREA),
    ("case", "`case` takes one case reference"),
    ("case ../../etc", "`case` takes one case reference"),
    ("scr update 12", "`scr update ID TEXT` needs the update in words"),
    ("scr frobnicate", "`scr` lists open actions"),
    ("frobnicate", "unknown command 'frobnicate'"),
]

# The same mistakes at the CLI: (arguments, the words after `mappa: error: `).
AS_OF = ["--as-of", "2026-11-26"]
CLI = [
    (["status", "--period", "2026-27-Q4", *AS_OF], NOT_STARTED),
    (["status", "level2", "--period", "2026-27-Q4", *AS_OF], NOT_STARTED),
    (["exceptions", "--period", "2026-27-Q4", *AS_OF], NOT_STARTED),
    (["report", "compare", "--period", "2026-27-Q4", *AS_OF], NOT_STARTED),
    (["status", "--period", "2010-04-01..2026-04-01", *AS_OF], TOO_LONG),
    (["report", "compare", "--period", "2010-04-01..2026-04-01", *AS_OF], TOO_LONG),
    (["status", "--period", "2026-02-30..2026-03-31", *AS_OF], BAD_DATE),
    (["report", "quarterly", "--period", "2026-02-30..2026-03-31", *AS_OF], BAD_DATE),
    (["status", "--area", "Nowhere", *AS_OF], NO_AREA),
    (["due", "--area", "Nowhere", *AS_OF], NO_AREA),
    (["exceptions", "--area", "Nowhere", *AS_OF], NO_AREA),
]


def _problem(reply: dict) -> str:
    """The problem the help names above itself, as a person reads it in Slack."""
    blocks = reply["blocks"]
    for block in blocks:  # what Slack would take: every block parses as Block Kit
        assert Block.parse(block) is not None, block
    first = blocks[0]["text"]["text"]
    assert first.startswith(":grey_question: "), first
    assert "*mappa-bot* answers about MAPPA deadlines" in first
    return first.removeprefix(":grey_question: ").split("\n\n")[0]


def _audited(engine, at_least: int) -> list[dict]:
    audit = SQLModel.metadata.tables["audit_log"]
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(audit).order_by(audit.c.id)).mappings()]
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


@pytest.fixture
def bot(engine):
    assert import_directory(engine, GRAMPIAN).ok
    bot = Bot(engine, TODAY)
    yield bot
    bot.close()


@pytest.mark.http
def test_every_command_answers_a_mistake_in_words_with_no_traceback(bot, engine, caplog):
    caplog.set_level(logging.INFO)
    for typed, words in SLACK:
        reply = bot.command(COORD, typed)
        said = str(reply)
        assert "something went wrong" not in said and "error id" not in said, (typed, said)
        assert words in _problem(reply), (typed, _problem(reply))
    # A chair's due list names the same unknown area the same way.
    assert _problem(bot.command(CHAIR1, "due Nowhere")) == NO_AREA
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    # Audited as what they were: a mistake at the door is "invalid"; the area (known only
    # to the records) is answered from the worker, "ok"; none is an error.
    rows = _audited(engine, len(SLACK) + 1)[-(len(SLACK) + 1):]
    assert not [r for r in rows if r["outcome"].startswith("error")], rows
    outcomes = {r["detail"]: r["outcome"] for r in rows}
    assert outcomes["status 2026-27-Q4"] == outcomes["status compare 2026-27-Q4"] == "invalid"


@pytest.mark.parametrize("args,words", CLI, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_the_cli_says_the_same_words_and_exits_2(grampian_cli, capsys, args, words):
    from bot.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == ""
    assert err == f"mappa: error: {words}\n"


def test_a_malformed_date_at_the_cli_is_a_usage_error_in_the_same_words(grampian_cli, capsys):
    from bot.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["status", "--as-of", "2026-02-30"])
    assert exit_.value.code == 2
    assert "'2026-02-30' is not a real date (day is out of range for month)" in \
        capsys.readouterr().err


def test_a_period_that_has_not_started_reaching_the_worker_is_answered_with_the_help(sqlite_engine):
    """The door checks it (parse with today); a door that did not is still answered in
    words by the worker, not with an error: the same words."""
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    ctx = handlers.Context(sqlite_engine, TODAY)
    caller = find_caller(sqlite_engine, COORD)
    for typed in ("status 2026-27-Q4", "status compare 2026-27-Q4"):
        assert handlers.answer(ctx, caller, parse(typed)) == Help(NOT_STARTED, 14)
