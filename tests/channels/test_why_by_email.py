"""The below-target alert and the weekly summary say why by e-mail too, read as received
(a real SMTP server, aiosmtpd): the SOG chair of the Grampian records with no Slack id."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
from email import policy
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import run_planning_job
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.delivery.test_delivery import settings_for
from tests.slack_harness import SmtpSink

MONDAY = dt.datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("Europe/London"))


@pytest.mark.http
def test_the_sog_chair_reads_why_in_the_alert_and_the_summary_by_email(sqlite_engine):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    with sqlite_engine.begin() as conn:  # the SOG chair by e-mail
        conn.execute(text("UPDATE person SET slack_user_id = NULL WHERE person_id = 'g-sog'"))
    for job in ("escalations", "weekly-summary"):
        run_planning_job(sqlite_engine, job, MONDAY, NudgeRules())
    smtp = SmtpSink()
    try:
        asyncio.run(deliver_pending(sqlite_engine, settings_for(smtp.port), None, MONDAY))
        received = {}
        for m in smtp.messages:
            if m.rcpt_tos != ["kirsty@grampian.example"]:
                continue
            msg = email.message_from_bytes(m.content, policy=policy.default)
            received[msg["Subject"]] = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    finally:
        smtp.close()
    alert = next(body for subject, body in received.items() if "below target" in subject)
    summary = next(body for subject, body in received.items() if "weekly summary" in subject)
    # Level 3 reviews below target this quarter: its late reviews are of Calum Chair's cases.
    line = next(ln for ln in alert.splitlines() if ln.startswith("- Level 3 cases reviewed"))
    assert "pending. " in line and "chaired by Calum Chair" in line.replace("Chaired", "chaired")
    assert any("chaired by Calum Chair" in ln.replace("Chaired", "chaired")
               for ln in summary.splitlines() if ln.startswith("- Level 3 cases reviewed"))
