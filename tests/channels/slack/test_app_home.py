"""The App Home (issue 13.5) over real signed HTTP: Slack's `app_home_opened` event to the
served endpoint, the view published through the Web API stand-in (views.publish), the
Grampian records in a real database (as of Thursday 2026-11-26)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from bot.channels.slack.limits import problems
from bot.channels.slack.home import week_days
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import Bot, event_body, post, sign

TODAY = dt.date(2026, 11, 26)
STAFF, CHAIR1, CHAIR2, SOG, COORD = "U1STAFF1", "U1CHAIR1", "U1CHAIR2", "U1SOG001", "U1COORD1"
REF = re.compile(r"GRA-\d{4}")


@pytest.fixture
def bot(engine):
    assert import_directory(engine, GRAMPIAN).ok
    b = Bot(engine, TODAY)
    b.engine = engine
    yield b
    b.close()


def shown(published: dict) -> str:
    return json.dumps(published["view"]["blocks"])


def refs(text: str) -> set[str]:
    return set(REF.findall(text))


@pytest.mark.http
def test_a_chair_sees_their_own_overdue_and_due_items_and_nothing_of_others(bot):
    published = bot.home(CHAIR1)
    assert published["user_id"] == CHAIR1
    view = published["view"]
    assert view["type"] == "home" and problems(view, "home") == []
    text = shown(published)
    assert "Ailsa Chair: cases and meetings you chair" in text
    assert "*Overdue: 2*" in text and "GRA-0103" in text and "meeting G2" in text
    assert "*Due this week: 0*" in text
    assert "Indicators" not in text  # indicators are for co-ordinators and SOG chairs
    # Nothing about any case beyond what `/mappa due` shows the same person privately.
    due = json.dumps(bot.command(CHAIR1, "due 365")["blocks"])
    assert refs(text) and refs(text) <= refs(due)
    others = refs(json.dumps(bot.command(COORD, "due 365")["blocks"])) - refs(due)
    assert others and not refs(text) & others


@pytest.mark.http
@pytest.mark.parametrize("user, name", [(COORD, "Niall Coordinator"), (SOG, "Kirsty SOG")])
def test_coordinators_and_sog_chairs_see_the_area_and_its_indicators_with_margins(bot, user, name):
    text = shown(bot.home(user))
    assert f"{name}: all cases in Grampian" in text
    assert "*Overdue: 3*" in text and {"GRA-0101", "GRA-0103", "GRA-0106"} <= refs(text)
    assert "Indicators: Grampian" in text and "quarter to date" in text
    status = bot.command(user, "status")["blocks"]
    titles = re.findall(r"\*([^*]+)\*\\n", json.dumps(status))
    assert len(titles) == 10
    for title in titles:
        assert title in text
    assert text.count(", margin ") >= 9 and ":x:" in text and ":white_check_mark:" in text
    # The lists are `/mappa due`'s, this week's part of them.
    assert refs(text) <= refs(json.dumps(bot.command(user, "due 365")["blocks"]))


@pytest.mark.http
def test_staff_see_no_case_and_a_stranger_is_told_they_are_not_authorised(bot):
    text = shown(bot.home(STAFF))
    assert not refs(text) and "Indicators" not in text
    assert "Lists of what is due are for meeting chairs" in text
    stranger = bot.home("U9NOBODY")
    assert stranger["user_id"] == "U9NOBODY"
    assert "You are not authorised to use mappa-bot" in shown(stranger)
    assert problems(stranger["view"]) == []


@pytest.mark.http
def test_the_view_is_rebuilt_each_time_it_is_opened(bot):
    before = shown(bot.home(CHAIR1))
    assert "Written contribution from Electronic Monitoring Scotland for `GRA-0101` (meeting G2)" in before
    bot.act(CHAIR1, "contribution_received", "contribution:G2:em-provider")
    after = shown(bot.home(CHAIR1))
    assert "meeting G2" not in after and "*Overdue: 1*" in after
    assert bot.calls("/api/views.publish") == 2


@pytest.mark.http
def test_the_event_is_acknowledged_at_once_audited_and_the_messages_tab_ignored(bot):
    body = event_body(SOG, tab="messages")
    status, out, _ = post(bot.server.url + "/slack/events", body, sign(body), "application/json")
    assert status == 200 and out == ""
    body = event_body(SOG)
    status, out, seconds = post(bot.server.url + "/slack/events", body, sign(body),
                                "application/json")
    assert status == 200 and out == "" and seconds < 1
    bot.stand_in.wait_for("/api/views.publish")
    time.sleep(0.3)
    assert bot.calls("/api/views.publish") == 1  # the Messages tab published nothing
    bot.home("U9NOBODY")
    audit = SQLModel.metadata.tables["audit_log"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with bot.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(audit).where(
                audit.c.action == "home").order_by(audit.c.id)).mappings()]
        if len(rows) >= 2:
            break
        time.sleep(0.05)
    assert [(r["slack_user_id"], r["person_id"], r["outcome"]) for r in rows] == [
        (SOG, "g-sog", "ok"), ("U9NOBODY", None, "denied:unknown-user")]


def test_this_week_runs_to_sunday_and_at_a_weekend_to_the_next():
    assert week_days(dt.date(2026, 11, 23)) == 6  # Monday
    assert week_days(dt.date(2026, 11, 26)) == 3  # Thursday
    assert week_days(dt.date(2026, 11, 29)) == 7  # Sunday: the week ahead
    assert week_days(dt.date(2026, 11, 28)) == 8  # Saturday


@pytest.mark.http
def test_before_any_case_is_imported_the_home_and_the_lists_say_nothing_is_due(engine):
    """A new deployment: its people known, no case yet. The national co-ordinator's App
    Home was the error view and `/mappa overdue` an error id: with nothing open at all the
    list had no column types, and its `overdue` mask selected no columns."""
    with engine.begin() as conn:
        conn.execute(SQLModel.metadata.tables["person"].insert().values(
            person_id="national", name="Nat Coordinator", roles="coordinator",
            slack_user_id="U1NATION", area=None))
    b = Bot(engine, TODAY)
    try:
        text = shown(b.home("U1NATION"))
        assert "*Overdue: 0*" in text and "*Due this week: 0*" in text
        assert "could not be built" not in text
        for words in ("overdue", "due"):
            answer = json.dumps(b.command("U1NATION", words)["blocks"])
            assert "0 overdue, 0 due soon" in answer and "Nothing overdue or due soon" in answer
    finally:
        b.close()


@pytest.mark.http
def test_a_person_whose_area_no_case_has_is_told_so_not_that_nothing_is_overdue(engine,
                                                                                  tmp_path):
    """A misspelt area in people.csv (Grampain): the import warns, naming the area it
    probably meant, and the person's Home says no case is in that area, where it said
    'Nothing overdue' for ever."""
    import shutil

    data = tmp_path / "g"
    shutil.copytree(GRAMPIAN, data)
    people = (data / "people.csv").read_text()
    (data / "people.csv").write_text(people.replace(
        "U1COORD1,coordinator,Grampian", "U1COORD1,coordinator,Grampain"))
    assert "U1COORD1,coordinator,Grampain" in (data / "people.csv").read_text()
    report = import_directory(engine, data)
    assert report.ok and report.warnings == [
        "people.csv: area 'Grampain' of g-coord is no case's area, so they will see no cases "
        "(did you mean 'Grampian'?)"], report.warnings
    b = Bot(engine, TODAY)
    try:
        text = shown(b.home(COORD))
        assert "no case in the records is in the area Grampain" in text
        assert "no case in the records" not in shown(b.home(CHAIR1))
    finally:
        b.close()
