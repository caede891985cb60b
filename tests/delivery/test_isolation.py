"""One bad row never stops delivery (issue 12 finding 2) and email that mail systems accept
(issue 11 item 9): a real SMTP server (aiosmtpd, plain and STARTTLS with a self-signed
certificate), the Slack stand-in, real databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import logging
import ssl
import subprocess

import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import run_planning_job
from bot.settings import Settings, SettingsError, load_settings
from mappa_core.storage import outbox
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import SlackStandIn, SmtpSink, free_port
from tests.delivery.test_delivery import NOW, RULES, _slack_transport, email_notes, settings_for

POISON = "ailsa@grampian.example\r\nBcc: leak@evil.example"


def _failure_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "mappa.delivery" and "delivery failed" in r.getMessage()]


def _outbox_rows(engine, **where):
    table = SQLModel.metadata.tables["outbox"]
    query = select(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return conn.execute(query).mappings().all()


@pytest.mark.http
def test_one_poisoned_address_in_nineteen_fails_alone_and_is_reported_once(engine, caplog):
    """A chair's email holds CR/LF and a Bcc (written straight into the database, as the
    importer refuses it): 18 of the 19 messages arrive, that one is dead with its reason,
    logged once, and the co-ordinator is told once, in the next digest."""
    caplog.set_level(logging.INFO, logger="mappa.delivery")
    assert import_directory(engine, GRAMPIAN).ok
    with engine.begin() as conn:
        conn.execute(text("UPDATE person SET email = :e, slack_user_id = NULL "
                          "WHERE person_id = 'g-chair-1'"), {"e": POISON})
    for job in ("digest", "escalations"):
        run_planning_job(engine, job, NOW, RULES)
    outbox.plan(engine, email_notes(12), NOW, RULES)
    groups = {r["group_key"] for r in _outbox_rows(engine)}
    # 4 Slack DMs, 2 agency chasers (one e-mail an agency), chair 1's email, 12 more.
    assert len(groups) == 19

    stand_in, smtp = SlackStandIn(), SmtpSink()
    try:
        settings = settings_for(smtp.port, stand_in.api_url())
        report = asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), NOW))
        dms = stand_in.posts("/api/chat.postMessage")
        assert len(dms) == 4 and len(smtp.messages) == 14
        assert report.sent == {"slack": 4, "email": 14} and report.retrying == 0
        assert not any("evil" in rcpt for m in smtp.messages for rcpt in m.rcpt_tos)
        assert not any(b"evil" in m.original_content for m in smtp.messages)
        poisoned = _outbox_rows(engine, recipient_id="g-chair-1")
        assert poisoned and {r["status"] for r in poisoned} == {"dead"}
        assert report.failed == len(poisoned)
        assert all("control character" in r["last_error"] for r in poisoned)
        assert {r["status"] for r in _outbox_rows(engine)} == {"sent", "dead"}
        lines = _failure_lines(caplog)
        assert len(lines) == 1 and "g-chair-1" in lines[0] and "given up" in lines[0]
        assert "GRA-" not in lines[0] and "evil" not in lines[0] and "\n" not in lines[0]

        # The next working day: the co-ordinator's digest says so (chair 1's new digest
        # fails the same way and is logged again) ...
        friday = NOW + dt.timedelta(days=1)
        run_planning_job(engine, "digest", friday, RULES)
        asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), friday))
        coord = [c["body"] for c in stand_in.posts("/api/chat.postMessage")
                 if c["body"]["channel"] == "U1COORD1"]
        told = [c for c in coord if "Could not deliver" in str(c["blocks"])]
        assert len(told) == 1
        assert "g-chair-1" in str(told[0]["blocks"]) and "control character" in str(told[0]["blocks"])
        assert len(_failure_lines(caplog)) == 2
        # ... and on the working days after it, not again: the same failure for the same
        # person is told once.
        for day in (4, 5):
            later = NOW + dt.timedelta(days=day)
            run_planning_job(engine, "digest", later, RULES)
            asyncio.run(deliver_pending(engine, settings, _slack_transport(stand_in), later))
        run_planning_job(engine, "digest", NOW + dt.timedelta(days=6), RULES)
        problems = _outbox_rows(engine, rule="delivery_problem")
        assert len(problems) == 1
        assert all(r["reported"] for r in _outbox_rows(engine, status="dead"))
        assert not _outbox_rows(engine, status="sending")
    finally:
        stand_in.close()
        smtp.close()


@pytest.mark.parametrize("address, reason", [
    ("rmt@sps.example, spy@evil.example", "more than one address"),
    ("C0GENERAL", "channel"),
])
@pytest.mark.http
def test_an_address_that_is_not_one_recipient_is_never_used(sqlite_engine, caplog, address, reason):
    """Rows already in the outbox (planned before validation existed) are refused at
    delivery: a list of addresses is not sent to both, a channel id is not posted to."""
    caplog.set_level(logging.INFO, logger="mappa.delivery")
    notes = email_notes(3)
    if address.startswith("C"):
        notes.loc[0, "channel"] = "slack"
    notes.loc[0, "address"] = address
    outbox.plan(sqlite_engine, notes, NOW, RULES)
    stand_in, smtp = SlackStandIn(), SmtpSink()
    try:
        report = asyncio.run(deliver_pending(sqlite_engine, settings_for(smtp.port, stand_in.api_url()),
                                             _slack_transport(stand_in), NOW))
        assert report.failed == 1 and report.rows_sent == 2
        assert len(smtp.messages) == 2 and not stand_in.posts("/api/chat.postMessage")
        assert not any("evil" in rcpt for m in smtp.messages for rcpt in m.rcpt_tos)
        dead = _outbox_rows(sqlite_engine, status="dead")
        assert len(dead) == 1 and reason in dead[0]["last_error"]
        assert len(_failure_lines(caplog)) == 1
    finally:
        stand_in.close()
        smtp.close()


@pytest.mark.http
def test_slack_refusals_that_retrying_cannot_help_are_permanent(sqlite_engine, caplog):
    caplog.set_level(logging.INFO, logger="mappa.delivery")
    notes = email_notes(3)
    notes["channel"], notes["rule"] = "slack", "digest"
    notes["address"] = ["UAAA1", "UBBB2", "UCCC3"]
    notes["recipient_id"] = ["p1", "p2", "p3"]
    notes["group_key"] = "digest|" + notes["recipient_id"] + "|2026-11-26"
    outbox.plan(sqlite_engine, notes, NOW, RULES)
    stand_in = SlackStandIn()
    stand_in.script["/api/chat.postMessage"] = [
        (200, {}, {"ok": False, "error": "invalid_blocks"}),
        (200, {}, {"ok": False, "error": "user_not_found"}),
    ]
    try:
        report = asyncio.run(deliver_pending(sqlite_engine, settings_for(free_port(), stand_in.api_url()),
                                             _slack_transport(stand_in), NOW))
        assert (report.failed, report.rows_sent, report.retrying) == (2, 1, 0)
        errors = sorted(r["last_error"] for r in _outbox_rows(sqlite_engine, status="dead"))
        assert errors == ["Slack: invalid_blocks", "Slack: user_not_found"]
        assert len(_failure_lines(caplog)) == 2
    finally:
        stand_in.close()


@pytest.mark.http
def test_a_message_that_cannot_be_rendered_fails_alone(sqlite_engine, caplog):
    caplog.set_level(logging.INFO, logger="mappa.delivery")
    notes = email_notes(3)
    notes.at[1, "payload"] = {"kind": "no-such-kind", "ref": "GRA-0001"}
    outbox.plan(sqlite_engine, notes, NOW, RULES)
    smtp = SmtpSink()
    try:
        report = asyncio.run(deliver_pending(sqlite_engine, settings_for(smtp.port), None, NOW))
        assert (report.failed, report.rows_sent) == (1, 2) and len(smtp.messages) == 2
        dead = _outbox_rows(sqlite_engine, status="dead")
        assert len(dead) == 1 and "could not prepare" in dead[0]["last_error"]
        lines = _failure_lines(caplog)
        assert len(lines) == 1 and "GRA-0001" not in lines[0]
    finally:
        smtp.close()


@pytest.mark.http
def test_a_claim_that_keeps_killing_the_worker_is_given_up(sqlite_engine, caplog):
    """The stale-claim release counts as an attempt: a row left `sending` again and again
    (a worker that dies on it each time) ends dead and reported, not claimed for ever."""
    caplog.set_level(logging.INFO, logger="mappa.delivery")
    outbox.plan(sqlite_engine, email_notes(1), NOW, RULES)
    when = NOW
    for _ in range(outbox.MAX_ATTEMPTS):
        claimed = outbox.claim(sqlite_engine, when)  # ... and the worker dies
        assert len(claimed.groups) == 1
        when += dt.timedelta(minutes=11)
        asyncio.run(deliver_pending(sqlite_engine, settings_for(free_port()), None, when,
                                    max_rounds=0))
    rows = _outbox_rows(sqlite_engine)
    assert [r["status"] for r in rows] == ["dead"] and "stopped while sending" in rows[0]["last_error"]
    assert len(outbox.unreported_failures(sqlite_engine)) == 1
    assert len(_failure_lines(caplog)) == 1


# ------------------------------------------------------------------ email headers and TLS


@pytest.mark.http
def test_every_email_carries_date_message_id_auto_submitted_and_reply_to(engine):
    assert import_directory(engine, GRAMPIAN).ok
    notes = email_notes(2)
    notes.loc[1, "area"] = "Nowhere"  # no co-ordinator there, nor a national one
    outbox.plan(engine, notes, NOW, RULES)
    smtp = SmtpSink()
    try:
        asyncio.run(deliver_pending(engine, settings_for(smtp.port), None, NOW))
        mails = sorted((email.message_from_bytes(m.original_content, policy=email.policy.default)
                        for m in smtp.messages), key=lambda m: m["To"])
        assert len(mails) == 2
        for mail in mails:
            assert mail["Date"].datetime.tzinfo is not None
            assert mail["Message-ID"].startswith("<") and mail["Message-ID"].endswith("@example.org>")
            assert mail["Auto-Submitted"] == "auto-generated"
        assert mails[0]["Reply-To"] == "niall@grampian.example"  # Grampian's co-ordinator
        assert mails[1]["Reply-To"] == "mappa-bot@example.org"
        assert mails[0]["Message-ID"] != mails[1]["Message-ID"]
    finally:
        smtp.close()


def tls_sink(cert: str, key: str) -> SmtpSink:
    """The SMTP sink offering STARTTLS with the given certificate, and requiring it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return SmtpSink(tls_context=context)


@pytest.fixture
def self_signed(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)


@pytest.mark.http
@pytest.mark.process
def test_an_untrusted_smtp_certificate_is_permanent_and_names_smtp_ca_file(sqlite_engine, self_signed, caplog):
    caplog.set_level(logging.INFO, logger="mappa.delivery")
    cert, key = self_signed
    outbox.plan(sqlite_engine, email_notes(2), NOW, RULES)
    smtp = tls_sink(cert, key)
    try:
        base = dict(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=True,
                    smtp_timeout=5, mail_from="mappa-bot@example.org")
        report = asyncio.run(deliver_pending(sqlite_engine, Settings(**base), None, NOW))
        assert (report.failed, report.retrying, report.rows_sent) == (2, 0, 0)
        dead = _outbox_rows(sqlite_engine, status="dead")
        assert len(dead) == 2 and all("SMTP_CA_FILE" in r["last_error"] for r in dead)
        lines = _failure_lines(caplog)
        assert len(lines) == 2 and all("SMTP_CA_FILE" in line for line in lines)
        assert not smtp.messages

        # With SMTP_CA_FILE pointing at the certificate, the next messages are delivered.
        again = email_notes(2, day="2026-11-27")
        again["dedupe_key"] += "-again"
        outbox.plan(sqlite_engine, again, NOW, RULES)
        trusted = Settings(**base, smtp_ca_file=cert)
        report = asyncio.run(deliver_pending(sqlite_engine, trusted, None, NOW))
        assert report.rows_sent == 2 and len(smtp.messages) == 2
    finally:
        smtp.close()


@pytest.mark.process
def test_smtp_ca_file_setting(tmp_path, monkeypatch, self_signed):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMTP_CA_FILE", self_signed[0])
    assert load_settings().smtp_ca_file == self_signed[0]
    monkeypatch.setenv("SMTP_CA_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(SettingsError, match="SMTP_CA_FILE"):
        load_settings()
    monkeypatch.setenv("SMTP_CA_FILE", "")
    assert load_settings().smtp_ca_file == ""
