"""The doors an attacker tried, kept shut: forged values on the page buttons, paging a notice
that is someone else's or that the press does not come from, and header-ish text in what
a chaser email is written from.

The Slack side is the demo region of tests/channels/slack/test_paging.py (its digests and escalations
delivered to the stand-in for Slack's Web API), served by tests/slack_harness.Bot; every
press is a signed request. The email side is the Grampian worked example imported by the
real importer, its chasers planned by the real job and received by a real SMTP server.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import email
import email.policy
import json
import shutil

import pytest

from bot.channels.slack.paging import page_value
from bot.channels.slack import redraw as notices
from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import run_planning_job
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import db
from mappa_core.storage.importer import import_directory
from tests.channels.slack import test_paging
from tests.conftest import GRAMPIAN
from tests.slack_harness import Bot, SmtpSink, post, sign, view_body
from tests.delivery.test_delivery import NOW, settings_for
from tests.storage.test_import_validation import _counts
from tests.channels.slack.test_paging import (
    CHAIRS, COORD, LATER, SOG, _message, _outcome, delivered, demo_region, nav_button,
)

# A SQLite file, then a PostgreSQL database of its own (test_paging's fixture).
database = test_paging.database


@pytest.fixture(scope="module")
def bot(database, tmp_path_factory):
    """The demo region's digests and escalations delivered to the stand-in, and the bot
    serving the region as of that day (tests/slack_harness.Bot)."""
    engine = db.make_engine(database)
    harness = Bot(engine, LATER.date(), wait=20.0)
    demo_region(engine, tmp_path_factory.mktemp("doors") / "data", harness.stand_in.api_url())
    harness.engine, harness.sent = engine, delivered(harness.stand_in)
    yield harness
    harness.close()
    engine.dispose()


def _quiet(bot, before: int) -> None:
    """No chat.update since `before` (a command after the press: any would be sent by now)."""
    bot.command(COORD, "help")
    assert bot.calls("/api/chat.update") == before


# ------------------------------------------------------------------------------ /mappa due


GARBAGE = ["", "not json", "[]", "null", '"2"', "[" * 1500, '{"p": "2"}', '{"p": null}',
           '{"p": true}', '{"p": 1.5}', '{"p": 1e999}', '{"p": {"p": 2}}',
           '{"c": "case GRA-1", "p": 1}', '{"c": "due", "d": "365", "p": "x"}',
           # a bool is an int to Python (pd.Timedelta(days=True) raised); a list cannot be
           # looked up among the kinds (the press had no answer at all)
           '{"d": true, "p": 1}', '{"k": [1], "p": 1}', '{"k": {"x": 1}, "a": [], "p": 1}']


@pytest.mark.http
@pytest.mark.parametrize("value", GARBAGE, ids=range(len(GARBAGE)))
def test_a_garbage_due_page_value_shows_the_presser_the_first_page_of_their_list(bot, value):
    """Whatever a forged value holds, the answer is the presser's own `/mappa due` (first
    page, default days), privately; never an error."""
    first = bot.command(COORD, "due")
    reply = bot.act(COORD, "page_due_next", value)
    assert reply["response_type"] == "ephemeral" and "went wrong" not in reply["text"]
    assert reply["blocks"] == first["blocks"]


@pytest.mark.http
@pytest.mark.parametrize("page", [-1, 0, 10**6, 2**63, 2**64 + 1, 10**100])
def test_a_due_page_number_out_of_range_shows_a_page_that_exists(bot, page):
    first = bot.command(COORD, "due")
    reply = bot.act(COORD, "page_due_next", json.dumps({"c": "due", "p": page}))
    assert reply["response_type"] == "ephemeral" and "went wrong" not in reply["text"]
    if page < 1:
        assert reply["blocks"] == first["blocks"]
        return
    # The last page: Previous and no Next, and it ends at the list's true total.
    blocks = reply["blocks"]
    assert nav_button(blocks, "next") is None and nav_button(blocks, "prev") is not None
    shown = json.dumps(blocks).split("Showing ")[1].split(" items")[0]  # "81-93 of 93"
    assert shown.split("-")[1].split(" of ")[0] == shown.split(" of ")[1]


@pytest.mark.http
@pytest.mark.parametrize("days", [-5, 366, 10**9, 2**63, 10**100])
def test_a_due_day_count_out_of_range_keeps_to_the_presser_own_cases(bot, days):
    """A forged day count is held to 0..365, and the list is the presser's own."""
    chair = CHAIRS[0]
    own = bot.command(chair, f"due {0 if days < 0 else 365}")
    reply = bot.act(chair, "page_due_next", json.dumps({"c": "due", "d": days, "p": 1}))
    assert reply["blocks"] == own["blocks"]


@pytest.mark.http
def test_a_due_page_value_naming_another_person_or_area_shows_the_presser_own_list(bot):
    chair = CHAIRS[1]
    own = bot.command(chair, "due 365")
    forged = {"c": "due", "d": 365, "p": 1, "u": COORD, "user": COORD, "person": "g-coord",
              "area": "Fife", "scope": "national", "role": "coordinator", "o": 1}
    reply = bot.act(chair, "page_due_next", json.dumps(forged))
    assert reply["blocks"] == own["blocks"]
    assert "cases you chair" in reply["blocks"][1]["elements"][0]["text"]
    area = bot.command(COORD, "due 365")["blocks"]
    assert reply["blocks"] != area


# ------------------------------------------------------------------------------ notices


@pytest.mark.http
@pytest.mark.parametrize("reader, presser", [(SOG, COORD), (SOG, CHAIRS[0]), (CHAIRS[0], SOG),
                                             (CHAIRS[0], COORD)],
                         ids=["escalation-by-coordinator", "escalation-by-chair",
                              "digest-by-sog-chair", "digest-by-coordinator"])
def test_only_a_notice_reader_may_page_it(bot, reader, presser):
    """Another person pressing Next on a digest or an escalation (forwarded, or the same
    payload sent as theirs), whatever their role: told privately, audited, not updated."""
    title = "MAPPA escalation" if reader == SOG else "Your MAPPA items"
    channel, message = _message(bot, reader, title)
    nxt = nav_button(message["blocks"], "next")
    before = bot.calls("/api/chat.update")
    reply = bot.act(presser, nxt["action_id"], nxt["value"], message=message, channel=channel)
    assert reply["text"] == notices.NOT_YOURS and reply["response_type"] == "ephemeral"
    assert reply["replace_original"] is False
    _quiet(bot, before)
    first = page_value(nxt["value"])["o"]
    assert _outcome(bot, "action:page_notice", f"notice {first} page 2") == "refused"


@pytest.mark.http
def test_a_page_press_without_its_message_is_refused_politely(bot):
    """A notice's Next pressed with no `message` in the payload (nothing says which message
    to draw over): told privately the page cannot be shown, audited, nothing updated."""
    channel, message = _message(bot, SOG, "MAPPA escalation")
    nxt = nav_button(message["blocks"], "next")
    before = bot.calls("/api/chat.update")
    reply = bot.act(SOG, nxt["action_id"], nxt["value"], channel=channel)
    assert reply["text"] == notices.GONE and reply["response_type"] == "ephemeral"
    assert reply["replace_original"] is False
    _quiet(bot, before)
    first = page_value(nxt["value"])["o"]
    assert _outcome(bot, "action:page_notice", f"notice {first} page 2") == "refused"


@pytest.mark.http
@pytest.mark.parametrize("value", ["not json", "[" * 1500, '{"o": "1", "p": 2}', '{"p": 2}'],
                         ids=["not-json", "nested-too-deep", "o-a-string", "no-o"])
def test_a_garbage_notice_page_value_is_refused_politely(bot, value):
    channel, message = _message(bot, CHAIRS[0], "Your MAPPA items")
    before = bot.calls("/api/chat.update")
    reply = bot.act(CHAIRS[0], "page_notice_next", value, message=message, channel=channel)
    assert reply["text"] == notices.GONE and reply["response_type"] == "ephemeral"
    _quiet(bot, before)


@pytest.mark.http
def test_a_notice_reference_in_other_digits_is_no_notice_and_breaks_no_button(bot):
    """"²" is a digit to str.isdigit() but not to int(): a forged block_id made the page
    press go unanswered and a snooze answer both "Snoozed" and an error id."""
    channel, message = _message(bot, CHAIRS[1], "Your MAPPA items")
    blocks = json.loads(json.dumps(message["blocks"]).replace('"notice:', '"notice:\\u00b2'))
    assert "notice:\u00b2" in json.dumps(blocks, ensure_ascii=False)
    forged = {**message, "blocks": blocks}
    before = bot.calls("/api/chat.update")
    nxt = nav_button(blocks, "next")
    reply = bot.act(CHAIRS[1], nxt["action_id"], nxt["value"], message=forged, channel=channel)
    assert reply["text"] == notices.GONE
    snooze = next(e for b in blocks if b["type"] == "actions" for e in b["elements"]
                  if e.get("action_id") == "snooze_1wd")
    answer = bot.act(CHAIRS[1], "snooze_1wd", snooze["value"], message=forged, channel=channel)
    assert "Snoozed" in json.dumps(answer) and "went wrong" not in json.dumps(answer)
    _quiet(bot, before)


@pytest.mark.http
@pytest.mark.parametrize("metadata", ['{"k": "K", "c": "D1", "ts": "1", "o": 1e400, "p": 1}',
                                      '{"k": "K", "c": "D1", "ts": "1", "o": 1, "p": 1e400}',
                                      "{" + '"k": [' * 2900])
def test_reason_form_metadata_that_cannot_be_read_still_records_the_reason(bot, metadata):
    """Forged private_metadata: an overflowing number or JSON nested too deep was a 400
    (OverflowError, RecursionError) and the form showed Slack's own error."""
    key = next(e["value"] for body in bot.sent.get(CHAIRS[1], []) for b in body["blocks"]
               if b["type"] == "actions" for e in b["elements"]
               if e.get("action_id") == "record_reason")
    body = view_body(CHAIRS[1], metadata.replace('"K"', json.dumps(key)), "information_late")
    status, out, _ = post(bot.server.url + "/slack/events", body, sign(body))
    assert status == 200, out


# ------------------------------------------------------------------------------ chasers


@pytest.mark.parametrize("filename, old, new, error", [
    ("agencies.csv", "rmt@sps.example", '"rmt@sps.example\r\nBcc: leak@evil.example"',
     "agencies.csv:5: email: "),
    ("people.csv", "Ailsa Chair", '"Ailsa Chair\nReply-To: spy@evil.example"',
     "people.csv:2: name: contains a line break or control character (U+000A)"),
], ids=["agency-email", "chair-name"])
def test_header_text_in_a_cell_is_refused_by_name_and_nothing_written(engine, tmp_path,
                                                                       filename, old, new, error):
    """What a chaser is written from (the agency's address, the chair it names): a line
    break in it is refused by file, line and column, and no table is written."""
    target = tmp_path / "g"
    shutil.copytree(GRAMPIAN, target)
    path = target / filename
    data = path.read_bytes()
    assert old.encode() in data
    path.write_bytes(data.replace(old.encode(), new.encode(), 1))
    report = import_directory(engine, target)
    assert report.errors[0].startswith(error), report.errors
    assert "control character" in report.errors[0]
    assert set(_counts(engine).values()) == {0}


def test_a_bidirectional_override_in_a_name_is_refused_right_to_left_text_is_not(
        engine, tmp_path):
    """U+202E in an area or a name reversed how the rest of a Slack header or an email
    subject reads; Arabic or Hebrew text itself is welcome."""
    target = tmp_path / "g"
    shutil.copytree(GRAMPIAN, target)
    path = target / "people.csv"
    data = path.read_text(encoding="utf-8")
    path.write_text(data.replace("Ailsa Chair", "Ailsa \u202eriahC", 1), encoding="utf-8")
    report = import_directory(engine, target)
    assert report.errors == ["people.csv:2: name: contains a bidirectional override (U+202E), "
                             "which would reverse how the rest of a message reads"]
    assert set(_counts(engine).values()) == {0}
    path.write_text(data.replace("Ailsa Chair", "Ailsa \u0639\u0627\u0626\u0634\u0629", 1),
                    encoding="utf-8")
    assert import_directory(engine, target).ok


_B = base64.b64encode(b"SPS\r\nBcc: leak@evil.example\r\nX-Injected: 1").decode()
HEADERISH = [
    "SPS Bcc: leak@evil.example To: spy@evil.example",
    "=?utf-8?q?SPS=0D=0ABcc:_leak=40evil.example?=",  # an RFC 2047 encoded word: CR LF Bcc
    f"=?utf-8?b?{_B}?=",
    "Scottish Prison Service Reply-To: spy@evil.example " * 3,  # long: folded on the wire
]
EXPECTED_HEADERS = {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "Reply-To",
                    "X-Mappa-Group", "MIME-Version", "Content-Type"}


@pytest.mark.http
def test_a_chaser_from_header_ish_agency_names_has_one_line_subject_to_and_reply_to(
        engine, tmp_path):
    """Agency names that read like headers, or hold an encoded word that decodes to a line
    break and a Bcc (no control character: the importer takes them), name the agencies in
    each chaser's subject; as received, Subject, To and Reply-To are one line each, there is
    no other header, and the message goes to the agency's address alone."""
    target = tmp_path / "g"
    shutil.copytree(GRAMPIAN, target)
    path = target / "agencies.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    chased = {"sps": HEADERISH[0], "em-provider": HEADERISH[1]}  # the three chasers' agencies
    for i, row in enumerate(rows):
        row["name"] = chased.get(row["agency"], HEADERISH[2 + i % 2]).strip()
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert import_directory(engine, target).ok
    run_planning_job(engine, "digest", NOW, NudgeRules())
    smtp = SmtpSink()
    try:
        report = asyncio.run(deliver_pending(engine, settings_for(smtp.port), None, NOW))
        # Two chasers: one e-mail an agency (Electronic Monitoring Scotland at its own
        # address only, not its contact's too; issue 23.7).
        assert report.sent.get("email", 0) == 2 and report.failed == 0
        names = set()
        for m in smtp.messages:
            raw = m.original_content
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert set(msg.keys()) == EXPECTED_HEADERS, msg.keys()
            for header in ("Subject", "To", "Reply-To"):
                values = msg.get_all(header)
                assert len(values) == 1 and "\r" not in values[0] and "\n" not in values[0]
            assert m.rcpt_tos == [msg["To"]] and "evil" not in msg["To"] + msg["Reply-To"]
            head = raw.split(b"\r\n\r\n")[0].decode()
            assert not any(line.lower().startswith(("bcc:", "cc:", "x-injected"))
                           for line in head.splitlines())
            names.add(msg["Subject"])
        subjects = " ".join(names)
        assert "SPS Bcc: leak@evil.example To: spy@evil.example" in subjects
        assert "utf-8?q?SPS=0D=0ABcc:_leak=40evil.example?=" in subjects
    finally:
        smtp.close()
