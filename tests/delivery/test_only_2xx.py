"""Only a 2xx from the endpoint that received the message counts as sent (issue 22.2), for
every channel in the registry (bot/channels TRANSPORTS) that speaks HTTP: Slack's Web API
and the Teams webhooks, each pointed at a local stand-in that answers with a redirect, an
error or a 2xx. A redirect is never followed as a GET without the body (a 302 followed so
made a Teams card of 34 items "sent" that never reached the channel); only 307 and 308 may
be followed, with the same POST and body, and then only the new endpoint's 2xx counts.

A new channel added to TRANSPORTS fails test_every_registered_channel_is_covered until it
is given a stand-in here (or named as one that does not speak HTTP)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels import TRANSPORTS, area_channels
from bot.channels.console import ConsoleTransport
from bot.channels.slack import SlackTransport
from bot.channels.teams import TeamsTransport
from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import run_planning_job
from bot.settings import Settings
from mappa_core.rules.planner import NudgeRules
from mappa_core.rules.vocabulary import Channel
from mappa_core.storage import outbox
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import free_port

pytestmark = pytest.mark.http

MONDAY = dt.datetime(2027, 1, 11, 9, 0, tzinfo=ZoneInfo("Europe/London"))  # quarterly reminders due
RULES = NudgeRules()


class Endpoint:
    """A local HTTP endpoint: POSTs to /first/... are answered with `status` (a redirect's
    Location is the same path under /second/); /second/... answers 200 with Slack's "ok"
    (and a channel and ts), which a Teams webhook ignores. Every request is kept: method,
    path and body."""

    def __init__(self):
        self.status = 200
        self.requests: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                endpoint.requests.append({"method": self.command, "path": self.path,
                                          "body": self.rfile.read(length)})
                first = self.path.startswith("/first/")
                status = endpoint.status if first else 200
                out = json.dumps({"ok": True, "channel": "D1", "ts": "1.0"}).encode()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/second/" + self.path.removeprefix("/first/"))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_GET = _answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _slack(endpoint: Endpoint):
    return SlackTransport(AsyncWebClient(token="xoxb-test", base_url=endpoint.url + "/first/"))


def _teams(endpoint: Endpoint):
    return TeamsTransport({"Grampian": endpoint.url + "/first/hook"})


# Channel -> a transport pointed at the endpoint; or why the channel has no HTTP to test.
HTTP_CHANNELS = {Channel.SLACK: _slack, Channel.TEAMS: _teams}
NOT_HTTP = {Channel.EMAIL: "SMTP (tests/channels/email/test_smtp_drops.py)",
            Channel.CONSOLE: "prints to the terminal"}


def test_every_registered_channel_is_covered():
    assert set(TRANSPORTS) == set(HTTP_CHANNELS) | set(NOT_HTTP)


def _plan(engine) -> dict[str, list[str]]:
    """The quarterly reminder planned on the Grampian records, with a copy for Grampian's
    Teams channel: channel -> its group keys."""
    assert import_directory(engine, GRAMPIAN).ok
    teams = Settings(teams_webhooks=json.dumps({"Grampian": "https://teams.example/hook"}))
    run_planning_job(engine, "quarterly-review", MONDAY, RULES,
                     area_channels=area_channels(teams))
    groups: dict[str, list[str]] = {}
    for key, rows in outbox.due_groups(engine, MONDAY + dt.timedelta(hours=1)).items():
        groups.setdefault(rows[0]["channel"], []).append(key)
    return groups


@pytest.mark.parametrize("status", [200, 201, 202, 204, 301, 302, 303, 307, 308, 400, 404,
                                    500, 503])
@pytest.mark.parametrize("channel", sorted(HTTP_CHANNELS))
def test_only_a_2xx_from_the_endpoint_that_received_the_message_counts(sqlite_engine, channel,
                                                                       status):
    keys = _plan(sqlite_engine)[channel][:1]
    endpoint = Endpoint()
    endpoint.status = status
    try:
        transport = HTTP_CHANNELS[channel](endpoint)
        transports = {channel: transport, Channel.CONSOLE: ConsoleTransport(open("/dev/null", "w"))}
        report = asyncio.run(deliver_pending(
            sqlite_engine, Settings(), None, MONDAY + dt.timedelta(hours=1), groups=keys,
            transports=transports))
    finally:
        endpoint.close()
    first = endpoint.requests[0]
    assert first["method"] == "POST" and first["path"].startswith("/first/") and first["body"]
    # Nothing but the same POST with the same body ever reached any endpoint.
    assert all((r["method"], r["body"]) == ("POST", first["body"]) for r in endpoint.requests)
    state = outbox.outcomes(sqlite_engine, keys)[keys[0]]
    last = endpoint.requests[-1]
    last_answer = status if last["path"].startswith("/first/") else 200
    if state["status"] == "sent":
        # The endpoint that answered last received the message, and said 2xx.
        assert 200 <= last_answer < 300 and report.rows_sent == 1
    else:
        assert state["status"] in ("pending", "dead") and report.rows_sent == 0
    # A 200 is sent (and any 2xx of a webhook; Slack's Web API answers success only with
    # 200 and "ok": true, so it may refuse another 2xx).
    if status == 200 or (channel == Channel.TEAMS and 200 <= status < 300):
        assert state["status"] == "sent" and len(endpoint.requests) == 1
    if status >= 400:
        assert state["status"] != "sent"
    if status in (301, 302, 303):
        # Not followed: one request, a failure that will be retried.
        assert len(endpoint.requests) == 1 and state["status"] == "pending"
        assert f"HTTP {status}" in state["last_error"]
    if status in (307, 308):
        # Followed with the same POST and body (sent: the new endpoint's 200), or not at all.
        assert (state["status"], len(endpoint.requests)) in (("sent", 2), ("pending", 1))


def test_a_teams_webhook_that_keeps_redirecting_reaches_the_coordinators_digest(sqlite_engine):
    """A webhook answering 302 (a card of 34 items once counted as sent on that answer):
    retried with backoff, given up at the eighth attempt, then told in the co-ordinator's
    next digest, naming the area whose webhook failed."""
    from bot.channels import render
    from bot.channels.console import plain_text

    keys = _plan(sqlite_engine)[Channel.TEAMS][:1]
    endpoint = Endpoint()
    endpoint.status = 302
    at = MONDAY + dt.timedelta(hours=1)
    try:
        for _ in range(outbox.MAX_ATTEMPTS):
            asyncio.run(deliver_pending(sqlite_engine, Settings(), None, at, groups=keys,
                                        transports={Channel.TEAMS: _teams(endpoint)}))
            at += dt.timedelta(hours=2)  # past any backoff
    finally:
        endpoint.close()
    assert {r["method"] for r in endpoint.requests} == {"POST"}
    assert len(endpoint.requests) == outbox.MAX_ATTEMPTS
    state = outbox.outcomes(sqlite_engine, keys)[keys[0]]
    assert (state["status"], state["attempts"]) == ("dead", outbox.MAX_ATTEMPTS)
    tomorrow = MONDAY + dt.timedelta(days=1)
    run_planning_job(sqlite_engine, "digest", tomorrow, RULES)
    digests = [rows for rows in outbox.due_groups(sqlite_engine, tomorrow).values()
               if any(r["rule"] == "delivery_problem" for r in rows)]
    assert digests, "no co-ordinator's digest tells of the failure"
    text = plain_text(render(digests[0]))
    assert "teams:Grampian by teams: Teams: HTTP 302" in text, text
