"""Every kind of Slack listener ends the same way when its work fails (the one wrapper,
bot/channels/slack/guard.py): the person is given an error id, the log holds the
traceback under it, and the audit row says `error:<id>`; a refusal the listener expects
is told and audited `refused`. Over real signed HTTP, the Grampian records in a real
database, as of 2026-11-26."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import Bot

TODAY = dt.date(2026, 11, 26)
CHAIR1, CHAIR2, COORD = "U1CHAIR1", "U1CHAIR2", "U1COORD1"
REVIEW = "review:GRA-0103:L2:2026-11-12"  # chaired by g-chair-1

pytestmark = pytest.mark.http


@pytest.fixture
def bot(engine):
    assert import_directory(engine, GRAMPIAN).ok
    bot = Bot(engine, TODAY)
    bot.engine = engine
    yield bot
    bot.close()


def _last_audit(engine, action: str) -> dict:
    """The latest audit row of `action`, once written (just after the answer)."""
    audit = SQLModel.metadata.tables["audit_log"]
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            row = conn.execute(select(audit).where(audit.c.action == action)
                               .order_by(audit.c.id.desc())).mappings().first()
        if row is not None or time.monotonic() > deadline:
            assert row is not None, f"no audit row for {action}"
            return dict(row)
        time.sleep(0.05)


def _error_id(said: str) -> str:
    assert "Sorry" in said and "error id `" in said, said
    return said.split("error id `")[1].split("`")[0]


def _logged(caplog, error_id: str) -> bool:
    return any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


def _break(engine, table: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {table}"))


def test_a_button_whose_work_fails_gives_an_error_id_the_log_and_audit_hold(bot, caplog):
    _break(bot.engine, "snooze")  # the item is found and may be snoozed; the write fails
    with caplog.at_level(logging.ERROR, logger="mappa.slack"):
        reply = bot.act(CHAIR1, "snooze_1wd", REVIEW)
    error_id = _error_id(reply["text"])
    assert reply["response_type"] == "ephemeral"
    assert _logged(caplog, error_id)
    row = _last_audit(bot.engine, "action:snooze_1wd")
    assert (row["outcome"], row["detail"], row["person_id"]) == (f"error:{error_id}", REVIEW,
                                                                   "g-chair-1")


def test_a_page_button_whose_computation_fails_gives_an_error_id(bot, caplog):
    _break(bot.engine, "invitation")
    value = json.dumps({"c": "due", "d": 14, "p": 2})
    with caplog.at_level(logging.ERROR, logger="mappa.slack"):
        reply = bot.act(COORD, "page_due_next", value)
    error_id = _error_id(reply["text"])
    assert _logged(caplog, error_id)
    assert _last_audit(bot.engine, "action:page_due")["outcome"] == f"error:{error_id}"


def test_an_app_home_that_cannot_be_built_shows_an_error_id(bot, caplog):
    _break(bot.engine, "invitation")
    with caplog.at_level(logging.ERROR, logger="mappa.home"):
        view = bot.home(COORD)["view"]
    error_id = _error_id(json.dumps(view))
    assert _logged(caplog, error_id)
    assert _last_audit(bot.engine, "home")["outcome"] == f"error:{error_id}"


def test_an_expected_refusal_is_told_and_audited_refused(bot):
    reply = bot.act(CHAIR2, "minutes_issued", "minutes:NO-SUCH")
    assert "no longer matches a record" in reply["text"]
    row = _last_audit(bot.engine, "action:minutes_issued")
    assert (row["outcome"], row["detail"]) == ("refused", "minutes:NO-SUCH")
