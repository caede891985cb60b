"""`/mappa escalate` through the outbox and the delivery seam: its messages are outbox rows
delivered at once, and the reply tells the truth about each of them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.server import build_asgi
from bot.settings import Settings
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import (
    SIGNING_SECRET, BotServer, SlackStandIn, SmtpSink, command_body, free_port, post, sign,
)
from tests.channels.slack.test_commands_and_buttons import CHAIR1, SOG, TODAY, text_of

pytestmark = pytest.mark.http

TEXT = "escalate Housing placement for em-provider tag failed"


@pytest.fixture
def bot(sqlite_engine, request):
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    smtp = None if getattr(request, "param", "") in ("smtp-down", "no-smtp") else SmtpSink()
    settings = Settings(work_processes=0, database_url=str(sqlite_engine.url),
                        slack_bot_token="xoxb-test", slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=stand_in.api_url(),
                        smtp_host="" if getattr(request, "param", "") == "no-smtp" else "127.0.0.1",
                        smtp_port=smtp.port if smtp else free_port(), smtp_starttls=False,
                        mail_from="mappa-bot@grampian.example", smtp_timeout=5)
    server = BotServer(build_asgi(settings, sqlite_engine, today=lambda: TODAY))

    class Bot:
        engine, slack, mail = sqlite_engine, stand_in, smtp

        n = 0

        def command(self, user, text, trigger_id):
            self.n += 1
            name = f"r{self.n}"
            body = command_body(user, text, stand_in.response_url(name), trigger_id)
            status, out, _ = post(server.url + "/slack/events", body, sign(body))
            assert status == 200, out
            if out:  # answered in the acknowledgement itself (a replay: "already done")
                return text_of(json.loads(out))
            return text_of(stand_in.wait_for(f"/response/{name}")[0]["body"])

        def outbox(self):
            table = SQLModel.metadata.tables["outbox"]
            with sqlite_engine.connect() as conn:
                return sorted((r.channel, r.recipient_id, r.status) for r in conn.execute(
                    select(table).where(table.c.rule == "urgent_issue")))

    yield Bot()
    server.close()
    stand_in.close()
    if smtp:
        smtp.close()


def test_escalate_messages_are_outbox_rows_sent_once(bot):
    reply = bot.command(CHAIR1, TEXT, "t1")
    assert "Told: Kirsty SOG (Slack), em-provider (email), em-provider (email)." in reply
    assert "Not reached" not in reply
    assert bot.outbox() == [("email", "email:lorna@em.example", "sent"),
                            ("email", "email:ops@em.example", "sent"),
                            ("slack", "g-sog", "sent")]
    # The same request again (its trigger_id) is not applied again (issue 22, item 5).
    assert "Already done" in bot.command(CHAIR1, TEXT, "t1")
    assert len(bot.outbox()) == 3 and len(bot.slack.posts("/api/chat.postMessage")) == 1
    assert len(bot.mail.messages) == 2


def test_a_sog_chair_not_reached_on_slack_is_emailed_through_the_outbox(bot):
    bot.slack.script["/api/chat.postMessage"] = [(200, {}, {"ok": False, "error": "user_not_found"})]
    reply = bot.command(CHAIR1, TEXT, "t2")
    assert "Told: Kirsty SOG (email), em-provider (email), em-provider (email)." in reply
    assert "Not reached" not in reply
    assert ("slack", "g-sog", "dead") in bot.outbox() and ("email", "g-sog", "sent") in bot.outbox()
    assert sorted(r for m in bot.mail.messages for r in m.rcpt_tos) == [
        "kirsty@grampian.example", "lorna@em.example", "ops@em.example"]
    assert bot.slack.posts("/api/chat.postMessage")[0]["body"]["channel"] == SOG


@pytest.mark.parametrize("bot", ["smtp-down"], indirect=True)
def test_the_reply_says_who_was_not_reached_and_the_outbox_retries_them(bot):
    reply = bot.command(CHAIR1, TEXT, "t3")
    assert "Told: Kirsty SOG (Slack)." in reply
    assert ":warning: Not reached: em-provider (email): " in reply and "(will retry)" in reply
    assert "Please phone them" in reply
    assert bot.outbox() == [("email", "email:lorna@em.example", "pending"),
                            ("email", "email:ops@em.example", "pending"),
                            ("slack", "g-sog", "sent")]


@pytest.mark.parametrize("bot", ["no-smtp"], indirect=True)
def test_with_no_smtp_host_the_reply_says_the_email_waits_and_why(bot):
    """Email not set up: the agencies' emails are not attempted but wait; the person raising
    the issue is told why ("not sent" alone said nothing) and to phone them."""
    reply = bot.command(CHAIR1, TEXT, "t5")
    assert "Told: Kirsty SOG (Slack)." in reply
    assert (":warning: Not reached: em-provider (email): SMTP_HOST is not set; it goes out "
            "once that is set") in reply, reply
    assert "will retry" not in reply
    assert "Please phone them" in reply
    assert bot.outbox() == [("email", "email:lorna@em.example", "pending"),
                            ("email", "email:ops@em.example", "pending"),
                            ("slack", "g-sog", "sent")]
