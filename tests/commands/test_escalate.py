"""`/mappa escalate` (issue 23.6): the SOG chair is told at once, whole; agencies only as
the raiser chooses them from the menu in the reply (never from the words of the text), each
by one e-mail, whole; bad input answered in words with nothing written. Over signed HTTP,
with a local Slack stand-in and a real SMTP server (aiosmtpd): the e-mails read as
received."""

from __future__ import annotations

import email
import json
import html
import re
from email import policy

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.channels.slack.limits import ELLIPSIS, problems
from bot.server import build_asgi
from bot.settings import Settings
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import (
    SIGNING_SECRET, BotServer, SlackStandIn, SmtpSink, action_body, command_body, free_port,
    post, sign,
)
from tests.channels.slack.test_commands_and_buttons import CHAIR1, CHAIR2, SOG, TODAY

pytestmark = pytest.mark.http

ISSUE = ("Housing placement for SYN-0001564 collapsed tonight; the police were not at the "
         "last meeting")
POLICE, EM = "north-mappa@police.example", "ops@em.example"


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

        def _post(self, body: str, name: str) -> dict:
            status, out, _ = post(server.url + "/slack/events", body, sign(body))
            assert status == 200, out
            if out:  # answered in the acknowledgement itself (a replay: "already done")
                return json.loads(out)
            return stand_in.wait_for(f"/response/{name}")[0]["body"]

        def command(self, user, text, trigger_id=None) -> dict:
            self.n += 1
            name = f"r{self.n}"
            return self._post(command_body(user, text, stand_in.response_url(name), trigger_id),
                              name)

        def choose(self, user, issue_id, agencies: list[str]) -> dict:
            """Tick `agencies` in the reply's menu and press its button."""
            self.n += 1
            name = f"r{self.n}"
            state = {f"escalate:{issue_id}": {"escalate_choose": {
                "type": "multi_static_select",
                "selected_options": [{"value": a} for a in agencies]}}}
            return self._post(action_body(user, "escalate_agencies", str(issue_id),
                                          stand_in.response_url(name), state=state), name)

        def outbox(self):
            table = SQLModel.metadata.tables["outbox"]
            with sqlite_engine.connect() as conn:
                return sorted((r.channel, r.recipient_id, r.status) for r in conn.execute(
                    select(table).where(table.c.rule == "urgent_issue")))

        def issues(self):
            table = SQLModel.metadata.tables["urgent_issue"]
            with sqlite_engine.connect() as conn:
                return [dict(r) for r in conn.execute(select(table)).mappings()]

        def received(self) -> list[tuple[list[str], str, str]]:
            """Each e-mail as received: (recipients, subject, plain-text part)."""
            out = []
            for m in self.mail.messages:
                msg = email.message_from_bytes(m.content, policy=policy.default)
                out.append((sorted(m.rcpt_tos), msg["Subject"],
                            msg.get_body(("plain",)).get_content().replace("\r\n", "\n")))
            return out

        def dms(self) -> list[dict]:
            return [p["body"] for p in stand_in.posts("/api/chat.postMessage")]

    yield Bot()
    server.close()
    stand_in.close()
    if smtp:
        smtp.close()


def words(reply: dict) -> str:
    """What a person reads in a reply: every text in its blocks (Slack's entities decoded)."""
    texts = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                texts.append(node["text"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(reply.get("blocks", []))
    return html.unescape("\n".join(texts))


def issue_in(dm_blocks: list) -> str:
    """The issue's text as a DM shows it: its plain-text sections, decoded and joined, the
    markers of a mid-line cut taken out."""
    pieces = [html.unescape(b["text"]["text"]) for b in dm_blocks
              if b["type"] == "section" and b["text"]["type"] == "plain_text"]
    joined = ""
    for piece in pieces:
        if joined.endswith(" " + ELLIPSIS):
            joined = joined[:-2]
            piece = piece.removeprefix(ELLIPSIS + " ")
        elif joined:
            joined += "\n"
        joined += piece
    return joined


def test_the_sog_chair_is_told_at_once_and_no_agency_is_e_mailed_from_the_words(bot):
    reply = bot.command(CHAIR1, f"escalate {ISSUE}", "t1")
    said = words(reply)
    assert "Raised as urgent issue #1." in said and "Told now: Kirsty SOG (Slack)." in said
    assert "none has been e-mailed" in said and "No agency is e-mailed unless you choose it" in said
    assert problems(reply["blocks"]) == []  # slack_sdk's models accept the reply
    menu = next(e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["type"] == "multi_static_select")
    assert {"text": {"type": "plain_text", "text": "Police Scotland"}, "value": "police"} \
        in menu["options"]
    # "police" is a word of the text and an agency's id: before, Police Scotland was e-mailed.
    assert bot.mail.messages == [] and bot.outbox() == [("slack", "g-sog", "sent")]
    (dm,) = bot.dms()
    assert dm["channel"] == SOG and problems(dm["blocks"]) == []
    assert issue_in(dm["blocks"]) == ISSUE
    assert dm["text"] == "Urgent MAPPA issue #1 from Ailsa Chair (Grampian)"
    assert bot.issues()[0]["agencies"] == ""
    # Slack retrying the same request (its trigger_id) raises nothing new (issue 22.5).
    again = bot.command(CHAIR1, f"escalate {ISSUE}", "t1")
    assert again["text"].startswith("Already done") and len(bot.dms()) == 1
    assert len(bot.issues()) == 1 and bot.outbox() == [("slack", "g-sog", "sent")]


def test_the_chosen_agencies_are_e_mailed_whole_once_each(bot):
    bot.command(CHAIR1, f"escalate {ISSUE}", "t2")
    said = words(bot.choose(CHAIR1, 1, ["police", "em-provider"]))
    assert said == (f"Issue #1 e-mailed whole to Police Scotland ({POLICE}), Electronic "
                    f"Monitoring Scotland ({EM}).")
    got = bot.received()
    # One e-mail an agency: Electronic Monitoring Scotland at its own address, not its
    # contact's too.
    assert sorted(r for rcpt, _, _ in got for r in rcpt) == [POLICE, EM]
    for _rcpt, subject, body in got:
        assert subject == "URGENT MAPPA issue #1 (Grampian)"
        assert ISSUE in body and "Raised by: Ailsa Chair (Grampian)" in body
        assert "chose to tell your agency" in body
    assert bot.issues()[0]["agencies"] == "police;em-provider"
    # Pressed again: already sent, nothing new.
    bot.choose(CHAIR1, 1, ["police"])
    assert len(bot.mail.messages) == 2


@pytest.mark.parametrize("who, chosen, expected", [
    (CHAIR2, ["police"], "Only the person who raised issue #1 can choose the agencies"),
    (CHAIR1, [], "Choose at least one agency in the menu first"),
    (CHAIR1, ["police", "no-such-agency"], "Nothing was sent: `no-such-agency` is not in the "
                                           "agencies list."),
])
def test_a_choice_that_cannot_apply_is_refused_and_sends_nothing(bot, who, chosen, expected):
    bot.command(CHAIR1, f"escalate {ISSUE}", "t3")
    assert expected in words(bot.choose(who, 1, chosen))
    assert bot.mail.messages == [] and bot.issues()[0]["agencies"] == ""


def test_an_issue_longer_than_a_slack_message_reaches_everyone_whole(bot):
    text = "\n".join(f"Line {i}: " + ("details of the placement & the risk < high " * 5).rstrip()
                     for i in range(90))
    assert len(text) == 20_149
    reply = words(bot.command(CHAIR1, f"escalate {text}", "t4"))
    assert "Told now: Kirsty SOG (Slack, 2 messages)." in reply
    assert "It is 20,149 characters, longer than one Slack message" in reply
    dms = bot.dms()
    assert [d["text"] for d in dms] == [
        "Urgent MAPPA issue #1 from Ailsa Chair (Grampian), part 1 of 2",
        "Urgent MAPPA issue #1 from Ailsa Chair (Grampian), part 2 of 2"]
    assert all(problems(d["blocks"]) == [] for d in dms)
    assert "Continued in the next message (part 2 of 2)" in words(dms[0])
    assert issue_in(dms[0]["blocks"]) + issue_in(dms[1]["blocks"]) == text
    assert bot.issues()[0]["text"] == text
    bot.choose(CHAIR1, 1, ["police"])
    ((_, _, body),) = bot.received()
    assert text in body


@pytest.mark.parametrize("typed", ["escalate", "escalate    ", "escalate \n  "])
def test_no_issue_asks_what_it_is_and_writes_nothing(bot, typed):
    said = words(bot.command(CHAIR1, typed))
    assert said.startswith("What is the urgent issue? Type it after the command")
    assert bot.issues() == [] and bot.outbox() == [] and bot.dms() == []


def test_mentions_and_formatting_are_shown_as_typed_and_notify_no_one(bot):
    typed = "<!channel> *urgent*: <@U1SOG001> call _now_ `x` @here"
    reply = bot.command(CHAIR1, f"escalate {typed}")
    assert "Slack mentions (@channel, <!channel>, <@someone>) and formatting" in words(reply)
    (dm,) = bot.dms()
    plain = [b["text"] for b in dm["blocks"] if b["type"] == "section"
             and b["text"]["type"] == "plain_text"]
    assert [p["text"] for p in plain] == [
        "&lt;!channel&gt; *urgent*: &lt;@U1SOG001&gt; call _now_ `x` @here"]
    assert not re.search(r"<[!@]", str(dm["blocks"]))  # nothing Slack could ping with


def test_a_raiser_with_no_area_is_told_nothing_was_raised_with_the_text_to_copy(bot):
    person = SQLModel.metadata.tables["person"]
    with bot.engine.begin() as conn:
        conn.execute(person.insert().values(person_id="nat", name="National Person",
                                            slack_user_id="U1NAT001", roles="staff", area=None))
    reply = bot.command("U1NAT001", f"escalate {ISSUE}")
    said = words(reply)
    assert said.startswith(":warning: *Nothing was raised*: you have no MAPPA area in the "
                           "people list, so there is no SOG chair to tell")
    assert "Your text, to copy" in said and ISSUE in said
    assert bot.issues() == [] and bot.outbox() == [] and bot.dms() == []


def test_a_sog_chair_not_reached_on_slack_is_emailed_the_whole_issue(bot):
    bot.slack.script["/api/chat.postMessage"] = [(200, {}, {"ok": False, "error": "user_not_found"})]
    said = words(bot.command(CHAIR1, f"escalate {ISSUE}", "t5"))
    assert "Told now: Kirsty SOG (e-mail)." in said and "Not reached" not in said
    assert ("slack", "g-sog", "dead") in bot.outbox() and ("email", "g-sog", "sent") in bot.outbox()
    ((rcpt, _, body),) = bot.received()
    assert rcpt == ["kirsty@grampian.example"] and ISSUE in body


@pytest.mark.parametrize("bot", ["smtp-down"], indirect=True)
def test_an_agency_not_reached_is_named_and_the_outbox_retries_it(bot):
    bot.command(CHAIR1, f"escalate {ISSUE}", "t6")
    said = words(bot.choose(CHAIR1, 1, ["em-provider"]))
    assert said.startswith("Issue #1 was not e-mailed to any agency.")
    assert f"Not reached: Electronic Monitoring Scotland ({EM}): " in said
    assert "(will retry). Please phone them." in said
    assert ("email", f"email:{EM}", "pending") in bot.outbox()


@pytest.mark.parametrize("bot", ["no-smtp"], indirect=True)
def test_with_no_smtp_host_the_answer_says_the_email_waits_and_why(bot):
    bot.command(CHAIR1, f"escalate {ISSUE}", "t7")
    said = words(bot.choose(CHAIR1, 1, ["em-provider"]))
    assert (f"Not reached: Electronic Monitoring Scotland ({EM}): SMTP_HOST is not set; it "
            "goes out once that is set. Please phone them.") in said
