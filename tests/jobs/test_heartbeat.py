"""Silence is noticed (issue 22.7, the heartbeat): after each scheduled job run and delivery
run the bot pings MAPPA_HEARTBEAT_URL (a Healthchecks.io-style ping URL) with the run's
one-line summary, adding /fail when the run failed; a ping that fails is logged (never the
URL) and never stops the job. Against a local HTTP stand-in for the monitor, the real
scheduler's ticks and the Grampian records."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from bot.channels.slack import SlackTransport
from bot.delivery.worker import deliver_pending
from bot.jobs import heartbeat
from bot.jobs.schedule import build_scheduler
from bot.server import build_asgi
from bot.settings import Settings, load
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import outbox
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import SIGNING_SECRET, BotServer, SlackStandIn, free_port

pytestmark = pytest.mark.http
RULES = NudgeRules()


class Monitor:
    """A URL monitor: records each ping (method, path, body); answers `status`."""

    def __init__(self, status: int = 200):
        self.status, self.pings = status, []
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            def _ping(self):
                length = int(self.headers.get("Content-Length") or 0)
                monitor.pings.append({"method": self.command, "path": self.path,
                                      "body": self.rfile.read(length).decode()})
                self.send_response(monitor.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            do_POST = do_GET = _ping  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ping/5f2a-check"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.pings) < count:
            assert time.monotonic() < deadline, f"{count} ping(s) expected: {self.pings}"
            time.sleep(0.02)
        return self.pings

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def monitor():
    m = Monitor()
    yield m
    m.close()


@pytest.fixture
def slack():
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.close()


def _scheduler(engine, slack, url):
    settings = Settings(slack_bot_token="xoxb-test", slack_api_url=slack.api_url())
    transport = SlackTransport.from_settings(settings)

    async def deliver(now):
        return await deliver_pending(engine, settings, transport, now)

    return build_scheduler(engine, RULES, deliver, heartbeat_url=url)


def _run(scheduler, job: str) -> None:
    asyncio.run(scheduler.get_job(job).func())


def test_each_job_run_and_delivery_run_pings_with_its_one_line_summary(engine, monitor, slack):
    assert import_directory(engine, GRAMPIAN).ok
    scheduler = _scheduler(engine, slack, monitor.url)
    _run(scheduler, "escalations")  # plans, then delivers what it planned: two runs
    first, second = monitor.wait_for(2)
    assert (first["method"], first["path"]) == ("POST", "/ping/5f2a-check")
    assert first["body"].startswith("job escalations: planned ") and " new " in first["body"]
    assert (second["method"], second["path"]) == ("POST", "/ping/5f2a-check")
    assert second["body"].startswith("job deliver: sent ") and second["body"].endswith(" s")
    assert "\n" not in first["body"] + second["body"]
    _run(scheduler, "deliver")  # nothing due: still a run, still a ping
    assert monitor.wait_for(3)[2]["body"].startswith("job deliver: sent 0 item(s)")


def test_a_failed_run_pings_fail_and_the_job_goes_on(sqlite_engine, monitor, slack, caplog):
    """A planning run that raises, and a delivery run that gives a message up, each ping
    the URL with /fail appended; the summary says what failed and no more."""
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    scheduler = _scheduler(sqlite_engine, slack, monitor.url)
    with sqlite_engine.begin() as conn:
        conn.execute(text("DROP TABLE snooze"))  # what the escalations read is gone
    _run(scheduler, "escalations")
    ping = monitor.wait_for(1)[0]
    assert ping["path"] == "/ping/5f2a-check/fail", ping
    assert ping["body"].startswith("job escalations failed after ") and \
        ping["body"].endswith(": OperationalError"), ping
    # A delivery run that gives a message up fails too (as `mappa jobs run deliver` exits 1).
    slack.script["/api/chat.postMessage"] = [(200, {}, {"ok": False, "error": "user_not_found"})]
    outbox.plan(sqlite_engine, _one_digest(), dt.datetime.now(dt.UTC), RULES)
    _run(scheduler, "deliver")
    ping = monitor.wait_for(2)[1]
    assert ping["path"] == "/ping/5f2a-check/fail" and ", 1 given up in " in ping["body"]


def _one_digest():
    import pandas as pd

    return pd.DataFrame([{
        "rule": "digest", "item_key": "contribution:M1:housing", "stage": "missing",
        "recipient_id": "p1", "channel": "slack", "address": "U0000001", "urgency": "urgent",
        "group_key": "digest|p1|2026-11-26", "dedupe_key": "digest|M1|p1", "area": "Grampian",
        "payload": {"kind": "contribution", "level": None, "ref": "GRA-0001", "meeting_id": "M1",
                    "agency": "housing", "deadline": "2026-11-20", "overdue": True,
                    "working_days_left": -4, "detail": None,
                    "item_key": "contribution:M1:housing", "stage": "missing",
                    "area": "Grampian"}}])


@pytest.mark.parametrize("where", ["nothing listens", "the monitor answers 500"])
def test_a_failing_ping_is_logged_and_never_stops_the_job(sqlite_engine, slack, caplog, where):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    monitor = Monitor(status=500)
    url = monitor.url if where != "nothing listens" else f"http://127.0.0.1:{free_port()}/p/secret-uuid"
    try:
        scheduler = _scheduler(sqlite_engine, slack, url)
        with caplog.at_level(logging.INFO):
            _run(scheduler, "escalations")
    finally:
        monitor.close()
    lines = [r.getMessage() for r in caplog.records]
    # The job ran to its end: planned, delivered, both logged.
    assert any(m.startswith("job escalations: planned ") for m in lines), lines
    assert any(m.startswith("job deliver: sent ") for m in lines), lines
    failed = [m for m in lines if m.startswith("heartbeat ping failed")]
    assert len(failed) == 2, lines
    assert failed[0].startswith("heartbeat ping failed (job escalations): ")
    assert ("HTTP 500" if where != "nothing listens" else "Connection refused") in failed[0]
    assert not any("secret-uuid" in m or "5f2a-check" in m for m in lines)


def test_no_url_no_ping(sqlite_engine, slack, caplog):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    with caplog.at_level(logging.INFO):
        _run(_scheduler(sqlite_engine, slack, None), "escalations")
    assert not [r for r in caplog.records if r.name == "mappa.heartbeat"]
    assert heartbeat.ping(None, False, "x") is False


def test_mappa_serve_pings_after_its_scheduled_runs(sqlite_engine, monitor, slack):
    """The setting reaches the scheduler `mappa serve` runs: its delivery job, made due now
    under uvicorn, pings the monitor."""
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    settings = Settings(work_processes=0, slack_bot_token="xoxb-t",
                        slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url(),
                        heartbeat_url=monitor.url)
    asgi = build_asgi(settings, sqlite_engine, scheduler_rules=RULES)
    server = BotServer(asgi, lifespan="on")
    try:
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=10) as resp:
            assert json.loads(resp.read())["scheduler"] == "running"
        asgi.state.ops.scheduler.modify_job("deliver", next_run_time=dt.datetime.now(dt.UTC))
        ping = monitor.wait_for(1)[0]
        assert ping["path"] == "/ping/5f2a-check" and ping["body"].startswith("job deliver: ")
    finally:
        server.close()


def test_the_heartbeat_url_is_a_secret_setting_of_http_urls(tmp_path):
    found = load(environ={"MAPPA_HEARTBEAT_URL": "https://hc-ping.com/5f2a-check/"},
                 env_file=None).settings
    assert found.heartbeat_url == "https://hc-ping.com/5f2a-check"
    assert found.shown("heartbeat_url") == "***" and "5f2a" not in repr(found)
    assert heartbeat.ping_url(found.heartbeat_url, True) == "https://hc-ping.com/5f2a-check/fail"
    with pytest.raises(ValueError, match="MAPPA_HEARTBEAT_URL=\\*\\*\\*: not an http"):
        load(environ={"MAPPA_HEARTBEAT_URL": "hc-ping.com/x"}, env_file=None)
