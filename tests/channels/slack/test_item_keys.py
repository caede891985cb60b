"""Item keys that cannot be confused (issue 12 findings 5 and 9): ids holding ":", "|",
spaces and non-ASCII round-trip through the buttons and the reason modal of a real digest,
by signed HTTP requests to the served bot; an over-long key is refused before the
database; the SCR escalation can be acknowledged and then stops repeating."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.channels.slack import SlackTransport
from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import run_planning_job
from bot.server import build_asgi
from bot.settings import Settings
from mappa_core.rules.due import key_part
from mappa_core.storage import audits_and_scrs
from mappa_core.storage.importer import import_directory
from mappa_core.rules.planner import NudgeRules
from tests.conftest import GRAMPIAN
from tests.helpers import AGENCIES, load_scenario
from tests.slack_harness import (
    SIGNING_SECRET, BotServer, SlackStandIn, action_body, post, sign, view_body,
)
from tests.delivery.test_delivery import LONDON

pytestmark = pytest.mark.http

TODAY = dt.date(2026, 11, 26)
NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=LONDON)
REF = "R:1|x é"
MEETINGS = ("T1", "T1:9", "M|2 é", "50%:x")  # "T1:9" used to act on "T1"
ODD_AGENCY = "hous:ing|é"
CHAIR, SOG = "UCHAIR1", "USOG1"


class Bot:
    """The served bot over the given database, with the Slack stand-in."""

    def __init__(self, engine):
        self.engine = engine
        self.stand_in = SlackStandIn()
        settings = Settings(work_processes=0, database_url=str(engine.url), slack_bot_token="xoxb-test",
                            slack_signing_secret=SIGNING_SECRET,
                            slack_api_url=self.stand_in.api_url())
        self.server = BotServer(build_asgi(settings, engine, today=lambda: TODAY))
        self.n = 0

    def deliver(self, when=NOW):
        transport = SlackTransport(AsyncWebClient(token="xoxb-test", base_url=self.stand_in.api_url()))
        settings = Settings(work_processes=0, slack_bot_token="xoxb-test", slack_api_url=self.stand_in.api_url())
        return asyncio.run(deliver_pending(self.engine, settings, transport, when))

    def buttons(self, channel: str) -> list[tuple[str, dict]]:
        """(the item line above, the button) for every button DM'd to `channel`."""
        out = []
        for call in self.stand_in.posts("/api/chat.postMessage"):
            if call["body"]["channel"] != channel:
                continue
            line = ""
            for block in call["body"]["blocks"]:
                if block["type"] == "section":
                    line = block["text"]["text"]
                elif block["type"] == "actions":
                    out += [(line, e) for e in block["elements"] if e["type"] == "button"]
        return out

    def press(self, user: str, button: dict, answer: bool = True) -> str:
        self.n += 1
        name = f"r{self.n}"
        body = action_body(user, button["action_id"], button["value"],
                           self.stand_in.response_url(name))
        status, out, _ = post(self.server.url + "/slack/events", body, sign(body))
        assert status == 200, out
        if not answer:
            return ""
        reply = self.stand_in.wait_for(f"/response/{name}")[0]["body"]
        return json.dumps(reply.get("blocks", []), ensure_ascii=False) + reply.get("text", "")

    def close(self):
        self.server.close()
        self.stand_in.close()


@pytest.fixture
def odd(engine, tmp_path):
    load_scenario(
        engine, tmp_path / "csv",
        agencies=AGENCIES + [{"agency": ODD_AGENCY, "name": "Odd housing", "kind": "dtc",
                              "role": "housing", "email": "odd@example.org"}],
        people=[
            {"person_id": "chair-1", "name": "Chair One", "email": "c1@example.org",
             "slack_user_id": CHAIR, "roles": "chair", "area": "Testshire"},
            {"person_id": "sog", "name": "SOG Chair", "email": "sog@example.org",
             "slack_user_id": SOG, "roles": "sog_chair", "area": "Testshire"},
        ],
        individuals=[{"ref": REF}],
        meetings=[{"meeting_id": m, "ref": REF, "date": "2026-11-10"} for m in MEETINGS],
        invitations=[{"meeting_id": "T1:9", "agency": ODD_AGENCY, "attendance": "absent",
                      "written_contribution": "no"},
                     {"meeting_id": "T1", "agency": ODD_AGENCY, "attendance": "absent",
                      "written_contribution": "no"}],
    )
    run_planning_job(engine, "digest", NOW, NudgeRules())
    bot = Bot(engine)
    bot.deliver()
    yield bot
    bot.close()


def _meetings(engine) -> dict[str, dict]:
    meeting = SQLModel.metadata.tables["meeting"]
    with engine.connect() as conn:
        return {r["meeting_id"]: dict(r) for r in conn.execute(select(meeting)).mappings()}


def _by_meeting(buttons, action_id: str, item: str = "") -> dict[str, dict]:
    """Each meeting's button, found by the meeting named in its item line (which starts
    with `item`)."""
    found = {}
    for line, button in buttons:
        if button["action_id"] != action_id or not line.startswith(item):
            continue
        named = [m for m in MEETINGS if f"(meeting {m})" in line]
        assert len(named) == 1, line
        found[named[0]] = button
    return found


def test_ids_with_colons_bars_spaces_and_accents_round_trip_through_the_buttons(odd):
    buttons = odd.buttons(CHAIR)
    rmp = _by_meeting(buttons, "rmp_ratified")
    assert set(rmp) == set(MEETINGS)
    assert len({b["value"] for b in rmp.values()}) == len(MEETINGS)
    # "RMP ratified" on T1:9 records T1:9, and nothing else.
    reply = odd.press(CHAIR, rmp["T1:9"])
    assert f"RMP ratified for `{REF}` (meeting T1:9): recorded on 2026-11-26" in reply
    meetings = _meetings(odd.engine)
    assert meetings["T1:9"]["rmp_ratified"] == TODAY
    assert [m for m, r in meetings.items() if r["rmp_ratified"]] == ["T1:9"]
    for meeting in ("M|2 é", "50%:x"):
        assert f"(meeting {meeting})" in odd.press(CHAIR, _by_meeting(buttons, "minutes_issued")[meeting])
    assert {m for m, r in _meetings(odd.engine).items() if r["minutes_issued"]} == {"M|2 é", "50%:x"}

    # The written contribution of the odd agency, to T1:9 only.
    received = _by_meeting(buttons, "contribution_received")
    assert set(received) == {"T1", "T1:9"}
    assert f"from Odd housing for `{REF}` (meeting T1:9): recorded" in odd.press(CHAIR, received["T1:9"])
    inv = SQLModel.metadata.tables["invitation"]
    with odd.engine.connect() as conn:
        assert dict(conn.execute(select(inv.c.meeting_id, inv.c.written_contribution)).all()) == {
            "T1:9": True, "T1": False}

    # A snooze is stored under the same key the planner uses: the next digest leaves it out.
    snoozed = _by_meeting(buttons, "snooze_3wd", "Minutes")["T1:9"]
    assert f"Snoozed Minutes and RMP for `{REF}` (meeting T1:9)" in odd.press(CHAIR, snoozed)
    snooze = SQLModel.metadata.tables["snooze"]
    with odd.engine.connect() as conn:
        assert conn.execute(select(snooze.c.item_key)).scalars().all() == [snoozed["value"]]


def test_the_reason_modal_carries_the_key_and_saves_against_the_right_meeting(odd):
    button = _by_meeting(odd.buttons(CHAIR), "record_reason", "Minutes")["T1:9"]
    odd.press(CHAIR, button, answer=False)  # the modal opens instead
    view = odd.stand_in.wait_for("/api/views.open")[0]["body"]["view"]
    assert view["private_metadata"] == button["value"]
    body = view_body(CHAIR, view["private_metadata"], "information_late", "late")
    status, out, _ = post(odd.server.url + "/slack/events", body, sign(body))
    assert status == 200 and out == ""
    meetings = _meetings(odd.engine)
    assert meetings["T1:9"]["reason"] == "information_late" and meetings["T1"]["reason"] is None


@pytest.mark.parametrize("action_id, value", [
    ("snooze_1wd", "minutes:" + "T" * 300),
    ("snooze_1wd", "minutes:T1:" + "x" * 250),  # was a 500 on PostgreSQL, a junk row on SQLite
    ("record_reason", "contribution:" + "x" * 250 + ":police"),
    ("ack_escalation", "review:" + "R" * 250 + ":L2:2026-11-12|breach"),
    ("minutes_issued", "minutes:T1:9"),  # unencoded: not a key the bot makes
    ("minutes_issued", "minutes:T1%3A99"),
    # Edited button values: a chain that does not exist, a date that is not one, a stage
    # no escalation has, a contribution from an agency that was not absent.
    ("snooze_1wd", f"review:{key_part(REF)}:L9:2026-12-01"),
    ("snooze_1wd", f"review:{key_part(REF)}:L2:9999-99-99"),
    ("record_reason", f"pre_release:{key_part(REF)}:someday"),
    ("ack_escalation", f"review:{key_part(REF)}:L2:2026-12-01|nonsense"),
    ("contribution_received", f"contribution:{key_part('T1')}:police"),
])
def test_a_key_too_long_or_no_longer_matching_gets_a_clear_message(odd, action_id, value):
    user = SOG if action_id == "ack_escalation" else CHAIR
    reply = odd.press(user, {"action_id": action_id, "value": value})
    assert "no longer matches a record" in reply and "went wrong" not in reply
    with odd.engine.connect() as conn:
        for table in ("snooze", "item_note", "escalation_ack"):
            assert not conn.execute(select(SQLModel.metadata.tables[table])).all(), table
    assert not odd.stand_in.posts("/api/views.open")


def _aliases(key: str) -> list[str]:
    """Texts that read back to the same record as `key` but are not the key the bot
    issued: a character of its id percent-encoded (`minutes:M0000142%34`), an escape in
    lower-case hex, the kind encoded; and ones that name no record: case changed,
    padded."""
    kind, first, *rest = key.split(":")
    out = [":".join([kind, f"%{ord(first[0]):02X}{first[1:]}", *rest]),
           ":".join([f"%{ord(kind[0]):02X}{kind[1:]}", first, *rest]),
           key.upper(), key.swapcase(), key + " ", " " + key, key.replace(":", " : ", 1),
           key + "\n"]
    if "%" in key:
        out.append(key.replace("%7C", "%7c").replace("%3A", "%3a"))
    return out


def test_a_key_the_bot_did_not_issue_writes_nothing_and_says_so(odd):
    """Issue 22, item 5: on main a percent-encoded alias of a real key (`minutes:T%31`
    for `minutes:T1`) passed, and its snooze, reason or acknowledgement was recorded under
    a key that silences nothing while the chair was told it worked. Every alias of every
    key on the digest's buttons, pressed as Snooze, Record reason, Minutes issued and a
    SOG chair's Acknowledge, now gets "no longer matches a record" and writes nothing; the
    keys themselves still act."""
    buttons = odd.buttons(CHAIR)
    # One key of each kind on the digest, those with escapes first (T1:9 and the agency).
    keys = {}
    for _, b in sorted(buttons, key=lambda lb: "%" not in lb[1]["value"]):
        if b["action_id"] == "snooze_1wd":
            keys.setdefault(b["value"].split(":")[0], b["value"])
    keys = sorted(keys.values())
    assert {k.split(":")[0] for k in keys} == {"minutes", "contribution", "disclosure"}, keys
    meetings = _meetings(odd.engine)
    # A review key's day in basic format (the digest has no review of REF to press).
    review = [f"review:{key_part(REF)}:L2:20261201"]
    for key in [*keys, None]:
        for alias in _aliases(key) if key else review:
            for user, action_id, value in [(CHAIR, "snooze_1wd", alias),
                                           (CHAIR, "record_reason", alias),
                                           (CHAIR, "minutes_issued", alias),
                                           (SOG, "ack_escalation", alias + "|breach")]:
                reply = odd.press(user, {"action_id": action_id, "value": value})
                assert "no longer matches a record" in reply, (key, alias, action_id, reply)
    with odd.engine.connect() as conn:
        for table in ("snooze", "item_note", "escalation_ack", "recorded_value"):
            assert not conn.execute(select(SQLModel.metadata.tables[table])).all(), table
    assert _meetings(odd.engine) == meetings
    assert not odd.stand_in.posts("/api/views.open")
    # The keys the bot issued act.
    for key in keys:
        assert "Snoozed" in odd.press(CHAIR, {"action_id": "snooze_1wd", "value": key})
    snooze = SQLModel.metadata.tables["snooze"]
    with odd.engine.connect() as conn:
        assert sorted(conn.execute(select(snooze.c.item_key)).scalars()) == keys


def test_the_scr_escalation_can_be_acknowledged_and_then_stops_repeating(engine):
    assert import_directory(engine, GRAMPIAN).ok
    rec = audits_and_scrs.add_recommendation(engine, audits_and_scrs.add_scr(engine, "R", "Grampian", None), "x")
    action = audits_and_scrs.add_action(engine, rec, "em-provider", dt.date(2026, 11, 1), "Protocol")
    rules = NudgeRules()
    run_planning_job(engine, "escalations", NOW, rules)
    bot = Bot(engine)
    try:
        bot.deliver()
        acks = [b for _, b in bot.buttons(SOG.replace("USOG1", "U1SOG001"))
                if b["action_id"] == "ack_escalation" and b["value"].startswith("scr:")]
        assert [b["value"] for b in acks] == [f"scr:{action}|scr_overdue"]
        assert "Only a SOG chair" in bot.press("U1CHAIR1", acks[0])
        assert "Acknowledged" in bot.press("U1SOG001", acks[0])
        # Five working days on, the escalation would repeat: acknowledged, it does not.
        # (The owner agency's email chaser carries on until the action is done.)
        later = dt.datetime(2026, 12, 4, 9, 0, tzinfo=LONDON)
        planned = run_planning_job(engine, "escalations", later, rules).planned
        assert not (planned["item_key"] == f"scr:{action}").any()
        digest = run_planning_job(engine, "digest", later, rules).planned
        assert (digest["rule"] == "scr").any()
    finally:
        bot.close()
