"""What an SOG chair and an agency contact read, at size: an escalation of thousands of
breaches summarised before it lists (Slack and email, the full list as a CSV attachment),
and a chaser that says what to send, by when, and to whom.

Everything goes through the real planner or outbox, the real delivery worker and
transports, a real SMTP server (aiosmtpd) and the Slack Web API stand-in; the email is read
as received (headers, parts, attachment) and every Slack payload is checked by
`slack_sdk.models` and the limits those models do not check.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import email
import email.policy
import io
import random
from collections import Counter
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels import render
from bot.channels.slack import SlackTransport
from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import run_planning_job
from bot.settings import Settings
from mappa_core.rules.planner import NOTIFICATION_COLUMNS, NudgeRules
from mappa_core.storage import outbox
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import SlackStandIn, SmtpSink

LONDON = ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=LONDON)
DAY = NOW.date()
RULES = NudgeRules()
BODY_LIMIT = 100_000  # bytes of body (text and HTML parts together), attachments aside
HOSTILE = "<!here> <https://evil.example|x> & *b* 🚨 مرحبا "

KIND_LABELS = {  # what the summary calls each kind: the reader's words, written out here
    ("review", 3): "Level 3 reviews", ("review", 2): "Level 2 reviews",
    ("pre_release", 3): "Initial Level 3 meetings before release",
    ("minutes", None): "Minutes and RMP", ("contribution", None): "Written contributions",
    ("disclosure", None): "Disclosure decisions",
}


def escalation_notes(n: int, channel: str, address: str, seed: int = 7,
                     hostile_chairs: bool = False, long_keys: bool = False) -> pd.DataFrame:
    """n escalation rows for one SOG chair in Grampian, as the planner writes them: a mix of
    kinds, 40 chairs (a few items with none recorded), about 1% urgent pre-release breaches."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        kind = "pre_release" if rnd.random() < 0.01 else rnd.choice(
            ["review", "review", "minutes", "contribution", "disclosure"])
        level = rnd.choice([2, 3]) if kind == "review" else (3 if kind == "pre_release" else None)
        late = rnd.randint(1, 60)
        deadline = (DAY - dt.timedelta(days=late)).isoformat()
        ref = f"GRA-{i:05d}" + ("x" * 195 if long_keys else "")
        meeting = None if kind in ("review", "pre_release") else f"M{i:05d}" + ("y" * 195 if long_keys else "")
        agency = "nhs-grampian" if kind == "contribution" else None
        key = {"review": f"review:{ref}:L{level}:{deadline}", "minutes": f"minutes:{meeting}",
               "contribution": f"contribution:{meeting}:{agency}",
               "disclosure": f"disclosure:{meeting}", "pre_release": f"pre_release:{ref}:{deadline}"}[kind][:200]
        chair = rnd.randint(1, 40)
        chair_name = None if chair == 40 else (
            (HOSTILE * 4 if hostile_chairs and chair < 3 else "") + f"Chair {chair:02d}")
        urgent = kind == "pre_release"
        rows.append({
            "rule": "escalation", "item_key": key, "stage": "breach", "recipient_id": "g-sog",
            "channel": channel, "address": address, "urgency": "urgent" if urgent else "normal",
            "group_key": f"escalation|g-sog|{DAY}", "dedupe_key": f"escalation|{key}|breach|g-sog|c0",
            "area": "Grampian",
            "payload": {"kind": kind, "level": level, "ref": ref, "meeting_id": meeting,
                        "agency": agency, "deadline": deadline, "overdue": True,
                        "working_days_left": -max(1, late * 5 // 7),
                        "detail": "absent, no written contribution" if agency else None,
                        "item_key": key, "stage": "breach", "area": "Grampian",
                        "agency_name": "NHS Grampian" if agency else None,
                        "chair_id": None if chair == 40 else f"chair-{chair}",
                        "chair_name": chair_name, "chair_email": None,
                        "meeting_date": None, "meeting_level": None},
        })
    return pd.DataFrame(rows, columns=NOTIFICATION_COLUMNS)


def slack_problems(blocks: list[dict], where: str) -> list[str]:
    """Each block through slack_sdk's models (validate_json, and to_dict, which validates
    the elements inside), plus the limits the models leave to Slack."""
    found = []
    if not 0 < len(blocks) <= 50:
        found.append(f"{where}: {len(blocks)} blocks")
    for b in blocks:
        try:
            model = Block.parse(b)
            model.validate_json()
            model.to_dict()
        except Exception as exc:  # SlackObjectFormationError, or a block it cannot parse
            found.append(f"{where}: {b.get('type')}: {exc}")
        text = (b.get("text") or {}).get("text", "")
        if b["type"] == "section" and len(text) > 3000:
            found.append(f"{where}: section of {len(text)} characters")
        if b["type"] == "header" and len(text) > 150:
            found.append(f"{where}: header of {len(text)} characters")
        for e in b.get("elements", []):
            if e.get("type") == "button":
                if len(e["text"]["text"]) > 75:
                    found.append(f"{where}: button text {e['text']['text']!r}")
                if len(e.get("value", "")) > 2000:
                    found.append(f"{where}: button value of {len(e['value'])} characters")
    return found


def settings_for(smtp_port: int, api_url: str = "http://127.0.0.1:9/api/") -> Settings:
    return Settings(slack_bot_token="xoxb-test", slack_api_url=api_url, smtp_host="127.0.0.1",
                    smtp_port=smtp_port, smtp_starttls=False, smtp_timeout=5,
                    mail_from="mappa-bot@grampian.example")


def received(smtp: SmtpSink) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(m.original_content, policy=email.policy.default)
            for m in smtp.messages]


def body_parts(msg) -> tuple[str, str]:
    return (msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content())


def expected_kinds(notes: pd.DataFrame) -> Counter:
    return Counter(KIND_LABELS[(p["kind"], p["level"])] for p in notes["payload"])


# --------------------------------------------------------------------------- Slack


@pytest.mark.http
def test_four_thousand_breaches_read_as_a_summary_in_slack(sqlite_engine):
    """4,044 items (one SOG chair's escalation at 100,000 individuals): the DM that reaches
    Slack leads with the true counts by kind and chair, lists five with Acknowledge, and is
    valid Block Kit."""
    notes = escalation_notes(4044, "slack", "U1SOG001")
    outbox.plan(sqlite_engine, notes, NOW, RULES)
    stand_in = SlackStandIn()
    try:
        transport = SlackTransport(AsyncWebClient(token="xoxb-test", base_url=stand_in.api_url()))
        report = asyncio.run(deliver_pending(sqlite_engine, settings_for(9, stand_in.api_url()),
                                             transport, NOW))
        assert report.rows_sent == 4044
        (post,) = [c["body"] for c in stand_in.posts("/api/chat.postMessage")]
    finally:
        stand_in.close()
    blocks = post["blocks"]
    assert slack_problems(blocks, "escalation") == []
    assert len(blocks) < 25
    texts = [(b.get("text") or {}).get("text", "") for b in blocks]
    urgent = sum(notes["urgency"] == "urgent")
    assert "*4,044* deadlines in Grampian" in texts[1] and f"*{urgent} urgent*" in texts[1]
    assert blocks[0]["text"]["text"].startswith(":rotating_light:")
    by_kind = next(t for t in texts if t.startswith("*By kind*"))
    for label, n in expected_kinds(notes).items():
        assert f"• {label}: {n:,}" in by_kind
    by_chair = next(t for t in texts if t.startswith("*By chair*"))
    chairs = Counter(p["chair_name"] for p in notes["payload"] if p["chair_name"])
    top = sorted(chairs.items(), key=lambda kv: (-kv[1], kv[0]))
    assert f"• {top[0][0]}: {top[0][1]:,}" in by_chair
    assert f"• {len(top) - 8} other chairs: {sum(n for _, n in top[8:]):,}" in by_chair
    no_chair = sum(1 for p in notes["payload"] if not p["chair_name"])
    assert f"• No chair recorded: {no_chair:,}" in by_chair

    acks = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] == "ack_escalation"]
    assert len(acks) == 5
    # The urgent ones come first, then the most overdue.
    payloads = {r["item_key"]: (r["urgency"], r["payload"]["deadline"]) for r in notes.to_dict("records")}
    shown = [payloads[a["value"].rpartition("|")[0]] for a in acks]
    ranked = sorted(payloads.values(), key=lambda v: (v[0] != "urgent", v[1]))
    assert shown == ranked[:5]
    # The rest through the notice pager (Next), not listed: one short page.
    nav = [b for b in blocks if b["type"] == "context"
           and "Showing 1-5 of 4,044 items" in b["elements"][0]["text"]]
    assert nav and [e["text"]["text"] for b in blocks if b.get("block_id") == "page_notice_nav"
                    for e in b["elements"]] == ["Next"]
    assert not any("`mappa " in t for t in texts)  # no command-line command in Slack
    assert sum(len(t) for t in texts) < 5000


def test_acknowledge_all_shown_carries_exactly_the_shown_items_that_are_not_urgent():
    """The bulk button lists the shown items' `key|stage` (under 2,000 characters even with
    200-character keys), never an urgent one; with one or none left, no bulk button."""
    for long_keys in (False, True):
        notes = escalation_notes(300, "slack", "U1SOG001", seed=3, long_keys=long_keys)
        notes["urgency"] = "normal"
        blocks = render(notes.to_dict("records")).blocks
        assert slack_problems(blocks, f"long_keys={long_keys}") == []
        singles = [e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == "ack_escalation"]
        (bulk,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == "ack_escalation_shown"]
        assert bulk["value"] == "|".join(singles) and len(bulk["value"]) <= 2000
        assert bulk["text"]["text"] == "Acknowledge all 5 shown" and "confirm" in bulk
        if long_keys:
            assert len(bulk["value"]) > 1000
    # Two urgent items among the five shown: the bulk button leaves them out and says so.
    notes = escalation_notes(300, "slack", "U1SOG001", seed=3)
    notes["urgency"] = "normal"
    oldest = notes["payload"].map(lambda p: p["deadline"]).sort_values().index[:2]
    notes.loc[oldest, "urgency"] = "urgent"
    blocks = render(notes.to_dict("records")).blocks
    (bulk,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
               if e["action_id"] == "ack_escalation_shown"]
    assert bulk["text"]["text"] == "Acknowledge the 3 not urgent"
    assert not any(notes.loc[i, "item_key"] in bulk["value"] for i in oldest)
    # One item: its own button only.
    one = render(notes.iloc[[5]].to_dict("records")).blocks
    assert not [b for b in one if b.get("block_id") == "ack_escalation_shown"]


def test_hostile_chair_names_keep_the_escalation_valid_and_inert():
    notes = escalation_notes(500, "slack", "U1SOG001", hostile_chairs=True)
    blocks = render(notes.to_dict("records")).blocks
    assert slack_problems(blocks, "hostile") == []
    text = "".join((b.get("text") or {}).get("text", "") for b in blocks)
    assert "<!here>" not in text and "<https" not in text and "&lt;!here&gt;" in text


# --------------------------------------------------------------------------- email


@pytest.mark.http
def test_four_thousand_breaches_by_email_summary_first_with_the_csv_attached(sqlite_engine):
    """The email as received: summary and the ten most overdue in a body far under 100 KB,
    every item once in the attached CSV (in the body's order), Reply-To the co-ordinator."""
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    notes = escalation_notes(4044, "email", "kirsty@grampian.example")
    notes.loc[0, "payload"]["ref"] = "=HYPERLINK(\"http://evil.example\")"
    outbox.plan(sqlite_engine, notes, NOW, RULES)
    smtp = SmtpSink()
    try:
        report = asyncio.run(deliver_pending(sqlite_engine, settings_for(smtp.port), None, NOW))
        assert report.rows_sent == 4044
        (msg,) = received(smtp)
    finally:
        smtp.close()
    assert msg["Subject"] == "URGENT: MAPPA escalation, Grampian: 4,044 deadlines"
    assert msg["To"] == "kirsty@grampian.example"
    assert msg["Reply-To"] == "niall@grampian.example"
    text, html = body_parts(msg)
    assert len(text.encode()) + len(html.encode()) < BODY_LIMIT / 10
    for label, n in expected_kinds(notes).items():
        assert f"- {label}: {n:,}" in text
        assert f"<td style=\"padding: 2px 12px 2px 0\">{label}</td><td style=\"text-align: right\">{n:,}</td>" in html
    assert "The 10 most urgent and overdue:" in text
    listed = [line for line in text.splitlines() if line.startswith("- ") and " for " in line]
    assert len(listed) == 10
    name = "mappa-escalation-grampian-2026-11-26.csv"
    assert f"All 4,044 are in the attached file {name}" in text and name in html

    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == name and attachment.get_content_type() == "text/csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    assert len(rows) == 4044
    assert sorted(r["item_key"] for r in rows) == sorted(notes["item_key"])
    # The attachment's order is the body's: its first ten are the ten listed.
    for line, row in zip(listed, rows[:10]):
        assert row["ref"] in line
    assert [r["urgent"] for r in rows[: sum(notes["urgency"] == "urgent")]] == ["yes"] * sum(notes["urgency"] == "urgent")
    by_key = {r["item_key"]: r for r in rows}
    first = notes.iloc[0]
    assert by_key[first["item_key"]]["ref"] == "'=HYPERLINK(\"http://evil.example\")"
    sample = notes.iloc[17]["payload"]
    row = by_key[sample["item_key"]]
    assert (row["kind"], row["deadline"], row["working_days_left"]) == (
        sample["kind"], sample["deadline"], str(sample["working_days_left"]))
    assert row["chair"] == (sample["chair_name"] or "")


@pytest.mark.parametrize("n", [1, 40, 41, 25_000])
def test_no_escalation_email_body_over_100_kb(n):
    """Every item in the body up to 40; from 41 the summary, ten items and the CSV; the
    body does not grow with the list (25,000 items: a national escalation)."""
    notes = escalation_notes(n, "email", "kirsty@grampian.example", hostile_chairs=True)
    message = render(notes.to_dict("records"))
    size = len(message.text.encode()) + len(message.html.encode())
    assert size < BODY_LIMIT / 5, size
    listed = [line for line in message.text.splitlines() if line.startswith("- ") and " for " in line]
    assert len(listed) == (n if n <= 40 else 10)
    assert ("attached file" in message.text) == (n > 40)
    assert "<!here>" not in message.html
    if any(HOSTILE in (p["chair_name"] or "") for p in notes["payload"]):
        assert "&lt;!here&gt;" in message.html


def test_the_longest_list_a_body_holds_stays_under_100_kb_at_the_longest_ids_and_names():
    """40 items (the most listed in a body), each with every id and name at the length the
    database allows (refs and meeting ids 64, agency and chair names 200) and made of
    characters that HTML escaping lengthens."""
    notes = escalation_notes(40, "email", "kirsty@grampian.example")
    for i, p in enumerate(notes["payload"]):
        p.update(ref=f"{i:02d}" + "<" * 62, meeting_id=f"{i:02d}" + "&" * 62, kind="contribution",
                 level=None, agency_name="<&" * 100, chair_name='"<' * 100,
                 detail="absent, no written contribution")
    message = render(notes.to_dict("records"))
    size = len(message.text.encode()) + len(message.html.encode())
    assert size < BODY_LIMIT, size
    assert "…" in message.text and "<&<&" not in message.html


# --------------------------------------------------------------------------- chasers


@pytest.mark.http
def test_the_agency_chaser_says_what_to_send_by_when_and_to_whom(sqlite_engine):
    """The Scottish Prison Service did not attend GRA-0106's Level 3 meeting G13 on Monday
    12 October 2026 (chair: Calum Chair) and sent nothing: on 26 November its contact is
    told, by name, the meeting, the deadline (the 10th working day, 26 October: 23 working
    days ago) and whom to send it to; a reply goes to Grampian's co-ordinator."""
    assert import_directory(sqlite_engine, GRAMPIAN).ok
    run_planning_job(sqlite_engine, "digest", NOW, RULES)
    smtp = SmtpSink()
    try:
        asyncio.run(deliver_pending(sqlite_engine, settings_for(smtp.port), None, NOW))
        messages = {m["To"]: m for m in received(smtp)}
    finally:
        smtp.close()
    msg = messages["rmt@sps.example"]
    assert msg["Subject"] == "MAPPA: written contribution needed from Scottish Prison Service"
    assert msg["Reply-To"] == "niall@grampian.example"
    assert msg["From"] == "mappa-bot@grampian.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert not list(msg.iter_attachments())
    text, html = body_parts(msg)
    for body in (text, html.replace("&#39;", "'")):
        assert "Level 3 MAPPA meeting on Monday 12 October 2026, case reference GRA-0106 (meeting G13)" in body
        assert "by Monday 26 October 2026, the 10th working day after the meeting: overdue by 23 working days" in body
        assert "Calum Chair (the meeting's chair), calum@grampian.example" in body
        assert "A reply to this email goes to the MAPPA Co-ordinator for Grampian." in body
    # The individual's other details (category, RoSH, birth year, ethnicity) never travel.
    for detail in ("very_high", "very high", "1987", "Black Scottish", "Category", "male"):
        assert detail not in text and detail not in html
    # Agencies by name, not id, in every chaser.
    em = messages["ops@em.example"]
    # (Python's folder puts this subject's whole value on a continuation line; a reader
    # unfolds it, and mail clients show it without the leading space.)
    assert em["Subject"].strip() == "MAPPA: written contribution needed from Electronic Monitoring Scotland"
    em_text, _ = body_parts(em)
    assert "em-provider" not in em_text
    assert "Ailsa Chair (the meeting's chair), ailsa@grampian.example" in em_text


def test_a_chaser_without_a_chair_email_or_covering_two_areas_still_says_what_to_do():
    """A chair with no email on record, one not in people.csv, and items of two areas: the
    contact is told to reply, and Reply-To holds both areas' co-ordinators."""
    from bot.channels.email import reply_to_for

    base = {"kind": "contribution", "level": None, "ref": "R1", "meeting_id": "M1",
            "agency": "housing-x", "deadline": "2026-11-30", "overdue": False,
            "working_days_left": 2, "detail": "absent, no written contribution",
            "item_key": "contribution:M1:housing-x", "stage": "missing", "area": "Grampian",
            "agency_name": "Castlehill Housing", "chair_id": "c1", "chair_name": "Morag Chair",
            "chair_email": None, "meeting_date": "2026-11-16", "meeting_level": 2}
    other = {**base, "ref": "R2", "meeting_id": "M2", "item_key": "contribution:M2:housing-x",
             "area": "Tayside", "chair_id": "gone", "chair_name": None, "working_days_left": 0}
    rows = [{"rule": "chaser", "item_key": p["item_key"], "stage": "missing", "urgency": "normal",
             "channel": "email", "area": p["area"], "payload": p,
             "group_key": f"chaser|email:h@x.example|{DAY}"} for p in (base, other)]
    message = render(rows)
    assert message.subject == "MAPPA: written contributions needed from Castlehill Housing"
    assert ("Morag Chair (the meeting's chair; no email address on record: reply to this "
            "email and the MAPPA Co-ordinator will pass it on)") in message.text
    assert "Send it to: the meeting's chair (reply to this email" in message.text
    assert "2 working days left" in message.text and "due today" in message.text
    assert "A reply to this email goes to the MAPPA Co-ordinator for Grampian and Tayside." in message.text
    by_area = {"Grampian": "niall@grampian.example", "Tayside": "a@tay.example, b@tay.example",
               None: "national@scot.example"}
    assert reply_to_for(rows, by_area) == "niall@grampian.example, a@tay.example, b@tay.example"
    assert reply_to_for([{**rows[0], "area": "Fife"}], by_area) == "national@scot.example"
    assert reply_to_for(rows, {}) is None


# --------------------------------------------------------------------------- digests


def test_a_chairs_digest_names_the_agency_by_its_display_name_as_chasers_do(sqlite_engine):
    """On 26 November Grampian's chairs are owed written contributions from the Scottish
    Prison Service (G13) and Electronic Monitoring Scotland (G2): their digests name them so,
    by Slack and by email, not `sps` and `em-provider`; and a name is escaped for Slack."""
    import json

    from sqlalchemy import text

    assert import_directory(sqlite_engine, GRAMPIAN).ok
    with sqlite_engine.begin() as conn:
        conn.execute(text("UPDATE agency SET name = '<!here> Monitoring & Co' WHERE agency = 'em-provider'"))
    run_planning_job(sqlite_engine, "digest", NOW, RULES)
    digests = {k: rows for k, rows in outbox.due_groups(sqlite_engine, NOW).items()
               if k.startswith("digest|")}
    assert digests
    slack_text, email_text = "", ""
    for rows in digests.values():
        slack = render([{**r, "channel": "slack"} for r in rows])
        slack_text += slack.text + json.dumps(slack.blocks)
        mail = render([{**r, "channel": "email", "address": "chair@grampian.example"} for r in rows])
        email_text += mail.text + mail.html
    for said in (slack_text, email_text):
        assert "Written contribution from Scottish Prison Service for " in said
        assert "Written contribution from sps " not in said and "from em-provider" not in said
    assert "Written contribution from &lt;!here&gt; Monitoring &amp; Co for " in slack_text
    assert "<!here>" not in slack_text
    assert "Written contribution from <!here> Monitoring & Co for " in email_text  # plain text
