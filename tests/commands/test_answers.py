"""What a command computes is a typed answer that knows no channel (bot/commands/answers.py):
data in reading order, a Period as a value, no markup; and Slack renders every kind of it.
On the Grampian records as of 2026-11-26."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import typing

import pytest

from bot.channels.slack.answers import Reply, slack_reply
from bot.commands import answers, handlers
from bot.commands.access import find_caller
from bot.commands.parser import Command, parse
from mappa_core.rules.periods import Period, quarter
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN

TODAY = dt.date(2026, 11, 26)
COORD, CHAIR1, STAFF = "U1COORD1", "U1CHAIR1", "U1STAFF1"
SLACK_MARKUP = (":white_check_mark:", ":red_circle:", "&lt;", "&gt;", "&amp;", "*overdue*")


@pytest.fixture
def ctx(sqlite_engine):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    return handlers.Context(sqlite_engine, TODAY)


def _markup(answer) -> list[str]:
    text = json.dumps(dataclasses.asdict(answer), default=str)
    return [m for m in SLACK_MARKUP if m in text]


def test_the_period_is_a_value_from_the_parser_to_the_answer(ctx):
    cmd = parse("status level2 2026-27-Q3")
    assert cmd.period == quarter(2026, 3)
    status = handlers.status_answer(ctx, find_caller(ctx.engine, COORD), cmd)
    assert isinstance(status, answers.Status) and isinstance(status.period, Period)
    assert status.period == cmd.period and status.as_of == TODAY
    assert [i.id for i in status.indicators] == ["l2-reviews"]
    assert all(isinstance(i, answers.Indicator) for i in status.indicators)
    assert status.text.startswith("MAPPA indicators for Grampian: ")


def test_a_due_list_is_its_items_in_order_with_its_paging(ctx):
    caller = find_caller(ctx.engine, COORD)
    whole = handlers.due_answer(ctx, caller, Command("due", days=30), per_page=1000)
    assert isinstance(whole, answers.DueList) and whole.paging.pages == 1
    assert whole.overdue + whole.upcoming == whole.paging.total == len(whole.items) > 2
    assert [i.overdue for i in whole.items] == sorted((i.overdue for i in whole.items), reverse=True)
    second = handlers.due_answer(ctx, caller, Command("due", days=30, page=2), per_page=2)
    assert second.paging == answers.Paging(2, -(-len(whole.items) // 2), len(whole.items), 2,
                                           "due", 30)
    assert second.items == whole.items[2:4] and second.paging.first == 3
    assert second.narrow == ("due 30 minutes",)  # a local list: narrowed by kind
    assert not _markup(whole)


def test_refusals_and_the_help_are_said_in_words(ctx):
    staff = find_caller(ctx.engine, STAFF)
    said = handlers.due_answer(ctx, staff, Command("due"))
    assert isinstance(said, answers.Said) and said.words.startswith("Due lists are for")
    assert handlers.answer(ctx, staff, parse("case GRA-0101")) == answers.Said(
        "You are not authorised to see case `GRA-0101`, or it does not exist. Case details go "
        "only to the co-ordinator, the SOG chair and the case's chair.")
    assert handlers.answer(ctx, staff, parse("due Nowhere")) == answers.Help(
        "No area is called 'Nowhere'. Areas: Grampian.", 14)


def test_a_case_summary_holds_dates_not_text(ctx):
    case = handlers.case_answer(ctx, find_caller(ctx.engine, COORD), parse("case GRA-0101"))
    assert isinstance(case, answers.CaseSummary) and case.ref == "GRA-0101"
    assert all(isinstance(d.deadline, dt.date) for d in case.open)
    assert all(isinstance(m.date, dt.date) for m in case.meetings)
    assert not _markup(case)


def test_every_kind_of_answer_is_a_frozen_dataclass_slack_renders():
    kinds = typing.get_args(answers.Answer)
    assert {k.__name__ for k in kinds} == {
        "Said", "Help", "Status", "Comparison", "DueList", "CaseSummary", "ScrList", "Escalated"}
    for kind in kinds:
        assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen, kind
        assert kind in slack_reply.registry, f"no Slack rendering for {kind.__name__}"
    said = slack_reply(answers.Said("Minutes issued for meeting `M<1>` recorded.",
                                    answers.Mark.DONE, ("a <b>",)))
    assert isinstance(said, Reply)
    assert said.text == ":white_check_mark: Minutes issued for meeting `M&lt;1&gt;` recorded.\n• a &lt;b&gt;"
