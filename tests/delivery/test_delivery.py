"""Outbox and delivery: once-only planning, retries, failures reported, two replicas and
a crash, with a real SMTP server (aiosmtpd), a Slack stand-in and real databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.channels.slack import SlackTransport
from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import run_planning_job
from bot.settings import Settings
from mappa_core.storage import outbox
from mappa_core.storage.importer import import_directory
from mappa_core.rules.planner import NudgeRules
from tests.conftest import GRAMPIAN
from tests.slack_harness import SlackStandIn, SmtpSink, free_port

LONDON = ZoneInfo("Europe/London")
RULES = NudgeRules()
NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=LONDON)


def settings_for(smtp_port: int, api_url: str = "http://127.0.0.1:9/api/") -> Settings:
    return Settings(slack_bot_token="xoxb-test", slack_api_url=api_url, smtp_host="127.0.0.1",
                    smtp_port=smtp_port, smtp_starttls=False, smtp_timeout=5,
                    mail_from="mappa-bot@example.org")


def email_notes(n: int, day: str = "2026-11-26") -> pd.DataFrame:
    """n chaser notifications to n different addresses: n groups, one message each."""
    return pd.DataFrame([{
        "rule": "chaser", "item_key": f"contribution:M{i}:housing", "stage": "missing",
        "recipient_id": f"email:contact{i}@example.org", "channel": "email",
        "address": f"contact{i}@example.org", "urgency": "normal",
        "group_key": f"chaser|email:contact{i}@example.org|{day}",
        "dedupe_key": f"chaser|contribution:M{i}:housing|missing|contact{i}|once",
        "area": "Grampian",
        "payload": {"kind": "contribution", "level": None, "ref": f"GRA-{i:04d}",
                    "meeting_id": f"M{i}", "agency": "housing", "deadline": "2026-11-20",
                    "overdue": True, "working_days_left": -4, "detail": None,
                    "item_key": f"contribution:M{i}:housing", "stage": "missing",
                    "area": "Grampian"},
    } for i in range(n)])


def statuses(engine) -> dict[str, int]:
    return outbox.counts(engine)


def test_planning_the_same_day_twice_inserts_nothing_new(engine):
    assert import_directory(engine, GRAMPIAN).ok
    first = run_planning_job(engine, "digest", NOW, RULES)
    again = run_planning_job(engine, "digest", NOW + dt.timedelta(hours=2), RULES)
    assert first.inserted == len(first.planned) > 0
    assert again.inserted == 0
    assert statuses(engine) == {"pending": first.inserted}


@pytest.mark.http
def test_no_digest_at_weekends_and_non_urgent_escalations_wait_for_monday(engine):
    assert import_directory(engine, GRAMPIAN).ok
    saturday = dt.datetime(2026, 11, 28, 10, 0, tzinfo=LONDON)
    assert run_planning_job(engine, "digest", saturday, RULES).skipped == "not a working day"
    run_planning_job(engine, "escalations", saturday, RULES)
    table = SQLModel.metadata.tables["outbox"]
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.urgency, table.c.not_before)).all()
    tuesday = dt.datetime(2026, 12, 1, 8, 30, tzinfo=LONDON)  # Monday is St Andrew's Day
    assert rows and all(
        nb == tuesday if urg == "normal" else nb == saturday for urg, nb in rows
    )
    stand_in = SlackStandIn()
    try:
        report = asyncio.run(deliver_pending(engine, settings_for(free_port(), stand_in.api_url()),
                                             _slack_transport(stand_in), saturday))
    finally:
        stand_in.close()
    urgent = sum(1 for urg, _ in rows if urg == "urgent")
    assert urgent > 0 and report.rows_sent == urgent  # only the urgent ones go at a weekend


@pytest.mark.http
def test_day_of_digests_goes_out_one_message_per_recipient(engine):
    assert import_directory(engine, GRAMPIAN).ok
    stand_in, smtp = SlackStandIn(), SmtpSink()
    try:
        for job in ("digest", "escalations"):
            run_planning_job(engine, job, NOW, RULES)
        settings = settings_for(smtp.port, stand_in.api_url())
        transport = SlackTransport(AsyncWebClient(token="xoxb-test", base_url=stand_in.api_url()))
        report = asyncio.run(deliver_pending(engine, settings, transport, NOW))
        dms = [c["body"] for c in stand_in.posts("/api/chat.postMessage")]
        # The chairs' digests, the co-ordinator's (last quarter's meeting audits not yet
        # recorded), the SOG chair's escalations and below-target alert.
        assert sorted(d["channel"] for d in dms) == ["U1CHAIR1", "U1CHAIR2", "U1COORD1", "U1SOG001", "U1SOG001"]
        # One e-mail per agency: Electronic Monitoring Scotland at its own address only.
        assert sorted(smtp.groups()) == [
            "chaser|email:ops@em.example|2026-11-26", "chaser|email:rmt@sps.example|2026-11-26",
        ]
        assert report.sent == {"slack": 5, "email": 2}
        assert set(statuses(engine)) == {"sent"}
        # Delivering again sends nothing.
        again = asyncio.run(deliver_pending(engine, settings, transport, NOW + dt.timedelta(minutes=5)))
        assert again.rows_sent == 0 and len(stand_in.posts("/api/chat.postMessage")) == 5
    finally:
        stand_in.close()
        smtp.close()


@pytest.mark.http
def test_smtp_down_then_back_delivers_everything(engine):
    port = free_port()
    outbox.plan(engine, email_notes(5), NOW, RULES)
    settings = settings_for(port)
    down = asyncio.run(deliver_pending(engine, settings, None, NOW))
    # Only the message in flight is charged an attempt; the rest wait, uncharged.
    assert (down.rows_sent, down.retrying, down.not_tried) == (0, 1, 4)
    assert statuses(engine) == {"pending": 5}
    assert sorted(r["attempts"] for r in outbox.list_rows(engine)) == [0, 0, 0, 0, 1]
    smtp = SmtpSink(port=port)
    try:
        # Backoff: nothing is retried before the next attempt time ...
        early = asyncio.run(deliver_pending(engine, settings, None, NOW + dt.timedelta(seconds=30)))
        assert early.rows_sent == 0
        # ... and everything arrives after it.
        later = asyncio.run(deliver_pending(engine, settings, None, NOW + dt.timedelta(minutes=2)))
        assert later.rows_sent == 5
        assert len(smtp.groups()) == 5 == len(set(smtp.groups()))
    finally:
        smtp.close()


@pytest.mark.http
def test_a_second_run_never_takes_the_rows_a_live_run_is_still_sending(engine):
    """Run A sends slowly (a slow SMTP server); run B starts, on the same clock, after A's
    claim would count as stale. A renews its claim while it sends, so B releases nothing
    and each email goes once; without the renewal B re-sent every one A had not finished
    (found by the attacker with a 10-minute window; here the window is 1 s)."""
    import threading

    from mappa_core.storage import db

    outbox.plan(engine, email_notes(4), NOW, RULES)
    smtp = SmtpSink(delay=1.0)  # each message held a second: A runs about 4 s
    settings = settings_for(smtp.port)
    quick = dict(stale_after=dt.timedelta(seconds=1), renew_every=0.2)
    results = {}

    def run_a():
        other = db.make_engine(str(engine.url))  # another worker: its own connections
        results["a"] = asyncio.run(deliver_pending(other, settings, None, NOW, **quick))
        other.dispose()

    try:
        a = threading.Thread(target=run_a)
        a.start()
        time.sleep(2.5)  # A is still sending; its claim was made 2.5 s ago
        b = asyncio.run(deliver_pending(engine, settings, None,
                                        NOW + dt.timedelta(seconds=2.5), **quick))
        a.join(30)
        assert b.rows_sent == 0 and results["a"].rows_sent == 4
        assert sorted(smtp.groups()) == sorted(set(smtp.groups())) and len(smtp.groups()) == 4
        assert statuses(engine) == {"sent": 4}
    finally:
        smtp.close()


def _one_slack_note(engine, address="U1CHAIR1"):
    notes = email_notes(1)
    notes["rule"] = "digest"
    notes["channel"] = "slack"
    notes["address"] = address
    notes["recipient_id"] = "g-chair-1"
    notes["group_key"] = "digest|g-chair-1|2026-11-26"
    outbox.plan(engine, notes, NOW, RULES)


def _slack_transport(stand_in):
    return SlackTransport(AsyncWebClient(token="xoxb-test", base_url=stand_in.api_url()))


@pytest.mark.http
def test_slack_rate_limit_is_retried_after_retry_after(engine):
    stand_in = SlackStandIn()
    try:
        stand_in.script["/api/chat.postMessage"] = [(429, {"Retry-After": "120"}, {"ok": False, "error": "ratelimited"})]
        _one_slack_note(engine)
        settings = settings_for(free_port(), stand_in.api_url())
        first = asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), NOW))
        assert first.retrying == 1
        before = asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), NOW + dt.timedelta(seconds=100)))
        assert before.rows_sent == 0
        after = asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), NOW + dt.timedelta(seconds=121)))
        assert after.rows_sent == 1
    finally:
        stand_in.close()


@pytest.mark.http
def test_slack_server_errors_are_retried(engine):
    stand_in = SlackStandIn()
    try:
        stand_in.script["/api/chat.postMessage"] = [(500, {}, {"ok": False})] * 2
        _one_slack_note(engine)
        settings = settings_for(free_port(), stand_in.api_url())
        t = NOW
        for _ in range(2):
            assert asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), t)).retrying == 1
            t += dt.timedelta(minutes=5)
        assert asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), t)).rows_sent == 1
    finally:
        stand_in.close()


@pytest.mark.http
def test_permanent_failure_stops_and_reaches_the_coordinators_next_digest(engine):
    assert import_directory(engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    try:
        stand_in.script["/api/chat.postMessage"] = [(200, {}, {"ok": False, "error": "channel_not_found"})]
        _one_slack_note(engine, address="UGONE")
        settings = settings_for(free_port(), stand_in.api_url())
        report = asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), NOW))
        assert report.failed == 1 and statuses(engine) == {"dead": 1}
        tomorrow = NOW + dt.timedelta(days=1)
        run_planning_job(engine, "digest", tomorrow, RULES)
        table = SQLModel.metadata.tables["outbox"]
        with engine.connect() as conn:
            problems = conn.execute(select(table.c.recipient_id, table.c.group_key).where(
                table.c.rule == "delivery_problem")).all()
        assert problems == [("g-coord", "digest|g-coord|2026-11-27")]
        asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), tomorrow))
        coord = [c["body"] for c in stand_in.posts("/api/chat.postMessage") if c["body"]["channel"] == "U1COORD1"]
        assert "Could not deliver a digest message" in str(coord[0]["blocks"])
        # Reported once only.
        run_planning_job(engine, "digest", tomorrow + dt.timedelta(days=1), RULES)
        with engine.connect() as conn:
            assert len(conn.execute(select(table.c.id).where(table.c.rule == "delivery_problem")).all()) == 1
    finally:
        stand_in.close()


# ------------------------------------------------------------ processes: replicas, crash


def _deliver_process(db_url: str, smtp_port: int, when: str) -> subprocess.Popen:
    env = {**os.environ, "MAPPA_DATABASE_URL": db_url, "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_port), "SMTP_STARTTLS": "no", "SMTP_TIMEOUT": "10",
           "MAIL_FROM": "mappa-bot@example.org", "SLACK_BOT_TOKEN": "xoxb-test",
           "SLACK_API_URL": "http://127.0.0.1:9/api/"}
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "jobs", "run", "deliver", "--as-of", when],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.http
@pytest.mark.process
def test_two_replicas_racing_deliver_every_message_exactly_once(postgres_url):
    from mappa_core.storage import db

    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    outbox.plan(engine, email_notes(400), NOW, RULES)
    smtp = SmtpSink(delay=0.02)  # slow enough that both workers are busy at once
    try:
        procs = [_deliver_process(postgres_url, smtp.port, "2026-11-26T09:00") for _ in range(2)]
        outputs = [p.communicate(timeout=240) for p in procs]
        assert all(p.returncode == 0 for p in procs), outputs
        groups = smtp.groups()
        assert len(groups) == 400 == len(set(groups)), "a message went out twice or not at all"
        assert statuses(engine) == {"sent": 400}
        # Both replicas did part of the work.
        assert all("delivered" in out and "delivered 0 " not in out for out, _ in outputs), outputs
    finally:
        smtp.close()
        engine.dispose()


@pytest.mark.http
def test_a_replica_arriving_mid_claim_waits_for_it_instead_of_giving_up(postgres_url):
    """SKIP LOCKED passes over rows another replica is claiming; finding every due row
    locked means "busy", not "nothing to send" (the race the two-replica test hit)."""
    import threading

    from mappa_core.storage import db

    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    outbox.plan(engine, email_notes(5), NOW, RULES)
    smtp = SmtpSink()
    table = SQLModel.metadata.tables["outbox"]
    holder = engine.connect()
    try:
        locking = holder.begin()
        assert len(holder.execute(select(table.c.id).with_for_update()).all()) == 5
        threading.Timer(0.5, locking.commit).start()  # the other replica's claim commits
        report = asyncio.run(deliver_pending(engine, settings_for(smtp.port), None, NOW))
        assert report.rows_sent == 5 and len(smtp.messages) == 5
        assert statuses(engine) == {"sent": 5}
    finally:
        holder.close()
        smtp.close()
        engine.dispose()


@pytest.mark.http
@pytest.mark.process
def test_worker_killed_mid_batch_loses_nothing_and_repeats_at_most_one(db_url):
    from mappa_core.storage import db

    engine = db.make_engine(db_url)
    db.ensure_schema(engine)
    outbox.plan(engine, email_notes(120), NOW, RULES)
    smtp = SmtpSink(delay=0.03)
    try:
        proc = _deliver_process(db_url, smtp.port, "2026-11-26T09:00")
        deadline = time.monotonic() + 60
        while len(smtp.messages) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        received_before = len(smtp.messages)
        assert 30 <= received_before < 120
        assert statuses(engine).get("sending", 0) > 0  # claims left by the dead worker
        # A restart more than 10 minutes later takes the stale claims back and finishes.
        proc = _deliver_process(db_url, smtp.port, "2026-11-26T09:15")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        groups = smtp.groups()
        assert set(groups) == {f"chaser|email:contact{i}@example.org|2026-11-26" for i in range(120)}
        assert len(groups) - len(set(groups)) <= 1, "more than the in-flight message repeated"
        assert statuses(engine) == {"sent": 120}
    finally:
        smtp.close()
        engine.dispose()


@pytest.mark.http
def test_quarterly_reminder_by_email_carries_the_pack(engine):
    import email
    import email.policy

    assert import_directory(engine, GRAMPIAN).ok
    from sqlalchemy import text

    with engine.begin() as conn:  # the co-ordinator reads email, not Slack
        conn.execute(text("UPDATE person SET slack_user_id = NULL WHERE person_id = 'g-coord'"))
    run_planning_job(engine, "quarterly-review", NOW, RULES)
    smtp, stand_in = SmtpSink(), SlackStandIn()
    try:
        asyncio.run(deliver_pending(engine, settings_for(smtp.port, stand_in.api_url()),
                                    _slack_transport(stand_in), NOW))
        mail = email.message_from_bytes(smtp.messages[0].original_content, policy=email.policy.default)
        assert mail["To"] == "niall@grampian.example"
        assert "SOG quarterly review due: 2026-27-Q2" in mail["Subject"]
        files = [p for p in mail.iter_attachments()]
        assert [f.get_filename() for f in files] == ["mappa-pack-grampian-2026-27-Q2.html"]
        assert files[0].get_content().count("<svg") == 10
        dm = stand_in.posts("/api/chat.postMessage")[0]["body"]
        # No Slack message names a command-line command (Slack users have none).
        assert dm["channel"] == "U1SOG001" and "pack for 2026-27-Q2" in str(dm["blocks"])
        assert "`mappa " not in str(dm["blocks"])
    finally:
        smtp.close()
        stand_in.close()


def test_every_kind_of_notice_renders_for_slack_and_email(engine):
    """Plan every job on a day with something of each kind, then render each group both ways."""
    from bot.channels import render as render_group
    from mappa_core.storage import audits_and_scrs

    assert import_directory(engine, GRAMPIAN).ok
    rec = audits_and_scrs.add_recommendation(engine, audits_and_scrs.add_scr(engine, "R", "Grampian", None), "x")
    audits_and_scrs.add_action(engine, rec, "em-provider", dt.date(2026, 11, 1), "Protocol")
    monday = dt.datetime(2027, 1, 11, 9, 0, tzinfo=LONDON)  # Q4: audit reminders too
    for job in ("digest", "escalations", "weekly-summary", "quarterly-review"):
        run_planning_job(engine, job, monday, RULES)
    claimed = outbox.claim(engine, monday + dt.timedelta(hours=1), max_groups=1000)
    rules_seen = {r["rule"] for rows in claimed.groups.values() for r in rows}
    assert rules_seen >= {"digest", "chaser", "escalation", "below_target", "weekly", "quarterly",
                          "audit_reminder", "scr"}
    for key, rows in claimed.groups.items():
        email_only = key.startswith("chaser|")  # agency contacts are reached by email
        for channel in ("email",) if email_only else ("slack", "email"):
            message = render_group([{**r, "channel": channel} for r in rows])
            if channel == "slack":
                assert message.blocks and len(message.blocks) <= 50
            else:
                assert message.subject and message.text.strip() and message.html.startswith("<!doctype html>")


def _pg_cluster():
    """The local PostgreSQL cluster's version, if this machine can restart it."""
    import shutil
    from pathlib import Path

    if not (shutil.which("pg_ctlcluster") and shutil.which("pg_isready") and os.geteuid() == 0):
        return None
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
    return versions[-1] if versions else None


@pytest.mark.http
@pytest.mark.process
def test_postgresql_restart_during_delivery_loses_nothing(postgres_url):
    """Restart the real PostgreSQL server while a worker is sending: the worker fails, the
    next run finishes the job, every message arrives, at most the in-flight one twice."""
    from sqlalchemy.engine import make_url

    from mappa_core.storage import db

    version = _pg_cluster()
    if version is None or make_url(postgres_url).host not in ("127.0.0.1", "localhost"):
        pytest.skip("needs root and the local cluster's pg_ctlcluster to restart PostgreSQL")
    engine = db.make_engine(postgres_url)
    db.ensure_schema(engine)
    outbox.plan(engine, email_notes(150), NOW, RULES)
    smtp = SmtpSink(delay=0.03)
    try:
        proc = _deliver_process(postgres_url, smtp.port, "2026-11-26T09:00")
        deadline = time.monotonic() + 60
        while len(smtp.messages) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                       check=True, capture_output=True, timeout=120)
        for _ in range(120):
            if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0:
                break
            time.sleep(0.5)
        proc.wait(timeout=120)
        assert proc.returncode != 0 or len(smtp.messages) == 150  # it lost its database
        engine.dispose()
        proc = _deliver_process(postgres_url, smtp.port, "2026-11-26T09:15")
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        groups = smtp.groups()
        assert set(groups) == {f"chaser|email:contact{i}@example.org|2026-11-26" for i in range(150)}
        assert len(groups) - len(set(groups)) <= 1
        assert statuses(engine) == {"sent": 150}
    finally:
        smtp.close()
        engine.dispose()
