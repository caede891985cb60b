"""Slack's HTTP door (bot/channels/slack/http.py) under attack (issue 22, item 3): nothing
unsigned reaches Bolt, the work queue or the audit log, whatever it carries (`ssl_check`
of any value, a command while someone's command is in flight or the queue is full); no
body of any nesting depth, size or encoding is a 500 or a traceback; each refusal is one
log line. Real HTTP to `mappa serve`'s ASGI app (in its own process where its log is
counted), real databases."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from mappa_core.storage import db
from mappa_core.storage.importer import import_directory
from tests.channels.slack.test_commands_and_buttons import CHAIR1, CHAIR2, SOG, text_of
from tests.conftest import GRAMPIAN
from tests.server.test_operations import Replica, meetings_locked
from tests.slack_harness import (
    SIGNING_SECRET, SlackStandIn, command_body, free_port, stop, wait_until_up,
)

FORM = "application/x-www-form-urlencoded"
BRACKETS = "[" * 20_000 + "]" * 20_000


def raw_post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def signed(body: bytes, ctype: str = FORM, timestamp: int | None = None) -> dict:
    """Slack's headers for `body`, signed over its bytes as sent (whatever their encoding)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:%s:%s" % (ts.encode(), body),
                      hashlib.sha256).hexdigest()
    return {"Content-Type": ctype, "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={digest}"}


def audit_log(engine) -> list[dict]:
    audit = SQLModel.metadata.tables["audit_log"]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit).order_by(audit.c.id)).mappings()]


def audited_after(engine, user: str, count: int = 1, timeout: float = 20) -> list[dict]:
    """The audit log once `user` has `count` rows in it. Rows are written in order by one
    writer, so a row queued before this one's is in the database by then."""
    deadline = time.monotonic() + timeout
    while True:
        rows = audit_log(engine)
        if sum(r["slack_user_id"] == user for r in rows) >= count:
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.05)


# --------------------------------------------------------------------------- ssl_check


@pytest.mark.http
def test_only_slacks_own_certificate_probe_skips_the_signature(engine):
    """Slack's probe of the Request URL's certificate is `ssl_check=1` and its token,
    unsigned: 200, and nothing reaches Bolt. With any other value, or anything else in the
    form, `ssl_check` is just a field: unsigned is 401 (on main, `ssl_check=1` with a
    command or a payload was handed to Bolt unsigned, and answered 200)."""
    assert import_directory(engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    bot = Replica(engine, stand_in)
    url = bot.url + "/slack/events"
    press = json.dumps({"type": "block_actions", "user": {"id": CHAIR1},
                        "actions": [{"action_id": "snooze_1wd", "value": "minutes:G8"}],
                        "response_url": stand_in.response_url("press")})
    command = command_body(CHAIR1, "status", stand_in.response_url("cmd"))
    try:
        for body in ("ssl_check=1", "ssl_check=1&token=verification-token"):
            assert raw_post(url, body.encode(), {"Content-Type": FORM}) == (200, ""), body
        for body, ctype in [
            ("ssl_check=0", FORM), ("ssl_check=2", FORM), ("ssl_check=", FORM),
            ("ssl_check=1&ssl_check=1", FORM), ("ssl_check=1&token=a&token=b", FORM),
            ("ssl_check=1&" + command, FORM), ("ssl_check=0&" + command, FORM),
            ("ssl_check=1&payload=" + urllib.parse.quote(press), FORM),
            ("ssl_check=1&payload=" + BRACKETS, FORM),
            ('{"ssl_check": "1"}', "application/json"),
        ]:
            status, _ = raw_post(url, body.encode(), {"Content-Type": ctype})
            assert status == 401, (body[:80], status)
        # Signed, a request with ssl_check (not 1, which Bolt answers itself) is ordinary.
        body = "ssl_check=0&" + command
        assert raw_post(url, body.encode(), signed(body.encode()))[0] == 200
        assert "MAPPA indicators for" in text_of(
            stand_in.wait_for("/response/cmd")[0]["body"])
        assert [c["path"] for c in stand_in.posts("/response/")] == ["/response/cmd"]
    finally:
        bot.close()
        stand_in.close()


# --------------------------------------------------------------------------- the queue


@pytest.mark.http
def test_an_unsigned_command_is_refused_while_another_is_in_flight_or_the_queue_is_full(
        postgres_url):
    """While CHAIR1's command waits (the meeting table locked, as by a long import) and
    so fills the queue (MAPPA_MAX_QUEUED_COMMANDS=1), a command is answered at the edge
    without going through Bolt: on main, one unsigned but for `ssl_check=0`, or signed
    ten minutes ago, was answered ("still working", "busy") and wrote an audit row under
    whatever Slack id it named. Now each is 401, answered nothing, audited nothing."""
    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    assert import_directory(engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    bot = Replica(engine, stand_in, max_queued_commands=1)
    url = bot.url + "/slack/events"
    try:
        with meetings_locked(postgres_url):
            first = bot.send(CHAIR1, "status 2025-26")
            deadline = time.monotonic() + 20
            while bot.bot.queued < 1:  # its work has started (and waits on the lock)
                assert time.monotonic() < deadline
                time.sleep(0.02)
            # The edge answers CHAIR1 "still working" and anyone else "busy", signed.
            assert "Still working" in text_of(bot.command(CHAIR1, "due"))
            assert "busy with other people's requests" in text_of(bot.command(CHAIR2, "due"))
            forged = {user: command_body(user, "status", stand_in.response_url(f"f-{user}"))
                      for user in (CHAIR1, "UFORGED01")}
            for user, body in forged.items():
                for attack, headers in [
                    ("ssl_check=0&" + body, {"Content-Type": FORM}),
                    ("ssl_check=1&" + body, {"Content-Type": FORM}),
                    (body, {"Content-Type": FORM}),
                    (body, signed(body.encode(), timestamp=int(time.time()) - 600)),
                    ("ssl_check=x&" + body, signed(("ssl_check=x&" + body).encode(),
                                                   timestamp=int(time.time()) - 600)),
                ]:
                    status, out = raw_post(url, attack.encode(), headers)
                    assert status == 401, (user, attack[:40], status, out)
                    assert "Still working" not in out and "busy" not in out
            # A signed command after them is audited: every row queued before it is written.
            assert "help" in text_of(bot.command(SOG, "help")).lower()
            rows = audited_after(engine, SOG)
            assert not [r for r in rows if r["slack_user_id"] == "UFORGED01"], rows
            assert [r["outcome"] for r in rows if r["slack_user_id"] == CHAIR1] == \
                ["refused:in-flight"], rows  # its own "due", signed
            assert not stand_in.posts("/response/f-")
        assert "MAPPA indicators for" in text_of(bot.answer(first, timeout=30))
    finally:
        bot.close()
        stand_in.close()
        engine.dispose()


# --------------------------------------------------------------------------- any body


def _press_nested(depth: int, response_url: str = "") -> bytes:
    """A button press whose value is nested `depth` arrays deep (the payload itself adds
    three levels): written out, as json.dumps cannot go that deep."""
    value = "[" * depth + '"minutes:G8"' + "]" * depth
    payload = json.dumps({"type": "block_actions", "user": {"id": CHAIR1},
                          "response_url": response_url,
                          "actions": [{"action_id": "snooze_1wd", "value": "VALUE"}]})
    payload = payload.replace('"VALUE"', value)
    return ("payload=" + urllib.parse.quote(payload)).encode()


class Served:
    """`mappa serve` in its own process on the Grampian records (SQLite), its log in a file
    whose lines the tests count."""

    def __init__(self, sqlite_url, tmp_path):
        self.engine = db.make_engine(sqlite_url)
        db.ensure_schema(self.engine)
        assert import_directory(self.engine, GRAMPIAN).ok
        self.stand_in = SlackStandIn()
        self.port = free_port()
        self.log = tmp_path / "serve.log"
        (tmp_path / "none.env").write_text("")
        env = {**os.environ, "MAPPA_DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": "xoxb-door",
               "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": self.stand_in.api_url(),
               "MAPPA_WORK_PROCESSES": "0", "MAPPA_LOG_FORMAT": "text"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(self.port),
             "--env-file", str(tmp_path / "none.env")],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.url = f"http://127.0.0.1:{self.port}/slack/events"
        wait_until_up(self.port, self.process, "/healthz",
                      output=lambda: self.log.read_text()[-3000:])
        self.started = len(self.lines())

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def refused(self, cases) -> float:
        """Send each (body, headers, status): that status, and exactly one new log line
        saying so (it is written before the answer is sent). Returns the seconds taken."""
        t = time.monotonic()
        for i, (body, headers, want) in enumerate(cases):
            before = len(self.lines())
            status, _ = raw_post(self.url, body, headers)
            assert status == want, (i, body[:40], status, self.log.read_text()[-3000:])
            new = self.lines()[before:]
            assert len(new) == 1 and f"refused {want}" in new[0], (i, new[:20])
        return time.monotonic() - t

    def still_answers(self) -> None:
        body = command_body(CHAIR1, "help", self.stand_in.response_url("after"))
        assert raw_post(self.url, body.encode(), signed(body.encode()))[0] == 200
        assert "help" in text_of(self.stand_in.wait_for("/response/after")[0]["body"]).lower()

    def close(self) -> list[str]:
        """Stop; the lines logged since the start, none of them a traceback's."""
        stop(self.process)
        self.stand_in.close()
        log = self.log.read_text()
        assert "Traceback" not in log, log[-5000:]
        return log.splitlines()[self.started:]


@pytest.fixture
def served(sqlite_url, tmp_path):
    server = Served(sqlite_url, tmp_path)
    yield server
    if server.process.poll() is None:
        stop(server.process)
        server.stand_in.close()


@pytest.mark.http
@pytest.mark.process
def test_an_unsigned_flood_of_nested_brackets_is_401_with_one_line_each(served):
    """The attack of the issue: 20 unsigned `ssl_check=0&payload=` + 20,000 `[` and `]`
    (on main: HTTP 500 each, 21 tracebacks, 77 KB of log in 2.8 s), then unsigned bodies
    that are not UTF-8, deeper still, or carry a signature that is not ASCII: each a 401
    with exactly one short log line, no traceback, nothing audited."""
    flood = ("ssl_check=0&payload=" + BRACKETS).encode()
    sig = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=\xe9"}
    cases = [(flood, {"Content-Type": FORM}, 401)] * 20 + [
        (b"payload=\xff\xfe{}", {"Content-Type": FORM}, 401),
        (b"payload=%7B%7D", {"Content-Type": FORM, **sig}, 401),
        (("payload=" + "[" * 500_000).encode(), {"Content-Type": FORM}, 401),
        (("[" * 500_000).encode(), {"Content-Type": "application/json"}, 401),
    ]
    elapsed = served.refused(cases)
    served.still_answers()
    lines = served.close()
    refusals = [line for line in lines if "refused" in line]
    assert len(refusals) == len(cases)
    assert sum(len(line) for line in refusals) < 150 * len(cases)  # nothing of the bodies
    assert [r["outcome"] for r in audit_log(served.engine)] == ["ok"]  # the help after
    assert elapsed < 20, elapsed


@pytest.mark.http
@pytest.mark.process
def test_a_signed_body_of_any_depth_or_encoding_is_400_with_one_line_each(served):
    """Signed, the same 20,000-deep payload was a 500 with a traceback on main; so was
    any payload too deep for the parser, and a press nested 900 levels went on to Bolt.
    Now a payload nested deeper than Slack's ever are (64 levels), a body that is not
    UTF-8 (raw, percent-encoded or UTF-16 JSON) and two payloads in one form are each a
    400 with exactly one log line and no traceback; Slack's own still work."""
    flood = ("payload=" + BRACKETS).encode()
    json_body = '{"type": "event_callback"}'.encode("utf-16")
    cases = [(flood, signed(flood), 400),
             *[(_press_nested(d), signed(_press_nested(d)), 400)
               for d in (62, 70, 900, 5_000, 20_000)],  # 65 levels and more
             (b"payload=\xff\xfe{}", signed(b"payload=\xff\xfe{}"), 400),
             (b"payload=%FF%FE%7B%7D", signed(b"payload=%FF%FE%7B%7D"), 400),
             (json_body, signed(json_body, "application/json"), 400),
             (b"payload=%7B%7D&payload=%7B%7D", signed(b"payload=%7B%7D&payload=%7B%7D"), 400)]
    served.refused(cases)
    # 64 levels (a value 61 deep) is within bounds: the press is answered, in words.
    body = _press_nested(61, served.stand_in.response_url("deep"))
    assert raw_post(served.url, body, signed(body))[0] == 200
    assert "no longer matches" in text_of(served.stand_in.wait_for("/response/deep")[0]["body"])
    served.still_answers()
    lines = served.close()
    assert len([line for line in lines if "refused" in line]) == len(cases)
