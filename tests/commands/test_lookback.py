"""MAPPA_LOOKBACK_DAYS is one setting: it decides how far back paperwork is chased in the
digests, in `/mappa due` and in the live counts alike (they used to disagree: the setting
moved the digests, a constant the Slack answers)."""

import datetime as dt

from bot.commands import handlers
from bot.commands.access import find_caller
from bot.commands.parser import parse
from bot.channels.slack.runtime import MappaSlack
from bot.settings import Settings
from mappa_core.rules.due import open_items
from mappa_core.rules.indicators import operational_counts, restrict
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.channels.slack.test_commands_and_buttons import COORD, TODAY

PAPERWORK = {"minutes", "contribution", "disclosure"}


def _paperwork(c) -> set:
    items = open_items(c)
    return set(items.loc[items["kind"].isin(PAPERWORK), "item_key"])


def test_the_lookback_setting_reaches_the_slack_answers_and_the_counts(sqlite_engine):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    short = handlers.DeadlineCache(lookback_days=5).get(sqlite_engine, None, TODAY)
    long = handlers.DeadlineCache(lookback_days=400).get(sqlite_engine, None, TODAY)
    assert (short.lookback_days, long.lookback_days) == (5, 400)
    # Hand check on the worked example: paperwork more than 5 days past its deadline is
    # chased only under the long lookback.
    items = open_items(long)
    old = items[items["kind"].isin(PAPERWORK)
                & (items["deadline"] < dt.datetime.combine(TODAY - dt.timedelta(days=5), dt.time()))]
    assert len(old) > 0
    assert _paperwork(short) == _paperwork(long) - set(old["item_key"])
    # A per-area restriction keeps the lookback it was computed with.
    area = long.records.individuals["area"].iloc[0]
    assert restrict(short, area).lookback_days == 5
    # The two are the contributions due 2026-10-12 and 2026-10-26 (one RA, one DTC).
    assert sorted(old["kind"]) == ["contribution", "contribution"]
    for ind in ("ra-written", "dtc-written"):
        assert operational_counts(short, ind)["contributions_overdue"] == 0
        assert operational_counts(long, ind)["contributions_overdue"] == 1

    caller = find_caller(sqlite_engine, COORD)
    replies = [handlers.due_answer(handlers.Context(sqlite_engine, TODAY, handlers.DeadlineCache(
        lookback_days=n)), caller, parse("due")).text for n in (5, 400)]
    assert replies[0] != replies[1]


def test_the_bot_builds_its_cache_from_the_setting(sqlite_engine):
    bot = MappaSlack(Settings(lookback_days=33, work_processes=0, slack_bot_token="xoxb-test",
                              slack_signing_secret="s"), sqlite_engine)
    try:
        assert bot.cache.lookback_days == 33
    finally:
        bot.close()


def test_the_command_line_reads_the_same_setting(grampian_cli, capsys, monkeypatch):
    import json

    from tests.helpers import run_cli

    def contributions_overdue():
        code, out, _ = run_cli(capsys, "status", "contributions", "--json", "--as-of", "2026-11-26")
        assert code == 0
        return [i["counts"]["contributions_overdue"] for i in json.loads(out)["indicators"]]

    def due_contributions():
        code, out, _ = run_cli(capsys, "due", "--as-of", "2026-11-26", "--days", "0")
        assert code == 0
        return sum(" contribution " in line for line in out.splitlines())

    assert contributions_overdue() == [1, 1] and due_contributions() == 2
    monkeypatch.setenv("MAPPA_LOOKBACK_DAYS", "5")
    assert contributions_overdue() == [0, 0] and due_contributions() == 0
