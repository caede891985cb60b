"""Lists that do not fit one Slack message page inside Slack, and buttons redraw the message
they were pressed on (issue 13, items 1 and 4).

A demo region big enough to overflow (Grampian at 2,500 individuals) is imported into a real SQLite
file; its digests and escalations are planned and delivered to a local stand-in for
Slack's Web API; the bot is served over HTTP and every press is a signed request. Every
payload the bot sends back is checked with slack_sdk's own models and Slack's limits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.channels.slack import SlackTransport
from bot.channels.slack.paging import page_items, page_value
from bot.channels.slack import redraw as notices
from bot.delivery.worker import deliver_pending
from bot.jobs.ticks import run_planning_job
from bot.server import build_asgi
from bot.settings import Settings
from mappa_core.synthetic_region import write_demo_data
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import db
from mappa_core.storage.importer import import_directory
from tests.conftest import PG_URL, _admin_execute
from tests.slack_harness import (
    SIGNING_SECRET, BotServer, SlackStandIn, action_body, command_body, post, sign, view_body,
)

LONDON = ZoneInfo("Europe/London")
AS_OF = dt.date(2027, 1, 8)                                  # the demo's last records
LATER = dt.datetime(2027, 2, 15, 9, 0, tzinfo=LONDON)        # a Monday, five weeks on
COORD, SOG, STAFF = "UGRACRD", "UGRASOG", "UGRASTF"
CHAIRS = [f"UGRACH{i:03d}" for i in range(1, 5)]


def check_blocks(blocks: list[dict]) -> None:
    """Valid Block Kit by slack_sdk's models, within the limits they do not check."""
    assert 0 < len(blocks) <= 50, len(blocks)
    for block in blocks:
        Block.parse(block).validate_json()
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "actions":
            ids = [e["action_id"] for e in block["elements"]]
            assert len(ids) == len(set(ids)), ids
        for e in block.get("elements", []):
            if e.get("type") == "button":
                assert len(e["text"]["text"]) <= 75 and len(e.get("value", "")) <= 2000
    text = json.dumps(blocks)
    # No Slack message names a command-line command: Slack users have none.
    assert "`mappa " not in text and "run `" not in text and "lists them all" not in text


def nav_button(blocks: list[dict], which: str) -> dict | None:
    for block in blocks:
        for e in block.get("elements", []) if block["type"] == "actions" else []:
            if e.get("action_id", "").endswith("_" + which):
                return e
    return None


def sections(blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


# ------------------------------------------------------------------------------ the pager


def test_page_items_cuts_clamps_and_carries_its_value():
    items = list(range(45))
    one = page_items(items, 1, 20, "page_x", {"o": 7})
    assert one.items == list(range(20)) and (one.page, one.pages, one.total) == (1, 3, 45)
    assert nav_button(one.nav, "prev") is None
    nxt = nav_button(one.nav, "next")
    assert nxt["action_id"] == "page_x_next" and page_value(nxt["value"]) == {"o": 7, "p": 2}
    assert "Showing 1-20 of 45 items" in one.nav[0]["elements"][0]["text"]
    last = page_items(items, 99, 20, "page_x", {"o": 7})  # a list that shrank: the last page
    assert last.items == list(range(40, 45)) and last.page == 3
    assert page_value(nav_button(last.nav, "prev")["value"])["p"] == 2
    assert nav_button(last.nav, "next") is None
    for page in (one, last, page_items(items, 2, 20, "page_x", {"o": 7})):
        check_blocks(page.nav)
    assert page_items(items[:20], 1, 20, "page_x").nav == []  # all fit: no buttons
    assert page_items([], 3, 20, "page_x").items == []
    with pytest.raises(ValueError):
        page_items(items, 1, 20, "page_x", {"big": "x" * 2000})
    assert page_value("not json")["p"] == 1 and page_value('{"p": -3}')["p"] == 1
    assert page_value('{"p": true}')["p"] == 1 and page_value("[1]") == {"p": 1}


# ------------------------------------------------------------------------------ the region


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(request, tmp_path_factory):
    """A SQLite file, then a PostgreSQL database of its own (when the tests have one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('pages') / 'mappa.db'}"
        return
    if not PG_URL:
        pytest.skip("MAPPA_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped")
    name = f"mappa_test_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def demo_region(engine, data, api_url: str) -> None:
    """The demo region (Grampian alone, 2,500 individuals: three times its real caseload,
    with the chairs to match; seed 4, whose first two chairs' digests overflow a page five
    weeks after the records end), written to `data` and imported into `engine`, its
    digests and escalations planned for LATER and delivered to the Slack stand-in at
    `api_url`."""
    write_demo_data(data, individuals=2500, years=3, seed=4, until=AS_OF, areas=["Grampian"])
    db.ensure_schema(engine)
    assert import_directory(engine, data).ok
    for job in ("digest", "escalations"):
        run_planning_job(engine, job, LATER, NudgeRules())
    settings = Settings(slack_bot_token="xoxb-test", slack_api_url=api_url)
    transport = SlackTransport(AsyncWebClient(token="xoxb-test", base_url=api_url))
    report = asyncio.run(deliver_pending(engine, settings, transport,
                                         LATER + dt.timedelta(hours=1)))
    assert report.failed == 0 and report.sent.get("slack", 0) >= 5


@pytest.fixture(scope="module")
def bot(database, tmp_path_factory):
    """The demo region's digests and escalations planned for LATER and delivered to the
    stand-in (the DMs it holds), and the bot serving the region as of that day."""
    engine = db.make_engine(database)
    stand_in = SlackStandIn()
    demo_region(engine, tmp_path_factory.mktemp("pages") / "data", stand_in.api_url())
    settings = Settings(work_processes=0, database_url=str(engine.url),
                        slack_bot_token="xoxb-test", slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=stand_in.api_url())
    server = BotServer(build_asgi(settings, engine, today=lambda: LATER.date()))

    class Harness:
        n = 0

    h = Harness()
    h.engine, h.stand_in, h.server = engine, stand_in, server
    h.sent = delivered(stand_in)

    def command(user, text):
        h.n += 1
        name = f"c{h.n}"
        body = command_body(user, text, stand_in.response_url(name))
        status, out, _ = post(server.url + "/slack/events", body, sign(body))
        assert status == 200, out
        return stand_in.wait_for(f"/response/{name}")[0]["body"]

    def press(user, action_id, value, message=None, channel="D1", wait=True, **extra):
        """Press a button; the response_url post it gives (None when wait is False)."""
        h.n += 1
        name = f"a{h.n}"
        body = action_body(user, action_id, value, stand_in.response_url(name),
                           message=message, channel=channel, **extra)
        status, out, _ = post(server.url + "/slack/events", body, sign(body))
        assert status == 200, out
        return stand_in.wait_for(f"/response/{name}")[0]["body"] if wait else name

    def updates_after(count: int, wanted: int = 1) -> list[dict]:
        return [c["body"] for c in stand_in.wait_for("/api/chat.update", count + wanted)[count:]]

    h.command, h.press, h.updates_after = command, press, updates_after
    yield h
    server.close()
    stand_in.close()
    engine.dispose()


def delivered(stand_in) -> dict[str, list[dict]]:
    """Each DM the stand-in took, with where it put it: recipient -> [request body, with the
    DM's channel id and ts answered as "posted_channel" and "ts"] (for `_message`)."""
    sent: dict[str, list[dict]] = {}
    for call in stand_in.posts("/api/chat.postMessage"):
        sent.setdefault(call["body"]["channel"], []).append(
            {**call["body"], "posted_channel": call["reply"]["channel"],
             "ts": call["reply"]["ts"]})
    return sent


def _message(bot, user, rule_title: str) -> tuple[str, dict]:
    """The (channel, message) of the DM to `user` whose header starts with `rule_title`, as
    Slack sends it back with a press: the DM's channel id and the message's ts."""
    for body in bot.sent.get(user, []):
        if rule_title in body["blocks"][0]["text"]["text"]:
            return body["posted_channel"], {"ts": body["ts"], "blocks": body["blocks"]}
    raise AssertionError(f"no {rule_title!r} message to {user}")


# ------------------------------------------------------------------------------ /mappa due


@pytest.mark.http
def test_due_pages_in_place_with_the_true_totals(bot):
    first = bot.command(COORD, "due")
    blocks = first["blocks"]
    check_blocks(blocks)
    header = blocks[1]["elements"][0]["text"]
    overdue, upcoming = (int(header.split(". ")[1].split(" overdue")[0]),
                         int(header.split("overdue, ")[1].split(" due soon")[0]))
    total = overdue + upcoming
    assert total > 80, header  # three pages at least
    assert len(sections(blocks)) == 40
    assert f"Showing 1-40 of {total} items" in json.dumps(blocks)
    nxt = nav_button(blocks, "next")
    assert nav_button(blocks, "prev") is None and nxt["text"]["text"] == "Next"

    second = bot.press(COORD, nxt["action_id"], nxt["value"])
    assert second["replace_original"] is True and second["response_type"] == "ephemeral"
    check_blocks(second["blocks"])
    assert second["blocks"][1] == blocks[1]  # the same true totals on every page
    assert f"Showing 41-80 of {total} items" in json.dumps(second["blocks"])
    assert not set(sections(second["blocks"])) & set(sections(blocks))

    prev = nav_button(second["blocks"], "prev")
    again = bot.press(COORD, prev["action_id"], prev["value"])
    assert again["blocks"] == blocks

    # Page by page to the last (no Next there): every item of the list, once.
    seen, page = [], first
    while True:
        seen += sections(page["blocks"])
        nxt = nav_button(page["blocks"], "next")
        if nxt is None:
            break
        page = bot.press(COORD, nxt["action_id"], nxt["value"])
        check_blocks(page["blocks"])
    assert len(seen) == total and nav_button(page["blocks"], "prev") is not None


@pytest.mark.http
def test_overdue_pages_keep_to_breaches(bot):
    blocks = bot.command(COORD, "overdue")["blocks"]
    check_blocks(blocks)
    nxt = nav_button(blocks, "next")
    assert nxt is not None
    page = bot.press(COORD, nxt["action_id"], nxt["value"])["blocks"]
    check_blocks(page)
    assert page[0]["text"]["text"] == "Overdue MAPPA items"
    assert all(":red_circle:" in s for s in sections(page)[1:])


@pytest.mark.http
def test_a_page_button_shows_only_what_the_presser_may_see(bot):
    blocks = bot.command(COORD, "due")["blocks"]
    nxt = nav_button(blocks, "next")
    # A chair pressing the co-ordinator's button pages their own list, not the area's.
    own = bot.command(CHAIRS[0], "due")["blocks"]
    theirs = bot.press(CHAIRS[0], nxt["action_id"], nxt["value"])["blocks"]
    check_blocks(theirs)
    assert "cases you chair" in theirs[1]["elements"][0]["text"]
    assert theirs[1] == own[1]
    staff = bot.press(STAFF, nxt["action_id"], nxt["value"])
    assert "Due lists are for meeting chairs" in json.dumps(staff["blocks"])
    assert "GRA" not in json.dumps(staff["blocks"]).upper().replace("GRAMPIAN", "")
    stranger = bot.press("U999NOBODY", nxt["action_id"], nxt["value"])
    assert "not authorised" in stranger["text"] and "blocks" not in stranger


# ------------------------------------------------------------------------------ notices


@pytest.mark.http
def test_a_digest_that_does_not_fit_pages_in_place(bot):
    chair = max(CHAIRS, key=lambda u: max(
        (len(b["blocks"]) for b in bot.sent.get(u, [])), default=0))
    channel, message = _message(bot, chair, "Your MAPPA items")
    blocks = message["blocks"]
    check_blocks(blocks)
    intro = blocks[1]["text"]["text"]
    n_overdue = int(intro.split("Good morning. ")[1].split(" overdue")[0])
    n_upcoming = int(intro.split(" and ")[1].split(" coming up")[0])
    total = n_overdue + n_upcoming
    assert total > 20 and len([b for b in blocks if b["type"] == "section"]) == 1 + 20
    assert f"Showing 1-20 of {total} items" in json.dumps(blocks)
    nxt = nav_button(blocks, "next")

    # Someone else pressing it (a forwarded message) is refused, and nothing is updated.
    before = len(bot.stand_in.posts("/api/chat.update"))
    other = next(u for u in CHAIRS if u != chair)
    refused = bot.press(other, nxt["action_id"], nxt["value"], message=message, channel=channel)
    assert "sent to someone else" in json.dumps(refused["blocks"])
    assert refused["replace_original"] is False

    bot.press(chair, nxt["action_id"], nxt["value"], message=message, channel=channel,
              wait=False)
    update = bot.updates_after(before)[0]
    assert (update["channel"], update["ts"]) == (channel, message["ts"])
    page2 = update["blocks"]
    check_blocks(page2)
    assert page2[1] == blocks[1]  # the true totals again
    assert f"Showing 21-{min(40, total)} of {total} items" in json.dumps(page2)
    assert not set(sections(page2)[1:]) & set(sections(blocks)[1:])
    assert nav_button(page2, "prev") is not None
    # Each item still has its buttons on the other page.
    assert sum(1 for b in page2 if b["type"] == "actions") == len(sections(page2)) - 1 + 1


@pytest.mark.http
def test_an_escalation_that_does_not_fit_pages_too(bot):
    channel, message = _message(bot, SOG, "MAPPA escalation")
    blocks = message["blocks"]
    check_blocks(blocks)
    # The intro leads with the count in bold ("*101* deadlines in ..."), then the summary.
    count = int(blocks[1]["text"]["text"].split(" deadline")[0].strip("*").replace(",", ""))
    assert count > 20 and f"of {count} items" in json.dumps(blocks)
    before = len(bot.stand_in.posts("/api/chat.update"))
    nxt = nav_button(blocks, "next")
    bot.press(SOG, nxt["action_id"], nxt["value"], message=message, channel=channel, wait=False)
    page2 = bot.updates_after(before)[0]["blocks"]
    check_blocks(page2)
    assert "Acknowledge" in json.dumps(page2) and page2[1] == blocks[1]


# ------------------------------------------------------------------------------ redraws


def _item_buttons(blocks: list[dict]) -> dict[str, dict]:
    """Item key -> its actions block."""
    return {b["block_id"]: b for b in blocks
            if b["type"] == "actions" and not b["block_id"].startswith("page_")}


def _line_of(blocks: list[dict], key: str) -> str:
    """The item line just above the item's buttons (or where they were)."""
    for i, b in enumerate(blocks):
        if b.get("block_id") == key:
            return blocks[i - 1]["text"]["text"]
    raise AssertionError(key)


@pytest.mark.http
def test_buttons_redraw_the_digest_with_who_and_when(bot):
    chair = CHAIRS[1]
    channel, message = _message(bot, chair, "Your MAPPA items")
    blocks = message["blocks"]
    items = _item_buttons(blocks)
    minutes = next(k for k in items if k.startswith("minutes:"))
    snoozed = next(k for k in items if k.startswith("review:"))
    before = len(bot.stand_in.posts("/api/chat.update"))

    answer = bot.press(chair, "snooze_1wd", snoozed, message=message, channel=channel)
    assert "Snoozed" in answer["text"] and answer["replace_original"] is False
    update = bot.updates_after(before)[0]
    assert (update["channel"], update["ts"]) == (channel, message["ts"])
    redrawn = update["blocks"]
    check_blocks(redrawn)
    # The snoozed item: its line says so, with who and when; its buttons are gone.
    assert snoozed not in _item_buttons(redrawn)
    line = next(s for s in sections(redrawn) if ":zzz: Snoozed until 2027-02-16 by Chair 2 "
                                                "Grampian, 20" in s)
    assert line.split("\n")[0] in sections(blocks)
    # The other items are as they were.
    assert {k: v for k, v in _item_buttons(redrawn).items()} == {
        k: v for k, v in items.items() if k != snoozed}

    bot.press(chair, "minutes_issued", minutes, message={**message, "blocks": redrawn},
              channel=channel)
    redrawn = bot.updates_after(before, 2)[1]["blocks"]
    check_blocks(redrawn)
    assert ":white_check_mark: Minutes issued: recorded by Chair 2 Grampian" in _line_of(
        redrawn, minutes)
    left = [e["action_id"] for e in _item_buttons(redrawn)[minutes]["elements"]]
    assert "minutes_issued" not in left and "rmp_ratified" in left  # RMP is still to come
    assert ":zzz: Snoozed until" in json.dumps(redrawn)  # drawn from the records, not kept

    # Paging away and back keeps what was done.
    nxt = nav_button(redrawn, "next")
    if nxt is not None:
        bot.press(chair, nxt["action_id"], nxt["value"], message={**message, "blocks": redrawn},
                  channel=channel, wait=False)
        page2 = bot.updates_after(before, 3)[2]["blocks"]
        prev = nav_button(page2, "prev")
        bot.press(chair, prev["action_id"], prev["value"], message={**message, "blocks": page2},
                  channel=channel, wait=False)
        back = bot.updates_after(before, 4)[3]["blocks"]
        assert back == redrawn


@pytest.mark.http
def test_a_refused_button_leaves_the_message_as_it_was(bot):
    chair = CHAIRS[2]
    channel, message = _message(bot, chair, "Your MAPPA items")
    key = next(iter(_item_buttons(message["blocks"])))
    before = len(bot.stand_in.posts("/api/chat.update"))
    # A chair of other cases pressing this chair's button (a forwarded message).
    other = CHAIRS[3]
    answer = bot.press(other, "snooze_3wd", key, message=message, channel=channel)
    assert "Only the case's chair" in answer["text"]
    bot.command(COORD, "help")  # a request after it: any update would have been sent by now
    assert len(bot.stand_in.posts("/api/chat.update")) == before


@pytest.mark.http
def test_contribution_received_and_a_reason_redraw_the_digest(bot):
    chair = next(u for u in CHAIRS[2:] + CHAIRS[:2] if any(
        k.startswith("contribution:") for k in _item_buttons(_message(bot, u, "Your")[1]["blocks"])))
    channel, message = _message(bot, chair, "Your MAPPA items")
    items = _item_buttons(message["blocks"])
    contribution = next(k for k in items if k.startswith("contribution:"))
    other = next(k for k in items if k != contribution)
    before = len(bot.stand_in.posts("/api/chat.update"))
    bot.press(chair, "contribution_received", contribution, message=message, channel=channel)
    redrawn = bot.updates_after(before)[0]["blocks"]
    check_blocks(redrawn)
    assert contribution not in _item_buttons(redrawn)
    assert any(":white_check_mark: Contribution received: recorded by" in s
               for s in sections(redrawn))

    # Record reason: the modal carries where the message is; saving it redraws the message.
    opened = len(bot.stand_in.posts("/api/views.open"))
    bot.press(chair, "record_reason", other, message={**message, "blocks": redrawn},
              channel=channel, wait=False)
    view = bot.stand_in.wait_for("/api/views.open", opened + 1)[opened]["body"]["view"]
    metadata = view["private_metadata"]
    assert json.loads(metadata)["k"] == other and len(metadata) <= 3000
    body = view_body(chair, metadata, "information_late", "Police report late")
    status, out, _ = post(bot.server.url + "/slack/events", body, sign(body))
    assert status == 200 and out == ""
    redrawn = bot.updates_after(before, 2)[1]["blocks"]
    check_blocks(redrawn)
    assert "Reason \"Information late\" recorded by" in _line_of(redrawn, other[:255])
    assert other in _item_buttons(redrawn)  # a reason leaves the item open


@pytest.mark.http
def test_acknowledge_redraws_the_escalation(bot):
    channel, message = _message(bot, SOG, "MAPPA escalation")
    acks = _item_buttons(message["blocks"])
    key = next(iter(acks))
    value = acks[key]["elements"][0]["value"]
    before = len(bot.stand_in.posts("/api/chat.update"))
    answer = bot.press(SOG, "ack_escalation", value, message=message, channel=channel)
    assert "Acknowledged" in answer["text"]
    redrawn = bot.updates_after(before)[0]["blocks"]
    check_blocks(redrawn)
    assert key not in _item_buttons(redrawn)
    assert ":ok_hand: Acknowledged by SOG Chair Grampian, 20" in json.dumps(redrawn)
    # The others keep their button, unless their line says the work is done (a chair's
    # button in an earlier test: the escalation shows that too).
    first_lines = {s.split("\n")[0]: s for s in sections(redrawn)}
    for other in set(acks) - {key} - set(_item_buttons(redrawn)):
        assert "recorded by" in first_lines[_line_of(message["blocks"], other)]
    assert len(_item_buttons(redrawn)) >= len(acks) - 3


@pytest.mark.http
def test_acknowledge_all_shown_redraws_the_escalation_with_each_one_acknowledged(bot):
    channel, message = _message(bot, SOG, "MAPPA escalation")
    buttons = _item_buttons(message["blocks"])
    bulk = buttons.pop("ack_escalation_shown")["elements"][0]
    shown = [k for k, b in buttons.items() if b["elements"][0]["action_id"] == "ack_escalation"]
    assert len(shown) >= 2 and bulk["value"] == "|".join(
        buttons[k]["elements"][0]["value"] for k in shown)
    before = len(bot.stand_in.posts("/api/chat.update"))
    answer = bot.press(SOG, "ack_escalation_shown", bulk["value"], message=message,
                       channel=channel)
    assert f"Acknowledged {len(shown)} of {len(shown)}" in answer["text"]
    redrawn = bot.updates_after(before)[0]["blocks"]
    check_blocks(redrawn)
    left = _item_buttons(redrawn)
    assert not set(shown) & set(left) and "ack_escalation_shown" not in left
    assert json.dumps(redrawn).count(":ok_hand: Acknowledged by SOG Chair Grampian") == len(shown)


# ------------------------------------------------------------------------------ where


@pytest.mark.http
def test_a_notice_keeps_where_slack_posted_it(bot):
    """Each DM's outbox rows hold the channel id and ts chat.postMessage answered (the DM's
    own D... id, not the user id it was addressed to)."""
    posted = {(c["body"]["channel"], c["reply"]["channel"], c["reply"]["ts"])
              for c in bot.stand_in.posts("/api/chat.postMessage")}
    with bot.engine.connect() as conn:
        rows = conn.execute(text("SELECT address, posted_channel, posted_ts FROM outbox "
                                 "WHERE channel = 'slack' AND status = 'sent'")).all()
    assert rows and {tuple(r) for r in rows} <= posted
    assert all(r.posted_channel.startswith("D") for r in rows)


def _refused_page(bot, user, message, channel) -> dict:
    before = len(bot.stand_in.posts("/api/chat.update"))
    nxt = nav_button(message["blocks"], "next")
    reply = bot.press(user, nxt["action_id"], nxt["value"], message=message, channel=channel)
    bot.command(COORD, "help")  # a request after it: any update would have been sent by now
    assert len(bot.stand_in.posts("/api/chat.update")) == before
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    return reply


def _outcome(bot, action: str, detail: str) -> str:
    for _ in range(40):  # audit rows are written in batches
        with bot.engine.connect() as conn:
            row = conn.execute(text("SELECT outcome FROM audit_log WHERE action = :a AND "
                                    "detail = :d ORDER BY id DESC"),
                               {"a": action, "d": detail}).first()
        if row is not None:
            return row.outcome
        time.sleep(0.1)
    raise AssertionError(f"no audit row for {action} {detail}")


@pytest.mark.http
@pytest.mark.parametrize("forged", ["channel", "ts"])
def test_a_page_pressed_on_another_message_is_not_drawn_there(bot, forged):
    """A signed press whose container names another message (another channel the bot can
    write to, or another ts in the same DM) is refused politely and nothing is updated: the
    reader's own notice is never drawn over someone else's message."""
    channel, message = _message(bot, CHAIRS[0], "Your MAPPA items")
    if forged == "channel":
        channel = "C0GENERAL"
    else:
        message = {**message, "ts": "1600000000.000100"}
    reply = _refused_page(bot, CHAIRS[0], message, channel)
    assert reply["text"] == notices.ELSEWHERE
    first = page_value(nav_button(message["blocks"], "next")["value"])["o"]
    assert _outcome(bot, "action:page_notice", f"notice {first} page 2") == "refused"


@pytest.mark.http
def test_a_page_of_a_notice_sent_before_its_place_was_kept_is_not_drawn(bot):
    channel, message = _message(bot, CHAIRS[0], "Your MAPPA items")
    first = page_value(nav_button(message["blocks"], "next")["value"])["o"]
    with bot.engine.begin() as conn:
        kept = conn.execute(text("SELECT posted_channel, posted_ts FROM outbox WHERE id = :i"),
                            {"i": first}).one()
        conn.execute(text("UPDATE outbox SET posted_channel = NULL, posted_ts = NULL "
                          "WHERE id = :i"), {"i": first})
    try:
        assert _refused_page(bot, CHAIRS[0], message, channel)["text"] == notices.BEFORE_KEPT
    finally:
        with bot.engine.begin() as conn:
            conn.execute(text("UPDATE outbox SET posted_channel = :c, posted_ts = :t "
                              "WHERE id = :i"), {"c": kept[0], "t": kept[1], "i": first})


@pytest.mark.http
@pytest.mark.parametrize("forged", ["channel", "ts"])
def test_a_button_pressed_on_another_message_does_its_work_but_draws_nothing(bot, forged):
    """Snooze (a redraw after the answer) and a reason (its modal carries where to redraw)
    with a forged place: the person has their answer, and no chat.update is sent."""
    chair = CHAIRS[3]
    channel, message = _message(bot, chair, "Your MAPPA items")
    items = [k for k in _item_buttons(message["blocks"]) if k.startswith("review:")]
    where = ({"channel": "C0GENERAL"} if forged == "channel" else
             {"message": {**message, "ts": "1600000000.000200"}})
    press = {"message": message, "channel": channel, **where}
    before = len(bot.stand_in.posts("/api/chat.update"))
    key = items[0] if forged == "channel" else items[1]
    answer = bot.press(chair, "snooze_1wd", key, **press)
    assert "Snoozed" in answer["text"]

    opened = len(bot.stand_in.posts("/api/views.open"))
    bot.press(chair, "record_reason", items[2], wait=False, **press)
    view = bot.stand_in.wait_for("/api/views.open", opened + 1)[opened]["body"]["view"]
    body = view_body(chair, view["private_metadata"], "information_late", "late")
    assert post(bot.server.url + "/slack/events", body, sign(body))[:2] == (200, "")
    bot.command(COORD, "help")  # a request after them: any update would have been sent by now
    assert len(bot.stand_in.posts("/api/chat.update")) == before


def test_upgrade_from_0010_keeps_sent_notices_with_no_place(db_url):
    """An existing database upgrades (SQLite and PostgreSQL): its outbox rows keep every
    value and have no place (a press on one is answered, its message left alone)."""
    from alembic import command

    engine = db.make_engine(db_url)
    try:
        command.upgrade(db._alembic_config(engine), "0010_meeting_kind_index")
        at = dt.datetime(2026, 11, 26, 9, 0)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO outbox (dedupe_key, rule, item_key, stage, recipient_id, channel, "
                "address, urgency, group_key, payload, planned_at, not_before, status, "
                "attempts, next_attempt_at, reported) VALUES ('k', 'digest', 'minutes:M1', "
                "'due', 'g-chair-1', 'slack', 'U1CHAIR1', 'normal', 'g', '{}', :at, :at, "
                "'sent', 1, :at, false)"), {"at": at})
        db.upgrade(engine)
        assert db.current_revision(engine) == db.SCHEMA_REVISION
        with engine.connect() as conn:
            row = conn.execute(text("SELECT dedupe_key, status, address, posted_channel, "
                                    "posted_ts FROM outbox")).one()
        assert tuple(row) == ("k", "sent", "U1CHAIR1", None, None)
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ narrowing

NATIONAL = "UNATCRD"


@pytest.fixture(scope="module")
def national(bot):
    """A national co-ordinator (no area), whose lists are the longest; and, as the demo
    region is one area at this size, two thirds of its cases moved to Fife and Forth
    Valley (two names that start alike). These tests come last in the module: the move
    shrinks Grampian's lists."""
    with bot.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO person (person_id, name, email, slack_user_id, roles, area, agency) "
            "VALUES ('national-coordinator', 'National Co-ordinator', 'nc@example.org', :u, "
            "'coordinator', NULL, NULL)"), {"u": NATIONAL})
        refs = conn.execute(text("SELECT ref FROM individual ORDER BY ref")).scalars().all()
        for area, moved in (("Fife", refs[0::3]), ("Forth Valley", refs[1::3])):
            conn.execute(text("UPDATE individual SET area = :a WHERE ref = :r"),
                         [{"a": area, "r": r} for r in moved])
        db.bump_change_stamp(conn)  # as an import would: every cached answer goes
    return NATIONAL


def _totals(blocks: list[dict]) -> tuple[int, int]:
    header = blocks[1]["elements"][0]["text"]
    return (int(header.split(". ")[1].split(" overdue")[0]),
            int(header.split("overdue, ")[1].split(" due soon")[0]))


def _every_page(bot, user, first: dict) -> list[str]:
    """The sections of every page, pressing Next to the last."""
    seen, page = [], first
    while True:
        check_blocks(page["blocks"])
        assert page["blocks"][1] == first["blocks"][1]  # the same totals on every page
        seen += sections(page["blocks"])
        nxt = nav_button(page["blocks"], "next")
        if nxt is None:
            return seen
        page = bot.press(user, nxt["action_id"], nxt["value"])


@pytest.mark.http
def test_a_long_list_narrows_by_kind_and_area_with_true_totals(bot, national):
    whole = bot.command(national, "overdue")
    check_blocks(whole["blocks"])
    header = whole["blocks"][1]["elements"][0]["text"]
    assert "all cases in every area" in header
    assert "Narrow it by kind or area, e.g. `/mappa overdue minutes` or `/mappa overdue " in header
    overdue, _ = _totals(whole["blocks"])

    # By kind: every item on every page is of that kind, and the header counts them all.
    minutes = bot.command(national, "overdue minutes")
    assert "; minutes and RMP only" in minutes["blocks"][1]["elements"][0]["text"]
    shown = _every_page(bot, national, minutes)
    assert 0 < len(shown) == sum(_totals(minutes["blocks"])) < overdue
    assert all(" minutes and RMP: `" in s for s in shown)

    # By area: the areas' overdue counts add up to the national count, and an area's items
    # are its own cases (the area typed in lower case, or as the start of its name).
    with bot.engine.connect() as conn:
        areas = dict(conn.execute(text("SELECT ref, area FROM individual")).all())
    names = sorted(set(areas.values()))
    assert len(names) > 1
    counts = {}
    for name in names:
        reply = bot.command(national, f"overdue {name.lower()}")
        assert f"all cases in {name};" in reply["blocks"][1]["elements"][0]["text"]
        counts[name] = _totals(reply["blocks"])[0]
    assert sum(counts.values()) == overdue
    busiest = max(counts, key=counts.get)
    prefix = next(busiest[:n] for n in range(1, len(busiest) + 1)
                  if sum(a.lower().startswith(busiest[:n].lower()) for a in names) == 1)
    first = bot.command(national, f"overdue {prefix.lower()}")
    refs = [s.split("`")[1] for s in _every_page(bot, national, first)]
    assert len(refs) == counts[busiest] and {areas[r] for r in refs} == {busiest}

    ambiguous = json.dumps(bot.command(national, "overdue f"))
    assert "Several areas start with 'f'. Areas: Fife, Forth Valley." in ambiguous

    # Both at once, with days, in any order.
    both = bot.command(national, f"due {busiest} 7 reviews")
    header = both["blocks"][1]["elements"][0]["text"]
    assert f"all cases in {busiest}; review due only" in header
    assert all(" review due: `" in s for s in _every_page(bot, national, both))


@pytest.mark.http
def test_narrowing_keeps_to_what_the_person_may_see(bot, national):
    with bot.engine.connect() as conn:
        other = conn.execute(text(
            "SELECT MIN(area) FROM individual WHERE area != 'Grampian'")).scalar()
    refused = json.dumps(bot.command(COORD, f"due {other}")["blocks"])
    assert "You oversee Grampian: its due lists only." in refused and "`" not in refused
    own = bot.command(COORD, "due grampian")["blocks"]
    assert _totals(own) == _totals(bot.command(COORD, "due")["blocks"])
    elsewhere = json.dumps(bot.command(CHAIRS[0], f"due {other}")["blocks"])
    assert "Your due lists cover the cases you chair in Grampian." in elsewhere
    chair = bot.command(CHAIRS[0], "due contributions")["blocks"]
    assert "cases you chair; written contribution only" in chair[1]["elements"][0]["text"]
    assert all(" written contribution: `" in s for s in sections(chair))
    staff = json.dumps(bot.command(STAFF, "due minutes")["blocks"])
    assert "Due lists are for meeting chairs" in staff


@pytest.mark.http
def test_an_unknown_or_forged_area_gets_the_help_with_the_areas_named(bot, national):
    reply = json.dumps(bot.command(COORD, "due 7 <!channel> Nowhere"))
    assert "No area is called '&lt;!channel&gt; Nowhere'. Areas: " in reply
    assert "Grampian" in reply and "<!channel>" not in reply and "/mappa status [topic]" in reply
    assert "too many" not in json.dumps(bot.command(COORD, "due " + "x" * 64))
    assert "at most 64 characters" in json.dumps(bot.command(COORD, "due " + "x" * 65))
    # A forged page value: an unknown kind is ignored, an area is checked as a typed one.
    forged = json.dumps({"c": "due", "d": 14, "k": "bogus", "a": "<b>" * 1000, "p": 2})
    answer = json.dumps(bot.press(COORD, "page_due_next", forged))
    assert "No area is called '&lt;b&gt;" in answer and "<b>" not in answer
    page = bot.press(national, "page_due_next", json.dumps(
        {"c": "overdue", "k": "minutes", "p": 2}))
    check_blocks(page["blocks"])
    assert all(" minutes and RMP: `" in s for s in sections(page["blocks"]))
