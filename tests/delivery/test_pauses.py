"""A channel's trouble is charged to the message in flight only (issue 22.1): a Slack 429
pauses Slack for Retry-After and the rest of the batch waits uncharged; three transport
failures in a row pause a channel the same way; the Slack app's interactive client retries
a 429 after Retry-After (slack_sdk's AsyncRateLimitErrorRetryHandler). Against the local
stand-in for Slack's Web API and, for the app, signed HTTP to the served bot."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack import SlackTransport, interactive_client
from bot.delivery.worker import deliver_pending
from bot.settings import Settings
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import outbox
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.delivery.test_delivery import NOW, email_notes
from tests.slack_harness import Bot, SlackStandIn, event_body, post, sign

pytestmark = pytest.mark.http

RATE_LIMITED = (429, {"Retry-After": "30"}, {"ok": False, "error": "ratelimited"})


def _plan_slack(engine, n: int) -> None:
    """n digests to n different Slack users: n messages."""
    notes = email_notes(n).assign(rule="digest", channel="slack")
    notes["recipient_id"] = [f"p{i}" for i in range(n)]
    notes["address"] = [f"U{i:07d}" for i in range(n)]
    notes["group_key"] = [f"digest|p{i}|2026-11-26" for i in range(n)]
    outbox.plan(engine, notes, NOW, NudgeRules())


def _deliver(engine, stand_in: SlackStandIn, at: dt.datetime, client=None):
    settings = Settings(slack_bot_token="xoxb-test", slack_api_url=stand_in.api_url())
    transport = SlackTransport(client or AsyncWebClient(token="xoxb-test",
                                                         base_url=stand_in.api_url()))
    return asyncio.run(deliver_pending(engine, settings, transport, at))


def _attempts(engine) -> list[int]:
    return sorted(r["attempts"] for r in outbox.list_rows(engine, limit=10_000))


@pytest.mark.parametrize("interactive", [False, True], ids=["delivery client", "app's client"])
def test_a_slack_429_pauses_slack_and_leaves_the_rest_uncharged(sqlite_engine, caplog,
                                                                interactive):
    """150 messages (two claims of the worker): the second gets a 429 with Retry-After 30.
    Slack is asked nothing more in this run; only that message is charged; the other 148
    wait 30 s with no attempt counted, then all go. Before: every message after the 429
    was posted into the rate limit and charged an attempt of its own. The same holds when
    delivery is handed the app's client, whose retry handler would otherwise sleep in it."""
    _plan_slack(sqlite_engine, 150)
    stand_in = SlackStandIn()
    try:
        stand_in.script["/api/chat.postMessage"] = [
            (200, {}, {"ok": True, "channel": "D0", "ts": "1.0"})] + [RATE_LIMITED] * 200
        client = None
        if interactive:
            client = interactive_client(Settings(slack_bot_token="xoxb-test",
                                                 slack_api_url=stand_in.api_url()))
        report = _deliver(sqlite_engine, stand_in, NOW, client)
        assert len(stand_in.posts("/api/chat.postMessage")) == 2  # then it stopped asking
        assert (report.rows_sent, report.retrying, report.failed, report.not_tried) == (
            1, 1, 0, 148)
        assert _attempts(sqlite_engine) == [0] * 149 + [1]
        paused = [r.getMessage() for r in caplog.records if "delivery paused" in r.getMessage()]
        assert len(paused) == 1 and "channel=slack" in paused[0] and "30 s" in paused[0]
        assert report.waiting_lines() == [
            "148 Slack message(s) (148 item(s)) were not tried in this run and wait for the "
            "next, with no attempt counted: the channel is paused for 30 s after: Slack rate "
            "limit (429)"]
        # Nothing is due before Retry-After has passed; then everything goes.
        stand_in.script.clear()
        assert _deliver(sqlite_engine, stand_in, NOW + dt.timedelta(seconds=29)).rows_sent == 0
        later = _deliver(sqlite_engine, stand_in, NOW + dt.timedelta(seconds=31))
        assert later.rows_sent == 149 and outbox.counts(sqlite_engine) == {"sent": 150}
    finally:
        stand_in.close()


def test_three_server_errors_in_a_row_pause_the_channel(sqlite_engine):
    """Slack answering 500 to everything: three messages are charged, the other seven wait
    uncharged for the next run (before: all ten charged, each run, until all were given up
    after about two hours)."""
    _plan_slack(sqlite_engine, 10)
    stand_in = SlackStandIn()
    try:
        stand_in.fail_status = 500
        report = _deliver(sqlite_engine, stand_in, NOW)
        assert len(stand_in.posts("/api/chat.postMessage")) == 3
        assert (report.retrying, report.not_tried, report.failed) == (3, 7, 0)
        assert _attempts(sqlite_engine) == [0] * 7 + [1] * 3
        stand_in.fail_status = None
        later = _deliver(sqlite_engine, stand_in, NOW + dt.timedelta(minutes=2))
        assert later.rows_sent == 10 and outbox.counts(sqlite_engine) == {"sent": 10}
    finally:
        stand_in.close()


def test_the_apps_interactive_client_retries_a_429_after_retry_after(engine):
    """An App Home opened while Slack rate-limits views.publish: the app waits Retry-After
    and publishes the view (before: the 429 was the end of it, the Home stayed blank)."""
    assert import_directory(engine, GRAMPIAN).ok
    bot = Bot(engine, dt.date(2026, 11, 26))
    try:
        bot.stand_in.script["/api/views.publish"] = [
            (429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"})]
        body = event_body("U1CHAIR1")
        assert post(bot.server.url + "/slack/events", body, sign(body),
                    "application/json")[0] == 200
        calls = bot.stand_in.wait_for("/api/views.publish", 2, timeout=30)
        # The same view again, after Retry-After: not "Sorry, this tab could not be built"
        # with an error id, as before.
        assert calls[-1]["reply"] == {"ok": True}
        assert calls[-1]["body"]["view"] == calls[0]["body"]["view"]
        assert calls[-1]["at"] - calls[0]["at"] >= 1.0
    finally:
        bot.close()
