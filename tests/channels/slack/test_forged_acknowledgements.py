"""Forged presses on the escalation's Acknowledge buttons and the page buttons, over signed
HTTP to the bot (the demo region and harness of tests/channels/slack/test_paging.py): what a button
of ours never carries is refused, said, and audited as such.

- "Acknowledge all shown" never acknowledges an urgent item (each needs its own look).
- An acknowledgement (bulk or single) is only of an (item, stage) that was escalated to the
  presser: another area's indicator, a made-up key or a review date that was never
  escalated are refused by name, and a bulk press with some refused is audited "partial".
- A notice page value naming an outbox id past 64 bits is "no longer kept", not an error.
- "Next" / "Previous" under `/mappa due` keep the per-person and queue limits of the command.
"""

from __future__ import annotations

import concurrent.futures
import json
import time

import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from mappa_core.rules.kinds import key_parts

from tests.channels.slack import test_paging
from tests.slack_harness import action_body, post, sign
from tests.channels.slack.test_paging import CHAIRS, COORD, SOG, _message

pytestmark = pytest.mark.http

# The demo region and bot of test_paging, built again for this module (these tests
# change its outbox and acknowledgements).
database, bot = test_paging.database, test_paging.bot


def acks(bot) -> set[tuple[str, str]]:
    t = SQLModel.metadata.tables["escalation_ack"]
    with bot.engine.connect() as conn:
        return {(r.item_key, r.stage) for r in conn.execute(select(t))}


def last_audit(bot, action: str):
    t = SQLModel.metadata.tables["audit_log"]
    for _ in range(40):  # audit rows are written in batches
        with bot.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.action == action)
                               .order_by(t.c.id.desc())).first()
        if row is not None:
            return row
        time.sleep(0.1)
    raise AssertionError(f"no audit row for {action}")


def escalated(bot, urgency: str) -> list[tuple[str, str]]:
    """(item key, stage) of the SOG chair's escalation rows of that urgency, not yet
    acknowledged."""
    taken = acks(bot)
    with bot.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT DISTINCT o.item_key, o.stage FROM outbox o JOIN person p "
            "ON p.person_id = o.recipient_id WHERE o.rule = 'escalation' "
            "AND p.slack_user_id = :u AND o.urgency = :g ORDER BY o.item_key, o.stage"),
            {"u": SOG, "g": urgency}).all()
    return [tuple(r) for r in rows if tuple(r) not in taken]


def make_urgent(bot, pair: tuple[str, str]) -> None:
    """One of the SOG chair's escalations made urgent, as a pre-release breach is."""
    with bot.engine.begin() as conn:
        conn.execute(text("UPDATE outbox SET urgency = 'urgent' WHERE rule = 'escalation' "
                          "AND item_key = :k AND stage = :s"), {"k": pair[0], "s": pair[1]})


def value_of(pairs) -> str:
    return "|".join(f"{k}|{s}" for k, s in pairs)


def test_acknowledge_all_shown_refuses_an_urgent_item_and_says_to_acknowledge_it_alone(bot):
    urgent = escalated(bot, "urgent")
    if not urgent:
        make_urgent(bot, escalated(bot, "normal")[-1])
        urgent = escalated(bot, "urgent")
    normal = escalated(bot, "normal")[:1]
    reply = bot.press(SOG, "ack_escalation_shown", value_of([urgent[0], *normal]))
    assert urgent[0] not in acks(bot)
    # Named as its escalation names it (its case or meeting), not by its key.
    assert "acknowledge it on its own" in reply["text"] and urgent[0][0] not in reply["text"]
    assert key_parts(urgent[0][0])[1] in reply["text"]
    assert normal[0] in acks(bot) and "Acknowledged 1 of 2" in reply["text"]
    assert last_audit(bot, "action:ack_escalation_shown").outcome == "partial"
    # On its own, the urgent item is acknowledged.
    reply = bot.press(SOG, "ack_escalation", value_of([urgent[0]]))
    assert "Acknowledged" in reply["text"] and urgent[0] in acks(bot)


def test_acknowledge_all_shown_refuses_keys_never_escalated_to_the_presser_by_name(bot):
    real = escalated(bot, "normal")[:1]
    with bot.engine.connect() as conn:
        ref = conn.execute(text("SELECT ref FROM individual WHERE area = 'Grampian' "
                                "LIMIT 1")).scalar()
    forged = [("indicator:l3-reviews:Fife:2026Q3", "below_target"),
              ("indicator:made-up-nonsense", "breach"),
              (f"review:{ref}:L2:1999-01-01", "breach")]
    before = acks(bot)
    reply = bot.press(SOG, "ack_escalation_shown", value_of([*real, *forged]))
    assert acks(bot) - before == set(real)
    assert f"Acknowledged 1 of {1 + len(forged)}" in reply["text"]
    # Each refused one named in words where it names anything known, else by its key.
    for named in ("Level 3 cases reviewed at least every 6 weeks, Fife 2026Q3",
                  "`indicator:made-up-nonsense`", f"Level 2 review for `{ref}`"):
        assert named in reply["text"]
    assert reply["text"].count("not sent to you") == len(forged)
    row = last_audit(bot, "action:ack_escalation_shown")
    assert row.outcome == "partial"
    # All refused: nothing written, and the audit says so.
    reply = bot.press(SOG, "ack_escalation_shown", value_of(forged))
    assert "Nothing acknowledged" in reply["text"] and acks(bot) - before == set(real)
    time.sleep(0.3)
    assert last_audit(bot, "action:ack_escalation_shown").outcome == "refused"


@pytest.mark.parametrize("pair", [
    ("indicator:l3-reviews:Fife:2026Q3", "below_target"),
    ("indicator:made-up-nonsense", "breach"),
    ("review:{ref}:L2:1999-01-01", "breach"),
], ids=["other-area-indicator", "made-up-indicator", "stale-review-date"])
def test_a_single_acknowledge_of_a_key_never_escalated_to_the_presser_is_refused(bot, pair):
    with bot.engine.connect() as conn:
        ref = conn.execute(text("SELECT ref FROM individual WHERE area = 'Grampian' "
                                "LIMIT 1")).scalar()
    pair = (pair[0].format(ref=ref), pair[1])
    before = acks(bot)
    reply = bot.press(SOG, "ack_escalation", value_of([pair]))
    assert "not sent to you" in reply["text"] and acks(bot) == before


@pytest.mark.parametrize("o", [10**19, 2**63, 10**30, 0, -(2**63) - 1])
def test_a_notice_page_value_with_an_outbox_id_out_of_range_is_no_longer_kept(bot, o):
    chair = CHAIRS[0]
    channel, message = _message(bot, chair, "Your MAPPA items")
    reply = bot.press(chair, "page_notice_next", json.dumps({"o": o, "p": 2}),
                      message=message, channel=channel)
    assert "no longer kept" in reply["text"] and "went wrong" not in reply["text"]
    assert reply["response_type"] == "ephemeral"


def test_page_presses_keep_the_per_person_and_queue_limits_of_mappa_due(bot):
    """One person pressing "Next" many times at once (each with another `d`, so nothing is
    cached) has one page in flight, like `/mappa due`; the rest are told it is still
    working, and another chair's `/mappa due` meanwhile is answered."""
    presses = range(1, 61)

    def one(i):
        v = json.dumps({"c": "due", "d": i, "p": 2})
        body = action_body(COORD, "page_due_next", v, bot.stand_in.response_url(f"lim{i}"))
        return post(bot.server.url + "/slack/events", body, sign(body))[0]

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        futures = [pool.submit(one, i) for i in presses]
        time.sleep(0.3)
        other = bot.command(CHAIRS[1], "due")
        assert all(f.result() == 200 for f in futures)
    replies = [bot.stand_in.wait_for(f"/response/lim{i}", timeout=120)[0]["body"]
               for i in presses]
    refused = [r for r in replies if "still working" in r["text"].lower()]
    assert len(refused) >= len(presses) // 2, f"{len(refused)} of {len(presses)} refused"
    assert all(r["replace_original"] is False for r in refused)
    assert "busy" not in other["text"], other["text"]
    assert last_audit(bot, "action:page_due").outcome in ("ok", "refused:in-flight")
