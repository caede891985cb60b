"""Words, not keys (issue 23.7): replies name an item as the digest does, working days in
words, the chair by name, `status compare` by indicator name with its target and whether it
is met, and `/mappa status` says why an indicator is below target. On the Grampian records
as of 2026-11-26, through the typed answers and their Slack rendering."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from bot.channels.slack.answers import slack_reply
from bot.channels.slack.limits import problems
from bot.commands import actions, handlers
from bot.commands.access import find_caller
from bot.commands.parser import parse
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN

TODAY = dt.date(2026, 11, 26)
COORD, CHAIR1, SOG = "U1COORD1", "U1CHAIR1", "U1SOG001"


@pytest.fixture
def ctx(sqlite_engine):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    return handlers.Context(sqlite_engine, TODAY)


def _said(answer) -> str:
    reply = slack_reply(answer)
    assert problems(reply.blocks) == []
    return reply.text


def test_replies_name_the_item_as_the_digest_does(ctx):
    chair = find_caller(ctx.engine, CHAIR1)
    # Before: "Snoozed disclosure decision, meeting G18 until ..." and "Reason ... recorded
    # for review, case GRA-0103".
    said = actions.snooze(ctx, chair, "review:GRA-0103:L2:2026-11-12", "snooze_1wd")
    assert said.words.startswith("Snoozed Level 2 review for `GRA-0103` until 2026-11-27.")
    said = actions.record_reason(ctx, chair, "contribution:G2:em-provider", "information_late", "")
    assert said.words == ('Reason "Information late" recorded for Written contribution from '
                          'Electronic Monitoring Scotland for `GRA-0101` (meeting G2).')
    item = actions.find_item(ctx, "minutes:G8")
    assert item.label == "Minutes and RMP for `GRA-0103` (meeting G8)"


def test_an_acknowledgement_names_the_item_and_its_stage(ctx):
    from tests.channels.slack.test_commands_and_buttons import escalate

    escalate(ctx.engine)  # the day's escalations, as planned
    sog = find_caller(ctx.engine, SOG)
    said = actions.acknowledge(ctx, sog, "review:GRA-0103:L2:2026-11-12", "breach")
    # Before: "Acknowledged: review:GRA-0103:L2:2026-11-12 (breach). ..."
    assert said.words == ("Acknowledged: Level 2 review for `GRA-0103` (deadline breached). "
                          "It will not be repeated at this stage.")
    assert "review:" not in _said(said)


def test_working_days_are_counted_in_words(ctx):
    rows = [{"kind": "review", "level": 2, "ref": "A", "meeting_id": None, "agency": None,
             "agency_name": None, "detail": None, "deadline": pd.Timestamp(d),
             "overdue": overdue, "working_days_left": left}
            for d, overdue, left in (("2026-11-25", True, -1), ("2026-11-20", True, -4),
                                     ("2026-11-22", True, 0), ("2026-11-26", False, 0),
                                     ("2026-11-27", False, 1), ("2026-12-01", False, 3))]
    # Before: "1 working day(s) ago", "0 working day(s) ago", "today", "1 working day(s) left".
    assert [i.when for i in handlers.due_items_of(pd.DataFrame(rows), TODAY)] == [
        "1 working day overdue", "4 working days overdue", "overdue since Sunday", "due today",
        "1 working day left", "3 working days left"]


def test_the_case_names_its_chair(ctx):
    case = handlers.case_answer(ctx, find_caller(ctx.engine, COORD), parse("case GRA-0101"))
    assert (case.chair_id, case.chair_name) == ("g-chair-1", "Ailsa Chair")
    blocks = str(slack_reply(case).blocks)
    assert "Chair: Ailsa Chair" in blocks and "g-chair-1" not in blocks


def test_status_compare_lists_indicators_by_name_with_targets_and_met(ctx):
    answer = handlers.compare_answer(ctx, find_caller(ctx.engine, COORD),
                                     parse("status compare 2026-27-Q3"))
    (grampian,) = answer.areas
    assert dict(grampian.met)["l3-reviews"] is False
    text = str(slack_reply(answer).blocks)
    assert ":x: Level 3 reviews: 66.7% against 95%" in text
    assert "l3-reviews" not in text and "dtc-attendance" not in text


def test_status_says_why_an_indicator_is_below_target(ctx):
    status = handlers.status_answer(ctx, find_caller(ctx.engine, COORD), parse("status"))
    l3 = next(i for i in status.indicators if i.id == "l3-reviews")
    assert l3.met is False and l3.why and l3.why.startswith("Chair")
    met = [i for i in status.indicators if i.met is not False]
    assert met and all(i.why is None for i in met)
    text = str(slack_reply(status).blocks)
    assert "_why:_ " + l3.why.replace("&", "&amp;") in text
    # The breakdown by agency by name, not id.
    dtc = next(i for i in status.indicators if i.id == "dtc-attendance")
    assert all("-" not in b.agency for b in dtc.breakdown)
