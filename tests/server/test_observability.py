"""Logs and metrics an operator can query (issue 22.8): JSON log lines carry their context
as fields (job, run id, outbox ids, channel, error id), `mappa_build_info{version=...}`,
and the outbox gauges show every state of every channel, zero included.

Before: the JSON formatter kept time, level, logger and message only, so the job, the
outbox ids, the channel and the error id were only inside the message's text; the outbox
gauges had a series only for the states that had rows."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from sqlalchemy import text

from bot import logs
from bot.channels.slack import SlackTransport
from bot.delivery.worker import deliver_pending
from bot.jobs.schedule import build_scheduler
from bot.metrics import exposition, installed_version
from bot.settings import Settings
from mappa_core.rules.planner import NudgeRules
from mappa_core.rules.vocabulary import Channel
from mappa_core.storage import db, outbox
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import Bot, SlackStandIn

RULES = NudgeRules()


@pytest.fixture
def json_log():
    """The process's logging as `mappa serve` sets it with MAPPA_LOG_FORMAT=json; the lines."""
    stream = io.StringIO()
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    logs.configure_logging("json", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in before[0]:
        root.addHandler(handler)
    root.setLevel(before[1])


def test_formatter_keeps_extra_fields_as_fields(json_log):
    log = logging.getLogger("mappa.test")
    with logs.context(job="deliver", run_id="r1"):
        log.warning("delivery failed", extra={"outbox_ids": [3, 4], "channel": "email"})
        log.info("set here wins", extra={"job": "digest"})
    log.error("error e1 in command", extra={"error_id": "e1", "request_id": "q1",
                                            "level": "not over the level"})
    log.info("no context")
    first, second, third, fourth = json_log()
    assert first == {**first, "job": "deliver", "run_id": "r1", "outbox_ids": [3, 4],
                     "channel": "email", "message": "delivery failed"}
    assert list(first)[:4] == ["time", "level", "logger", "message"]
    assert (second["job"], second["run_id"]) == ("digest", "r1")
    assert (third["error_id"], third["request_id"], third["level"]) == ("e1", "q1", "ERROR")
    assert set(fourth) == {"time", "level", "logger", "message"}


@pytest.mark.http
def test_a_scheduled_delivery_logs_its_job_run_outbox_ids_and_channel_as_fields(sqlite_engine,
                                                                                json_log):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    try:
        stand_in.fail_status = 500
        settings = Settings(slack_bot_token="xoxb-test", slack_api_url=stand_in.api_url())
        transport = SlackTransport.from_settings(settings)

        async def deliver(now):
            return await deliver_pending(sqlite_engine, settings, transport, now)

        scheduler = build_scheduler(sqlite_engine, RULES, deliver)
        asyncio.run(scheduler.get_job("escalations").func())
    finally:
        stand_in.close()
    lines = json_log()
    failed = [r for r in lines if r["message"].startswith("delivery failed")]
    assert failed, lines
    row_ids = {r["id"] for r in outbox.list_rows(sqlite_engine, limit=1000)}
    for r in failed:
        assert r["job"] == "deliver" and r["channel"] == "slack" and r["level"] == "WARNING"
        assert set(r["outbox_ids"]) <= row_ids and r["outbox_ids"]
        assert ",".join(map(str, r["outbox_ids"])) in r["message"]
    planned = next(r for r in lines if r["message"].startswith("job escalations: planned"))
    done = next(r for r in lines if r["message"].startswith("job deliver: sent"))
    # Each run has its id; every line of the delivery run carries the delivery's.
    assert planned["job"] == "escalations" and done["job"] == "deliver"
    assert planned["run_id"] != done["run_id"]
    assert {r["run_id"] for r in failed} == {done["run_id"]}


@pytest.mark.http
def test_the_error_id_a_person_is_given_is_a_field_of_the_log_line(engine, json_log):
    assert import_directory(engine, GRAMPIAN).ok
    bot = Bot(engine, __import__("datetime").date(2026, 11, 26))
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE invitation"))
        reply = bot.command("U1STAFF1", "status")
    finally:
        bot.close()
    shown = json.dumps(reply)
    error_id = shown.split("error id `")[1].split("`")[0]
    lines = [r for r in json_log() if r.get("error_id")]
    assert [r["error_id"] for r in lines] == [error_id]
    assert "traceback" in lines[0] and lines[0]["level"] == "ERROR"


def _series(text_: str, name: str) -> dict[tuple, float]:
    out = {}
    for line in text_.splitlines():
        if line.startswith(name + "{"):
            head, _, value = line.rpartition(" ")
            labels = dict(p.split("=", 1) for p in head[len(name) + 1:-1].split(","))
            out[tuple(sorted((k, v.strip('"')) for k, v in labels.items()))] = float(value)
    return out


def test_build_info_and_every_outbox_state_zero_included(sqlite_url):
    engine = db.make_engine(sqlite_url)
    db.ensure_schema(engine)
    out = exposition(engine).decode()
    assert f'mappa_build_info{{version="{installed_version()}"}} 1.0' in out
    rows = _series(out, "mappa_outbox_rows")
    expected = {(("channel", c.value), ("state", s)) for s in outbox.STATES for c in Channel}
    assert set(rows) == expected and set(rows.values()) == {0.0}
    # A row planned: its state counts 1, every other pair still 0.
    import datetime as dt

    import pandas as pd

    outbox.plan(engine, pd.DataFrame([{
        "rule": "digest", "item_key": "k", "stage": "s", "recipient_id": "p1", "channel": "slack",
        "address": "U0000001", "urgency": "normal", "group_key": "digest|p1|d",
        "dedupe_key": "d1", "area": "Grampian", "payload": {}}]),
        dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC), RULES)
    rows = _series(exposition(engine).decode(), "mappa_outbox_rows")
    assert rows.pop((("channel", "slack"), ("state", "pending"))) == 1.0
    assert set(rows.values()) == {0.0} and len(rows) == len(expected) - 1
