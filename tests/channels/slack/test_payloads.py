"""Every Slack payload is valid by construction (issue 13.3).

Every message, modal and App Home view the product sends is captured where it leaves the
bot: the answers to signed HTTP requests (response_url), the Web API calls recorded by the
Slack stand-in (chat.postMessage, views.open, views.publish), and every notice the
planning jobs produce, rendered for Slack. Each is checked with slack_sdk's own models
(`Block.parse(...).validate_json()`, `View`) and the limits they do not check
(bot/channels/slack/limits.problems): on the demo region, on adversarial text (3,000
character escalations of `&`, `<`, emoji and right-to-left text; areas and names that
grow past a header's 150 characters once escaped), and, marked slow, on a 100,000
individual region.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import mappa_templates
import pytest
from hypothesis import given, settings as hsettings, strategies as st
from sqlalchemy import text as sql_text

from bot.channels import render as render_group
from bot.channels.slack.limits import (
    ELLIPSIS, MAX_HEADER_TEXT, MAX_SECTION_TEXT, fit, problems, split_text, units,
)
from bot.jobs.ticks import run_planning_job
from bot.channels.slack.blocks import plain_pieces, render_blocks
from bot.templates import environment
from mappa_core.synthetic_region import write_demo_data
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import audits_and_scrs, db, outbox
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import Bot

LONDON = ZoneInfo("Europe/London")
TEMPLATES = sorted(p.name for p in (Path(mappa_templates.__file__).parent / "slack").glob("*.j2"))
# Adversarial text: escaping grows `&` five-fold and `<` four-fold; emoji count two.
ESCALATIONS = ["A & B < C " * 300, "&" * 3000, "<" * 2999 + "&", "🚨" * 3000,
               "שלום עולם, זה דחוף ‏" * 150, "x" * 3000,
               ("line & <b>\n" * 300)[:3000]]
AREA_X = "🚨 שלום " + "<&>" * 18  # 61 characters; 250 once escaped
NAME_X = ("שלום <&> 🚨 " * 20)[:200]


# ------------------------------------------------------------------ the checks themselves


def test_problems_finds_what_slack_refuses_and_fit_repairs_it():
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}
    assert problems([section]) == []
    long_header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    button = {"type": "actions", "elements": [{"type": "button", "action_id": "a",
              "text": {"type": "plain_text", "text": "b" * 76}, "value": "v" * 2001}]}
    bad = [long_header, {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}},
           button, {"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3001}]}]
    found = problems(bad)
    for what in ("header", "section text", "button text", "button value", "context text"):
        assert any(what in p for p in found), (what, found)
    assert problems([section] * 51) and not problems([section] * 50)
    assert problems({"type": "home", "blocks": [section] * 101})
    assert not problems({"type": "home", "blocks": [section] * 100})
    assert problems([{"type": "section", "text": {"type": "mrkdwn", "text": "😀" * 1501}}])
    assert problems([]) and problems([{"type": "no-such-block"}])

    fixed = fit(bad + [section] * 60)
    assert problems(fixed) == [] and len(fixed) == 50
    shown = str(fixed)
    assert ELLIPSIS in fixed[0]["text"]["text"] and "more characters not shown" in shown
    assert "more entries not shown here" in shown
    view = fit({"type": "modal", "title": {"type": "plain_text", "text": "t" * 30},
                "blocks": bad + [section] * 120})
    assert problems(view) == [] and len(view["blocks"]) == 100


def test_within_the_limits_fit_changes_nothing():
    blocks = render_blocks("slack/help.json.j2", problem=None, due_soon_days=14)
    assert fit(blocks) is blocks
    view = render_blocks("slack/reason_modal.json.j2", item_key="k", item_label="l",
                       reasons=[("a", "A")])
    assert fit(view) is view


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list("ab &<>\n🚨ש\u200f") + ["&amp;", "&lt;", "word "]),
                max_size=3000).map("".join))
def test_split_text_keeps_every_character_and_every_entity(text):
    pieces = split_text(text, 300)
    assert all(units(p) <= 300 for p in pieces)
    # Without the markers a cut adds (an ellipsis each side, the quote carried over), the
    # pieces are the text; and no entity is cut in two (each is still whole in a piece).
    bare = [pieces[0]] + [re.sub(f"^(>|&gt;)?{ELLIPSIS} ", "", p) for p in pieces[1:]]
    bare = [p.removesuffix(" " + ELLIPSIS) for p in bare]
    assert re.sub(r"\s", "", "".join(bare)) == re.sub(r"\s", "", text)
    for entity in ("&amp;", "&lt;", "&gt;"):
        assert sum(p.count(entity) for p in bare) == text.count(entity)


# ------------------------------------------------------------------ capturing and checking


def notices(engine, monday: dt.datetime) -> list[tuple[str, object, list[dict]]]:
    """Every notice the jobs plan on `monday` (a working day) and five weeks on (when indicators have fallen
    below target), rendered for Slack: (where, blocks, rows)."""
    rules = NudgeRules()
    with engine.begin() as conn:
        conn.execute(sql_text("DELETE FROM outbox"))
    groups = {}
    for when in (monday, monday + dt.timedelta(weeks=5)):
        for job in ("digest", "escalations", "weekly-summary", "quarterly-review"):
            run_planning_job(engine, job, when, rules)
        claimed = outbox.claim(engine, when + dt.timedelta(hours=1), max_groups=100000)
        outbox.mark_sent(engine, [r["id"] for rows in claimed.groups.values() for r in rows], when)
        groups.update(claimed.groups)
    out = []
    for i, (key, rows) in enumerate(groups.items()):
        if key.startswith("chaser|"):  # agency contacts: email only
            continue
        message = render_group([{**r, "channel": "slack"} for r in rows])
        out.append((f"{i} notice {key}", message.blocks, rows))
    return out


def check_all(payloads) -> int:
    found = []
    for where, payload in payloads:
        found += problems(payload, where)
    assert not found, "\n".join(found[:30])
    return len(payloads)


def _button_keys(rendered) -> dict[str, tuple[str, str]]:
    """action id -> (recipient's row, item key) of the first digest button of each kind."""
    keys = {}
    for _, blocks, rows in rendered:
        by_key = {r["payload"].get("item_key"): r for r in rows}
        for b in blocks:
            for el in b.get("elements") or []:
                if el.get("type") == "button" and el["action_id"] not in keys:
                    row = by_key.get(el["value"]) or rows[0]
                    keys[el["action_id"]] = (row, el["value"])
    return keys


def slack_ids(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sql_text(
            "SELECT person_id, slack_user_id FROM person WHERE slack_user_id IS NOT NULL "
            "AND slack_user_id != ''")).all())


def exercise(engine, today: dt.date, monday: dt.datetime, users: dict[str, str], ref: str,
             full: bool = True, escalations=ESCALATIONS[:1], **bot_settings
             ) -> tuple[list, Bot, list]:
    """Everything a person can make the bot send, over signed HTTP; the notices too."""
    rendered = notices(engine, monday)
    payloads = [(w, b) for w, b, _ in rendered]
    bot = Bot(engine, today, **bot_settings)
    try:
        ids = slack_ids(engine)
        commands = ["help", "status", "status level2 2026-27", "status compare", "due",
                    "due 365", "overdue", f"case {ref}", "scr", "nonsense words", "due 999"]
        for role, user in users.items():
            others = ["due", "overdue", f"case {ref}"] if full else ["due 365", "overdue"]
            for text in commands if role == "coordinator" else others:
                bot.command(user, text)
            bot.home(user)
        bot.home("UNOBODY1")
        bot.command("UNOBODY1", "status")
        for text in escalations:
            bot.command(users["coordinator"], f"escalate {text}")
        keys = _button_keys(rendered)
        assert {"minutes_issued", "snooze_1wd", "ack_escalation"} <= set(keys), sorted(keys)
        for action_id, (row, key) in sorted(keys.items()):
            who = ids.get(row["recipient_id"]) or users["coordinator"]
            extra = {"selected_date": (today + dt.timedelta(days=7)).isoformat()} \
                if action_id == "snooze_until" else {}
            if action_id == "record_reason":
                bot.reason(who, key, NAME_X * 10)
            else:
                bot.act(who, action_id, key, **extra)
                bot.act(who, action_id, key, **extra)  # again: "already recorded"
            bot.act(users["staff"], "minutes_issued", key)  # refused
        bot.act(users["coordinator"], "minutes_issued", "minutes:no-such-meeting")  # stale
        for user in users.values():  # after the buttons: the views as they now are
            bot.home(user)
    except BaseException:
        bot.close()
        raise
    return payloads + bot.sent(), bot, rendered


def demo_users(engine, area: str | None = None) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sql_text("SELECT roles, slack_user_id, area FROM person WHERE "
                                     "slack_user_id IS NOT NULL AND slack_user_id != '' "
                                     "ORDER BY person_id")).all()
    users = {}
    for roles, user, where in rows:
        if area is None or where == area:
            for role in ("coordinator", "sog_chair", "chair", "staff"):
                if role in roles.split(";"):
                    users.setdefault(role, user)
    return users


def any_ref(engine, area: str | None = None) -> str:
    """A Level 2/3 case (of `area`, if given: where the users of demo_users(engine, area)
    may see it)."""
    with engine.connect() as conn:
        return conn.execute(sql_text("SELECT ref FROM individual WHERE level > 1 AND "
                                     "(:area IS NULL OR area = :area) ORDER BY ref"),
                            {"area": area}).scalar()


# ------------------------------------------------------------------ the demo region


def synthetic(base: Path, individuals: int, seed: int, until: dt.date):
    """A SQLite file under `base` holding `mappa demo-data`'s region of that size."""
    write_demo_data(base / "data", individuals=individuals, years=3, seed=seed, until=until)
    engine = db.make_engine(f"sqlite:///{base / 'mappa.db'}")
    db.ensure_schema(engine)
    assert import_directory(engine, base / "data").ok
    return engine


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo data (`mappa demo-data`'s default: ten areas, 7,000 individuals) in a SQLite
    file, with an SCR action overdue in the first case's area so that every kind of notice
    exists; that area's people are the ones the test acts as."""
    until = dt.date(2027, 1, 8)
    engine = synthetic(tmp_path_factory.mktemp("demo"), 7000, seed=3, until=until)
    with engine.connect() as conn:
        area = conn.execute(sql_text("SELECT area FROM individual ORDER BY ref")).scalar()
        agency = conn.execute(sql_text("SELECT agency FROM agency WHERE agency LIKE 'housing%' "
                                       "ORDER BY agency")).scalar()
    rec = audits_and_scrs.add_recommendation(engine, audits_and_scrs.add_scr(engine, "SCR 1", area, None),
                                             "Share release plans with housing a month ahead")
    audits_and_scrs.add_action(engine, rec, agency, dt.date(2026, 12, 1), "Agreed")
    yield engine, until, area
    engine.dispose()


@pytest.mark.http
def test_every_payload_on_the_demo_region_is_valid_and_every_template_is_rendered(demo):
    engine, until, area = demo
    environment().cache.clear()  # to see which templates this test renders
    monday = dt.datetime(2027, 1, 11, 9, 0, tzinfo=LONDON)
    payloads, bot, _ = exercise(engine, monday.date(), monday, demo_users(engine, area),
                                any_ref(engine, area))
    bot.close()
    assert check_all(payloads) > 60
    loaded = {name for _, name in environment().cache.keys()}
    missing = [t for t in TEMPLATES if not t.startswith("_") and f"slack/{t}" not in loaded]
    assert not missing, f"templates no payload in this test rendered: {missing}"
    kinds = {w.split()[1] for w, _ in payloads}
    assert {"notice", "reply", "chat.postMessage", "/api/views.open",
            "/api/views.publish"} <= kinds, kinds


# ------------------------------------------------------------------ adversarial text


@pytest.fixture(scope="module")
def adversarial(tmp_path_factory):
    """The Grampian example with its area and every person's name long and hostile once
    escaped (emoji, right-to-left text, `&`, `<`)."""
    base = tmp_path_factory.mktemp("adversarial")
    out = base / "csv"
    shutil.copytree(GRAMPIAN, out)
    for path in sorted(out.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            continue
        for row in rows:
            if row.get("area"):
                row["area"] = AREA_X
            if "name" in row and path.name == "people.csv":
                row["name"] = NAME_X
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    engine = db.make_engine(f"sqlite:///{base / 'mappa.db'}")
    db.ensure_schema(engine)
    report = import_directory(engine, out)
    assert report.ok, report.errors[:5]
    yield engine
    engine.dispose()


@pytest.mark.http
def test_every_payload_with_adversarial_text_is_valid(adversarial):
    engine = adversarial
    monday = dt.datetime(2027, 1, 11, 9, 0, tzinfo=LONDON)
    users = {"coordinator": "U1COORD1", "sog_chair": "U1SOG001", "chair": "U1CHAIR2",
             "staff": "U1STAFF1"}
    payloads, bot, _ = exercise(engine, dt.date(2026, 11, 26), monday, users, "GRA-0103",
                                escalations=ESCALATIONS)
    try:
        check_all(payloads)
        # The limits were reached, and cut with a marker rather than refused.
        headers = [b["text"]["text"] for _, p in payloads
                   for b in (p["blocks"] if isinstance(p, dict) else p) if b["type"] == "header"]
        assert any(h.endswith(ELLIPSIS) and units(h) <= MAX_HEADER_TEXT for h in headers)
        # Each escalation reached the SOG chair whole, split over sections none over 3,000.
        dms = [c["body"]["blocks"] for c in bot.stand_in.posts("/api/chat.postMessage")
               if c["body"].get("channel") == "U1SOG001"
               and "Urgent MAPPA issue" in c["body"]["blocks"][0]["text"]["text"]]
        assert len(dms) == len(ESCALATIONS)
        for raw, blocks in zip(ESCALATIONS, dms):
            texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
            assert all(units(t) <= MAX_SECTION_TEXT for t in texts)
            # The issue as typed, in plain-text sections (no formatting, no mention).
            body = "".join(b["text"]["text"] for b in blocks if b["type"] == "section"
                           and b["text"]["type"] == "plain_text").replace(ELLIPSIS, "")
            escaped = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert re.sub(r"\s", "", body) == re.sub(r"\s", "", escaped), raw[:20]
        replies = [c["body"] for c in bot.stand_in.posts("/response/")
                   if "urgent issue #" in str(c["body"].get("blocks"))]
        assert len(replies) == len(ESCALATIONS)
        assert all("Not reached" not in str(r["blocks"]) for r in replies)
    finally:
        bot.close()


def test_the_escalation_of_the_issue_is_split_not_refused():
    """The issue's own numbers: 3,067 and 5,166 characters in one section before. Now the
    text as typed, escaped, in plain-text sections of at most 3,000 each."""
    for text, sections_expected in (("x" * 3000, 1), ("A & B < C " * 300, 2)):
        blocks = render_blocks("slack/escalation.json.j2", raised_by="Pat Smith", area="Grampian",
                               at="2026-11-26 10:00", pieces=plain_pieces(text), issue_id=1,
                               part=1, parts=1)
        sections = [b["text"]["text"] for b in blocks if b["type"] == "section"
                    and b["text"]["type"] == "plain_text"]
        escaped = text.replace("&", "&amp;").replace("<", "&lt;")
        assert re.sub(r"\s", "", "".join(sections).replace(ELLIPSIS, "")) == \
            re.sub(r"\s", "", escaped)
        assert len(sections) == sections_expected and problems(blocks) == []


# ------------------------------------------------------------------ 100,000 individuals


@pytest.mark.http
@pytest.mark.scale
def test_every_payload_on_a_100000_individual_region_is_valid(tmp_path):
    engine = synthetic(tmp_path, 100_000, seed=1, until=dt.date(2026, 11, 26))
    # One co-ordinator national: the largest lists there are.
    with engine.begin() as conn:
        conn.execute(sql_text("UPDATE person SET area = NULL WHERE person_id = "
                              "(SELECT MIN(person_id) FROM person WHERE roles = 'coordinator')"))
    users = demo_users(engine)
    day = dt.datetime(2026, 12, 1, 9, 0, tzinfo=LONDON)  # Tuesday: the 30th is St Andrew's Day
    # Validity, not speed, is checked here (bench/run.py times the answers): on a busy
    # machine the answers may come late, but they come.
    payloads, bot, rendered = exercise(engine, day.date(), day, users, any_ref(engine),
                                       full=False, wait=300, answer_seconds=300,
                                       max_wait_seconds=300)
    bot.close()
    check_all(payloads)
    biggest = max(len(rows) for _, _, rows in rendered)
    assert biggest > 200, "a SOG chair's escalation holds hundreds of items at this size"
