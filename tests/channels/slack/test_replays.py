"""Replays (issue 22, item 5): Slack accepts a signed request for 5 minutes either side of
its timestamp, so one captured (a button press, a form, a command) can be sent again, the
same bytes and the same signature, to this replica or another. It is applied once: the
replay is answered "already done" and audited `replayed`, and nothing is done again. Two
replicas serving one database, real signed HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from mappa_core.storage.importer import import_directory
from tests.channels.slack.test_commands_and_buttons import CHAIR1, text_of
from tests.conftest import GRAMPIAN
from tests.server.test_operations import Replica
from tests.slack_harness import SlackStandIn, action_body, command_body, post, sign, view_body

pytestmark = pytest.mark.http


@pytest.fixture
def replicas(engine):
    """Two instances of the bot on one database (the Grampian records), one stand-in."""
    assert import_directory(engine, GRAMPIAN).ok
    stand_in = SlackStandIn()
    made = [Replica(engine, stand_in), Replica(engine, stand_in)]
    yield made
    for r in made:
        r.close()
    stand_in.close()


def audit(engine, action: str, count: int) -> list[str]:
    """The outcomes audited for `action`, once there are `count` of them."""
    table = SQLModel.metadata.tables["audit_log"]
    deadline = time.monotonic() + 20
    while True:
        with engine.connect() as conn:
            outcomes = list(conn.execute(select(table.c.outcome).where(table.c.action == action)
                                         .order_by(table.c.id)).scalars())
        if len(outcomes) >= count or time.monotonic() > deadline:
            return outcomes
        time.sleep(0.05)


def send(replica, body: str, headers: dict) -> str:
    status, out, _ = post(replica.url + "/slack/events", body, headers)
    assert status == 200, out
    return out


def test_a_replayed_button_press_is_applied_once_and_answered_already_done(replicas, engine):
    """On main the same press sent again was snoozed, answered and audited again each
    time; now its replays, to either replica, are each told "already done"."""
    a, b = replicas
    stand_in = a.stand_in
    body = action_body(CHAIR1, "snooze_1wd", "review:GRA-0103:L2:2026-11-12",
                       stand_in.response_url("press"))
    headers = sign(body)
    send(a, body, headers)
    first = stand_in.wait_for("/response/press")[0]["body"]
    assert "Snoozed" in text_of(first)
    for replica in (a, b, b):
        send(replica, body, headers)
    answers = [text_of(c["body"]) for c in stand_in.wait_for("/response/press", 4)]
    assert ["Snoozed" in t for t in answers] == [True, False, False, False], answers
    assert all("Already done" in t for t in answers[1:]), answers
    assert audit(engine, "action:snooze_1wd", 4) == ["ok", "replayed", "replayed", "replayed"]
    # Pressing the button again is a new press (its own action_ts), not a replay.
    again = action_body(CHAIR1, "snooze_1wd", "review:GRA-0103:L2:2026-11-12",
                        stand_in.response_url("again"))
    send(b, again, sign(again))
    assert "Snoozed" in text_of(stand_in.wait_for("/response/again")[0]["body"])


def test_a_replayed_form_submission_is_applied_once(replicas, engine):
    """The reason form submitted, then the same submission replayed: on main the reason
    was saved, confirmed by a direct message and audited again; now the replay is
    answered in the form ("already done") and nothing is sent or saved again."""
    a, b = replicas
    stand_in = a.stand_in
    body = view_body(CHAIR1, "minutes:G8", "information_late", "Police report late")
    headers = sign(body)
    assert send(a, body, headers) == ""
    stand_in.wait_for("/api/chat.postMessage")
    for replica in (a, b):
        out = json.loads(send(replica, body, headers))
        assert out["response_action"] == "errors"
        assert "Already done" in out["errors"]["reason"]
    assert audit(engine, "view:record_reason", 3) == ["ok", "replayed", "replayed"]
    assert len(stand_in.posts("/api/chat.postMessage")) == 1
    note = SQLModel.metadata.tables["item_note"]
    with engine.connect() as conn:
        assert len(conn.execute(select(note.c.id)).all()) == 1


def test_a_replayed_command_is_answered_once(replicas, engine):
    """`/mappa status` replayed: on main answered and audited twice; now one answer, and
    the replay told "already done" in its acknowledgement."""
    a, b = replicas
    stand_in = a.stand_in
    body = command_body(CHAIR1, "status", stand_in.response_url("status"))
    headers = sign(body)
    assert send(a, body, headers) == ""
    assert "MAPPA indicators for" in text_of(stand_in.wait_for("/response/status")[0]["body"])
    for replica in (a, b):
        assert "Already done" in json.loads(send(replica, body, headers))["text"]
    assert audit(engine, "command:status", 1) == ["ok"]
    assert audit(engine, "command", 2) == ["replayed", "replayed"]
    assert len(stand_in.posts("/response/status")) == 1
