"""Memory bounds, the HTTP edge and what an operator sees (issue 12, findings 1, 7, 9's
PostgreSQL lag and 10): real signed HTTP requests against the served app, real databases."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.cli import main
from bot.commands import handlers
from bot.commands.access import find_caller
from bot.commands.parser import parse
from bot.server import build_asgi
from bot.settings import Settings
from mappa_core.storage import db
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import (
    SIGNING_SECRET, BotServer, SlackStandIn, SocketModeStandIn, action_body, command_body,
    free_port, post, sign, wait_until_up,
)
from tests.channels.slack.test_commands_and_buttons import CHAIR1, CHAIR2, COORD, SOG, STAFF, TODAY, text_of

GRAMPIAN_REFS = [line.split(",")[0] for line in
                 (GRAMPIAN / "individuals.csv").read_text().splitlines()[1:] if line]


class Replica:
    """One instance of the bot (its own caches and pools) serving a shared database."""

    def __init__(self, engine, stand_in, scheduler_rules=None, **overrides):
        self.engine, self.stand_in = engine, stand_in
        self.settings = Settings(work_processes=0, database_url=str(engine.url), slack_bot_token="xoxb-test",
                                 slack_signing_secret=SIGNING_SECRET,
                                 slack_api_url=stand_in.api_url(), **overrides)
        self.asgi = build_asgi(self.settings, engine, today=lambda: TODAY,
                               scheduler_rules=scheduler_rules)
        self.server = BotServer(self.asgi)
        self.url = self.server.url
        self.n = 0

    @property
    def bot(self):
        return self.asgi.state.bolt.mappa

    def send(self, user, text_):
        """Send a command; returns the response_url name its answer will come to, or the
        answer itself when it came in the acknowledgement."""
        self.n += 1
        name = f"p{self.server.port}-{self.n}"
        body = command_body(user, text_, self.stand_in.response_url(name))
        status, out, _ = post(self.url + "/slack/events", body, sign(body))
        assert status == 200, out
        return json.loads(out) if out else name

    def answer(self, name, timeout=20.0):
        if isinstance(name, dict):
            return name
        return self.stand_in.wait_for(f"/response/{name}", timeout=timeout)[0]["body"]

    def command(self, user, text_):
        return self.answer(self.send(user, text_))

    def act(self, user, action_id, value):
        self.n += 1
        name = f"p{self.server.port}-{self.n}"
        body = action_body(user, action_id, value, self.stand_in.response_url(name))
        status, out, _ = post(self.url + "/slack/events", body, sign(body))
        assert status == 200, out
        return self.answer(name)

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def close(self):
        self.server.close()


@pytest.fixture
def grampian(engine):
    assert import_directory(engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    made = []

    def replica(**kw):
        r = Replica(engine, stand_in, **kw)
        made.append(r)
        return r

    yield replica
    for r in made:
        r.close()
    stand_in.close()


# --------------------------------------------------------------------------- memory


def test_five_hundred_distinct_periods_keep_the_answer_cache_bounded(sqlite_engine):
    """Each distinct period used to add a frame and an answer for good (9 MB each on the
    7,000-person region); now both maps stay within their bounds."""
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    cache = handlers.DeadlineCache(ttl=600, max_frames=4, max_answers=64)
    ctx = handlers.Context(sqlite_engine, TODAY, cache)
    caller = find_caller(sqlite_engine, COORD)
    start = dt.date(2024, 1, 1)
    seen_frames = seen_answers = 0
    for i in range(500):
        period = f"{start + dt.timedelta(days=i)}..{start + dt.timedelta(days=i + 30)}"
        reply = handlers.status_answer(ctx, caller, parse(f"status {period}"))
        assert "MAPPA indicators" in reply.text
        frames, answers = cache.sizes()
        seen_frames, seen_answers = max(seen_frames, frames), max(seen_answers, answers)
    assert seen_frames == 4 and seen_answers == 64
    # The latest answer is still served from the cache: same object, no recomputation.
    last = f"{start + dt.timedelta(days=499)}..{start + dt.timedelta(days=529)}"
    assert handlers.status_answer(ctx, caller, parse(f"status {last}")) is reply


def test_cache_entries_expire_by_age(sqlite_engine):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    cache = handlers.DeadlineCache(ttl=0.3)
    ctx = handlers.Context(sqlite_engine, TODAY, cache)
    caller = find_caller(sqlite_engine, COORD)
    first = handlers.status_answer(ctx, caller, parse("status"))
    assert handlers.status_answer(ctx, caller, parse("status")) is first
    time.sleep(0.4)
    assert handlers.status_answer(ctx, caller, parse("status level2")) is not first
    assert cache.sizes() == (1, 1)  # the expired frame and answer went when new ones came
    assert handlers.status_answer(ctx, caller, parse("status")) is not first


@pytest.mark.http
def test_a_period_longer_than_ten_years_is_refused_in_slack_and_the_cli(grampian, grampian_cli, capsys):
    bot = grampian()
    for command in ("status 2010-04-01..2026-04-01", "status compare 2000-01-01..2026-11-26"):
        body = text_of(bot.command(COORD, command))
        assert "longer than 10 years" in body, body
        assert "MAPPA indicators for" not in body
    # Exactly ten years is allowed.
    assert "MAPPA indicators for" in text_of(bot.command(COORD, "status 2016-11-26..2026-11-26"))
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--period", "2010-04-01..2026-04-01"])
    assert exit_.value.code == 2
    assert "longer than 10 years" in capsys.readouterr().err


@contextmanager
def meetings_locked(url):
    """Another session holds the meeting table (as a long import would): any answer that
    reads meetings waits; who is asking, help and audit rows do not."""
    eng = create_engine(url)
    conn = eng.connect()
    trans = conn.begin()
    conn.execute(text("LOCK TABLE meeting IN ACCESS EXCLUSIVE MODE"))
    try:
        yield
    finally:
        trans.rollback()
        conn.close()
        eng.dispose()


@pytest.mark.http
def test_one_person_cannot_starve_the_others(postgres_url, tmp_path):
    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    assert import_directory(engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    bot = Replica(engine, stand_in, max_queued_commands=2)
    try:
        with meetings_locked(postgres_url):
            first = bot.send(CHAIR1, "status 2025-26")
            deadline = time.monotonic() + 10
            while bot.bot.queued < 1:  # its work has started (and waits on the lock)
                assert time.monotonic() < deadline
                time.sleep(0.02)
            t = time.monotonic()
            again = bot.command(CHAIR1, "status 2024-25")
            assert "Still working on your last request" in text_of(again)
            assert "Still working" in text_of(bot.command(CHAIR1, "due"))
            second = bot.send(CHAIR2, "status 2023-24")  # the second slot of the queue
            while bot.bot.queued < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert "busy with other people's requests" in text_of(bot.command(STAFF, "status"))
            # An idle person's help is answered at once, whatever the others wait for.
            assert "help" in text_of(bot.command(SOG, "help")).lower()
            assert time.monotonic() - t < 5
            assert not stand_in.posts(f"/response/{first}")
        for name in (first, second):
            assert "MAPPA indicators for" in text_of(bot.answer(name))
        # Once answered, the same person may ask again.
        assert "MAPPA indicators for" in text_of(bot.command(CHAIR1, "status"))
        assert bot.bot.in_flight == {} and bot.bot.queued == 0
    finally:
        bot.close()
        stand_in.close()
        engine.dispose()


@pytest.mark.http
def test_an_answer_that_takes_too_long_is_promised_in_time(postgres_url):
    """Past MAPPA_ANSWER_SECONDS the person is told to ask again; the work goes on, holds
    the person's slot until it ends, and fills the cache so that asking again is quick."""
    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    assert import_directory(engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    bot = Replica(engine, stand_in, answer_seconds=1)
    try:
        with meetings_locked(postgres_url):
            t = time.monotonic()
            first = bot.answer(bot.send(COORD, "status 2025-26"))
            assert "taking longer than usual" in text_of(first)
            assert time.monotonic() - t < 5
            assert "Still working" in text_of(bot.command(COORD, "status 2025-26"))
        deadline = time.monotonic() + 10
        while bot.bot.in_flight:  # the work ends once the lock is gone
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert bot.bot.queued == 0
        assert "MAPPA indicators for" in text_of(bot.command(COORD, "status 2025-26"))
    finally:
        bot.close()
        stand_in.close()
        engine.dispose()


# --------------------------------------------------------------------------- HTTP edge


def _raw_post(url, body: bytes, headers: dict) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.http
def test_malformed_and_unsigned_requests_get_400_or_401_with_one_log_line(grampian, caplog):
    bot = grampian()
    url = bot.url + "/slack/events"
    form = "application/x-www-form-urlencoded"
    signed = lambda b: {"Content-Type": form, **sign(b)}  # noqa: E731
    cases = [
        ("payload=%7Bnot-json", {"Content-Type": form}, 401),
        ('payload="x"', {"Content-Type": form}, 401),
        ("[]", {"Content-Type": "application/json"}, 401),
        ("payload=%7Bnot-json", {"Content-Type": form, "X-Slack-Request-Timestamp": "abc",
                                 "X-Slack-Signature": "v0=00"}, 401),
        ("command=/mappa&text=status", {"Content-Type": form}, 401),  # no signature at all
        ("payload=%7Bnot-json", signed("payload=%7Bnot-json"), 400),
        ("payload=%22x%22", signed("payload=%22x%22"), 400),
        ("[]", {**sign("[]"), "Content-Type": "application/json"}, 400),
        # A timestamp too long for slack_sdk's arithmetic, and digits that are not ASCII.
        ("a=b", {"Content-Type": form, "X-Slack-Request-Timestamp": "9" * 400,
                 "X-Slack-Signature": "v0=00"}, 401),
        ("a=b", {"Content-Type": form, "X-Slack-Request-Timestamp": "\xb2" * 10,
                 "X-Slack-Signature": "v0=00"}, 401),
    ]
    for body, headers, want in cases:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            got = _raw_post(url, body.encode(), headers)
        assert got == want, (body, headers, got)
        lines = [r for r in caplog.records if r.levelno >= logging.INFO]
        assert len(lines) == 1 and lines[0].name == "mappa.server", [r.getMessage() for r in lines]
        assert f"refused {want}" in lines[0].getMessage()
        assert not any(r.exc_info for r in caplog.records)
    assert not bot.stand_in.calls  # nothing reached the handlers


@pytest.mark.http
def test_signed_requests_bolt_cannot_use_get_a_4xx_and_no_traceback(grampian, caplog):
    bot = grampian()
    url = bot.url + "/slack/events"
    for body in ("[]", "{bad", 'payload={"type":"block_actions"}',
                 'payload={"type":"block_actions","actions":[{}]}',
                 'payload={"type":"view_submission","view":5}',
                 'payload={"type":"block_actions","user":{"id":"U1CHAIR1"},"actions":'
                 '[{"action_id":"no_such_button","value":"review:G1:L2:2026-12-07"}]}'):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            got = _raw_post(url, body.encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                                 **sign(body)})
        assert 400 <= got < 500, (body, got)
        assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO), body
        # Bolt's line for a request no listener handles keeps the body (a case ref) out.
        assert not any("G1:" in r.getMessage() for r in caplog.records
                       if r.levelno >= logging.INFO), body


def _send_oversized(port: int, size: int, chunked: bool) -> int:
    """Send headers and as much of a `size`-byte unsigned body as the server takes;
    return the status it answers with."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        head = ("POST /slack/events HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n")
        head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
        s.sendall(head.encode())
        chunk = b"a" * (1 << 20)
        sent = 0
        try:
            while sent < size:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
            if chunked:
                s.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed without reading the rest
            pass
        reply = b""
        try:
            while b"\r\n" not in reply:
                more = s.recv(4096)
                if not more:
                    break
                reply += more
        except OSError:
            pass
    return int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/") else 0


def _peak_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.http
@pytest.mark.process
def test_eight_concurrent_oversized_bodies_are_refused_unread(sqlite_url, tmp_path):
    """`mappa serve` in its own process; eight unsigned 100 MB bodies at once, half declared
    (Content-Length) and half streamed (chunked): each gets 413 and the server's peak
    memory barely moves (it was 1.6 GB when bodies were read whole)."""
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    assert import_directory(engine, GRAMPIAN).ok
    port = free_port()
    (tmp_path / "none.env").write_text("")  # a named settings file must exist (issue 11)
    env = {**os.environ, "MAPPA_DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": "xoxb-edge",
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                               "--env-file", str(tmp_path / "none.env")],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / "serve.log", "w"))
    try:
        wait_until_up(port, server, timeout=30)
        before = _peak_mb(server.pid)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda k: _send_oversized(port, 100 << 20, chunked=k % 2 == 1),
                                     range(8)))
        assert statuses == [413] * 8
        grew = _peak_mb(server.pid) - before
        assert grew < 50, f"peak memory grew by {grew:.0f} MB"
        # Still serving.
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
    finally:
        server.terminate()
        server.wait(timeout=15)
    log = (tmp_path / "serve.log").read_text()
    assert log.count("refused 413") == 8 and "Traceback" not in log, log[-3000:]


@pytest.mark.http
def test_a_body_just_over_the_limit_is_refused_and_one_under_is_served(grampian):
    bot = grampian(max_body_bytes=4096)
    body = command_body(STAFF, "help", bot.stand_in.response_url("edge"))
    padded = body + "&pad=" + "x" * (4096 - len(body) - 5)
    assert len(padded) == 4096
    assert post(bot.url + "/slack/events", padded, sign(padded))[0] == 200
    bot.stand_in.wait_for("/response/edge")
    over = padded + "x"
    assert post(bot.url + "/slack/events", over, sign(over))[0] == 413


# --------------------------------------------------------------------------- operators


def _metric(text_: str, name: str, **labels) -> float | None:
    for line in text_.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        got = dict(p.split("=", 1) for p in head[len(name) + 1:-1].split(",")) if "{" in head else {}
        if {k: v.strip('"') for k, v in got.items()} == {k: str(v) for k, v in labels.items()}:
            return float(value)
    return None


@pytest.mark.http
def test_metrics_show_the_outbox_commands_and_deliveries(grampian):
    import asyncio

    from bot.channels.slack import SlackTransport
    from bot.delivery.worker import deliver_pending
    from bot.jobs.ticks import LONDON, run_planning_job
    from mappa_core.storage import outbox
    from mappa_core.rules.planner import NudgeRules

    bot = grampian()
    bot.command(STAFF, "status")
    now = dt.datetime(2026, 11, 26, 9, 0, tzinfo=LONDON)
    planned = run_planning_job(bot.engine, "digest", now, NudgeRules())
    assert planned.inserted > 0
    status, out = bot.get("/metrics")
    assert status == 200
    counts = outbox.counts(bot.engine)
    pending_slack = _metric(out, "mappa_outbox_rows", state="pending", channel="slack") or 0
    pending_email = _metric(out, "mappa_outbox_rows", state="pending", channel="email") or 0
    assert pending_slack + pending_email == counts["pending"] > 0
    age = _metric(out, "mappa_outbox_oldest_due_age_seconds")
    # Planned at 09:00 on 26 November 2026, due at once: waited since then (real clock now).
    assert age == pytest.approx((dt.datetime.now(dt.UTC) - now).total_seconds(), abs=120)
    assert _metric(out, "mappa_command_duration_seconds_count", command="status") >= 1
    sent_before = _metric(out, "mappa_deliveries_total", channel="slack", outcome="sent") or 0

    from slack_sdk.web.async_client import AsyncWebClient
    client = AsyncWebClient(token="xoxb-test", base_url=bot.stand_in.api_url())
    report = asyncio.run(deliver_pending(bot.engine, bot.settings, SlackTransport(client), now))
    _, out = bot.get("/metrics")
    assert _metric(out, "mappa_deliveries_total", channel="slack", outcome="sent") == \
        sent_before + report.sent["slack"]
    assert _metric(out, "mappa_outbox_rows", state="sent", channel="slack") == sum(
        1 for r in outbox.list_rows(bot.engine, "sent", 1000) if r["channel"] == "slack")
    assert _metric(out, "mappa_answer_cache_entries", kind="frames") >= 1


@pytest.mark.http
def test_readyz_reports_database_schema_and_scheduler(grampian, tmp_path, caplog):
    from mappa_core.rules.planner import NudgeRules

    bot = grampian()
    assert bot.get("/readyz") == (200, json.dumps({
        "ready": True, "database": "ok", "schema": db.SCHEMA_REVISION,
        "scheduler": "not run in this process"}, separators=(",", ":")))
    # A process meant to run the scheduler, whose scheduler is not running (no lifespan).
    idle = grampian(scheduler_rules=NudgeRules())
    status, body = idle.get("/readyz")
    assert status == 503 and json.loads(body)["reasons"] == ["scheduler not running"]
    with bot.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
    with caplog.at_level(logging.INFO, logger="mappa.server"):
        status, body = bot.get("/readyz")
    assert status == 503 and "schema at 0006" in json.loads(body)["reasons"][0]
    # A real problem stays a warning (only warming workers up is INFO).
    assert [r.levelname for r in caplog.records if "schema at 0006" in r.getMessage()] == [
        "WARNING"]
    with bot.engine.begin() as conn:
        conn.execute(text(f"UPDATE alembic_version SET version_num = '{db.SCHEMA_REVISION}'"))
    broken = BotServer(build_asgi(Settings(work_processes=0, slack_bot_token="xoxb-t", slack_signing_secret="s"),
                                  db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")))
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(broken.url + "/readyz", timeout=10)
        assert err.value.code == 503 and "database unreachable" in err.value.read().decode()
    finally:
        broken.close()


@pytest.mark.http
def test_scheduler_running_makes_the_process_ready(sqlite_engine):
    """Under uvicorn's lifespan the scheduler starts, and /readyz says so."""
    from mappa_core.rules.planner import NudgeRules

    stand_in = SlackStandIn()
    port = free_port()
    import threading

    import uvicorn

    settings = Settings(work_processes=0, slack_bot_token="xoxb-t", slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=stand_in.api_url())
    server = uvicorn.Server(uvicorn.Config(
        build_asgi(settings, sqlite_engine, scheduler_rules=NudgeRules()), host="127.0.0.1",
        port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as resp:
            assert json.loads(resp.read())["scheduler"] == "running"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        stand_in.close()


@pytest.mark.http
@pytest.mark.process
def test_socket_mode_serves_health_readiness_and_metrics_on_its_own_port(sqlite_url, tmp_path):
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    socket = SocketModeStandIn()  # ready only once connected (tests/server/test_socket_mode.py)
    stand_in = SlackStandIn(answers={"/api/apps.connections.open": {"url": socket.url}})
    port = free_port()
    (tmp_path / "none.env").write_text("")  # a named settings file must exist (issue 11)
    env = {**os.environ, "MAPPA_DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": "xoxb-sock",
           "SLACK_APP_TOKEN": "xapp-sock", "SLACK_API_URL": stand_in.api_url(),
           "MAPPA_HTTP_PORT": str(port), "MAPPA_LOG_FORMAT": "json"}
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--socket-mode",
                               "--env-file", str(tmp_path / "none.env")],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / "serve.log", "w"))
    try:
        ready = wait_until_up(port, server, "/readyz", timeout=30,
                              output=lambda: (tmp_path / "serve.log").read_text()[-3000:])
        assert ready["ready"] and ready["scheduler"] == "running"
        assert ready["socket_mode"] == "connected"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert "mappa_outbox_oldest_due_age_seconds" in resp.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert json.loads(resp.read()) == {"ok": True, "database": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=15)
        stand_in.close()
        socket.close()
    lines = [line for line in (tmp_path / "serve.log").read_text().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["level"] for line in lines), lines[:5]
    assert server.returncode == 0, lines[-5:]  # SIGTERM: a clean stop


@pytest.mark.http
@pytest.mark.process
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_0_after_a_clean_stop_on_sigterm_or_sigint(sig, sqlite_url, tmp_path):
    """uvicorn raises the signal again once it has shut down; with the default handler that
    killed the process (status 143, -15 here) after a clean shutdown."""
    db.ensure_schema(db.make_engine(sqlite_url))
    port, stand_in = free_port(), SlackStandIn()
    (tmp_path / "none.env").write_text("")
    env = {**os.environ, "MAPPA_DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": "xoxb-stop",
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": stand_in.api_url()}
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                               "--env-file", str(tmp_path / "none.env")],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / "serve.log", "w"))
    try:
        wait_until_up(port, server, "/healthz",
                      output=lambda: (tmp_path / "serve.log").read_text()[-3000:])
        server.send_signal(sig)
        assert server.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        stand_in.close()
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log and f"stopped by {sig.name}" in log, log[-3000:]


def test_json_logs_carry_uvicorn_and_the_bot_in_one_format():
    from bot.logs import configure_logging

    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("json", stream=stream)
        logging.getLogger("uvicorn.error").info("Started server process [%d]", 1)
        logging.getLogger("mappa.jobs").info("job %s: planned %d, new %d", "digest", 3, 2)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("mappa.slack").exception("error %s", "abc")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["logger"], r["message"]) for r in records] == [
        ("uvicorn.error", "Started server process [1]"),
        ("mappa.jobs", "job digest: planned 3, new 2"),
        ("mappa.slack", "error abc"),
    ]
    assert "ValueError: boom" in records[2]["traceback"]


@pytest.mark.http
def test_jobs_and_delivery_log_one_line_each_without_refs_or_secrets(grampian, caplog):
    """Every scheduled job run on the Grampian records, then a delivery: one INFO line each
    with its counts; no case reference of individuals.csv and no token in any of them."""
    import asyncio

    from bot.jobs.schedule import build_scheduler
    from bot.server import make_deliver
    from mappa_core.rules.planner import NudgeRules

    bot = grampian()
    scheduler = build_scheduler(bot.engine, NudgeRules(),
                                make_deliver(bot.settings, bot.engine, bot.asgi.state.bolt.client))
    jobs = ["digest", "escalations", "weekly-summary", "quarterly-review", "deliver"]

    async def run_all():
        for job in jobs:
            await scheduler.get_job(job).func()

    with caplog.at_level(logging.INFO):
        asyncio.run(run_all())
        bot.command(COORD, "case GRA-0102")
        bot.command(CHAIR1, "due")
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    for job in jobs[:-1]:
        assert sum(m.startswith(f"job {job}: planned ") for m in lines) == 1, lines
    sent = [m for m in lines if m.startswith("job deliver: sent ")]
    # In words, not a dict ("{'slack': 12}").
    assert any(" by Slack)" in m for m in sent) and not any("{" in m for m in sent), sent
    assert bot.stand_in.posts("/api/chat.postMessage"), "the delivery sent nothing"
    for line in lines:
        assert not any(ref in line for ref in GRAMPIAN_REFS), line
        assert "xoxb-test" not in line and SIGNING_SECRET not in line, line


# --------------------------------------------------------------------------- replicas


@pytest.mark.http
def test_a_button_on_one_replica_is_reflected_by_the_other_at_once(grampian):
    one, two = grampian(), grampian()
    with one.engine.begin() as conn:
        conn.execute(text("UPDATE meeting SET minutes_issued = NULL, rmp_ratified = NULL "
                          "WHERE meeting_id = 'G12'"))
    assert "G12" in text_of(one.command(CHAIR2, "due"))
    assert "G12" in text_of(one.command(CHAIR2, "due"))  # now answered from one's cache
    assert "recorded on 2026-11-26" in text_of(two.act(CHAIR2, "minutes_issued", "minutes:G12"))
    assert "recorded on 2026-11-26" in text_of(two.act(CHAIR2, "rmp_ratified", "minutes:G12"))
    assert "G12" not in text_of(one.command(CHAIR2, "due"))


@pytest.mark.http
def test_an_import_on_one_replica_is_reflected_by_the_other_at_once(grampian, tmp_path):
    import shutil

    one = grampian()
    # G12's minutes and RMP are dated 2026-11-27 in the files: not yet issued on the 26th.
    assert "G12" in text_of(one.command(CHAIR2, "due"))
    files = tmp_path / "export"
    shutil.copytree(GRAMPIAN, files)
    meetings = files / "meetings.csv"
    lines = [line.replace(",2026-11-27,2026-11-27,", ",2026-11-20,2026-11-20,")
             if line.startswith("G12,") else line for line in meetings.read_text().splitlines()]
    meetings.write_text("\n".join(lines) + "\n")
    stamp = db.change_stamp(one.engine)
    assert import_directory(one.engine, files).ok  # as another replica's `mappa import`
    assert db.change_stamp(one.engine) == stamp + 1
    assert "G12" not in text_of(one.command(CHAIR2, "due"))


# --------------------------------------------------------------------------- outbox CLI


def test_outbox_list_and_retry(grampian_cli, capsys):
    assert main(["jobs", "run", "digest", "--as-of", "2026-11-26"]) == 0
    engine = db.make_engine(grampian_cli)
    with engine.begin() as conn:
        row_id, group = conn.execute(text("SELECT id, group_key FROM outbox ORDER BY id")).first()
        conn.execute(text("UPDATE outbox SET status = 'dead', attempts = 8, reported = :t, "
                          "last_error = 'SMTP: 550 mailbox unavailable' WHERE group_key = :g"),
                     {"g": group, "t": True})
        in_group = conn.execute(text("SELECT count(*) FROM outbox WHERE group_key = :g"),
                                {"g": group}).scalar()
    capsys.readouterr()
    assert main(["outbox", "list", "--state", "failed"]) == 0
    out = capsys.readouterr().out
    listed = [line for line in out.splitlines()[1:] if line.strip()]
    assert len(listed) == in_group and all(" dead " in line for line in listed)
    assert "SMTP: 550 mailbox unavailable" in out
    assert not any(ref in out for ref in GRAMPIAN_REFS)
    assert main(["outbox", "retry", str(row_id)]) == 0
    assert f"{in_group} row(s)" in capsys.readouterr().out
    with engine.connect() as conn:
        assert conn.execute(text("SELECT DISTINCT status, attempts, reported FROM outbox "
                                 "WHERE group_key = :g"), {"g": group}).all() == [("pending", 0, False)]
    assert main(["outbox", "list", "--state", "failed"]) == 0
    assert "no outbox rows in state dead" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["outbox", "retry", "999999"])
    assert exit_.value.code == 2 and "no outbox row 999999" in capsys.readouterr().err


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                out.append(int(entry.name))
    return out


@pytest.mark.http
@pytest.mark.process
def test_serve_with_worker_processes_is_ready_once_they_started_and_leaves_none_behind(
        sqlite_url, tmp_path):
    """`mappa serve` computes answers in worker processes: /readyz says so only once they
    have started (until then commands are computed in threads, not refused as busy), and a
    stopped server takes its workers with it (they were left running, 200 MB each)."""
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    assert import_directory(engine, GRAMPIAN).ok
    port, stand_in = free_port(), SlackStandIn()
    (tmp_path / "none.env").write_text("")
    env = {**os.environ, "MAPPA_DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": "xoxb-w",
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": stand_in.api_url(),
           "MAPPA_WORK_PROCESSES": "2"}
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                               "--env-file", str(tmp_path / "none.env")],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / "serve.log", "w"))
    workers: list[int] = []
    try:
        wait_until_up(port, server, "/readyz")
        workers = _children(server.pid)
        assert len(workers) >= 2, workers  # two workers (and multiprocessing's tracker)
        body = command_body(CHAIR1, "status", stand_in.response_url("status"))
        got = _raw_post(f"http://127.0.0.1:{port}/slack/events", body.encode(),
                        {"Content-Type": "application/x-www-form-urlencoded", **sign(body)})
        assert got == 200
        answer = stand_in.wait_for("/response/status", timeout=30)[0]
        assert "busy" not in json.dumps(answer)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        stand_in.close()
    deadline = time.monotonic() + 15
    while any(Path(f"/proc/{p}").exists() for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in workers if Path(f"/proc/{p}").exists()]
    assert not left, f"worker processes left running: {left}"
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log
    # Each worker built the national App Home once before /readyz said ready.
    assert log.count("warmed up in") == 2, log
    # Quiet at start: warming up is no warning (each poll of /readyz wrote one), and Bolt's
    # "token will be unused" (it reads SLACK_BOT_TOKEN from the environment) is gone.
    assert not [line for line in log.splitlines() if "WARNING" in line], log
    assert "will be unused" not in log
    assert server.returncode == 0
