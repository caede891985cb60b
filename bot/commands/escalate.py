"""`/mappa escalate`: record the issue, plan its messages into the outbox as urgent, deliver
them at once through the delivery seam (the `deliver` the channel that carried the request
gives: bot/delivery/worker.deliver_pending with its transport), and tell the person who
raised it what happened.

The messages get the outbox's guarantees like every other notice: one row per recipient
under a dedupe key (a retried request plans nothing new), exactly-once sending, and a
transient failure retried by the delivery worker after the reply has been given.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from bot.commands import handlers
from bot.commands.access import Caller
from bot.commands.answers import Escalated, Said
from mappa_core.storage import outbox
from mappa_core.rules.planner import Notice, frame
from mappa_core.rules.planner.directory import email_recipient_id
from mappa_core.rules.vocabulary import Channel, Rule, Stage, Urgency

log = logging.getLogger("mappa.escalate")
RULE = Rule.URGENT_ISSUE
WAIT_FOR_OTHER_WORKER = 5.0  # seconds: a row another replica's worker is sending
# Deliver the outbox groups named, now: its bot.delivery.worker.DeliveryReport.
Deliver = Callable[[list[str], dt.datetime], Awaitable]


def _row(issue_id: int, recipient: str, channel: Channel, address: str, area, payload: dict
         ) -> Notice:
    group = f"{RULE}|{recipient}|{channel}|{issue_id}"
    return Notice(rule=RULE, item_key=f"urgent:{issue_id}", stage=Stage.RAISED,
                  recipient_id=recipient, channel=channel, address=address,
                  urgency=Urgency.URGENT, group_key=group, dedupe_key=group, area=area,
                  payload=payload)


async def _deliver(engine, settings, deliver: Deliver, rows: list[Notice], now: dt.datetime
                   ) -> dict[str, dict]:
    """Plan `rows` and deliver exactly them now; each group's outcome."""
    keys = [r.group_key for r in rows]
    notes = frame(rows)
    await asyncio.to_thread(outbox.plan, engine, notes, now, settings.nudge_rules())
    report = await deliver(keys, now)
    waited = 0.0
    while True:
        found = await asyncio.to_thread(outbox.outcomes, engine, keys)
        if waited >= WAIT_FOR_OTHER_WORKER or all(
                f["status"] != "sending" for f in found.values()):
            for key, f in found.items():  # not attempted: its channel is not set up here
                channel = next((r.channel for r in rows if r.group_key == key), None)
                if f["status"] == "pending" and channel in report.waiting:
                    found[key] = {**f, "last_error": report.waiting[channel][2],
                                  "waiting": True}
            return found
        await asyncio.sleep(0.1)
        waited += 0.1


def _problem(outcome: dict | None) -> str | None:
    """None when sent; otherwise why not, as the person who raised the issue reads it."""
    if outcome is None:
        return "not planned"
    if outcome["status"] == "sent":
        return None
    if outcome["status"] == "sending":
        return "still being sent"
    reason = outcome["last_error"] or "not sent"
    if outcome.get("waiting"):  # a channel not set up here: it waits, unattempted
        return f"{reason}; it goes out once that is set"
    return reason if outcome["status"] == "dead" else f"{reason} (will retry)"


async def escalate(engine, settings, esc: handlers.Escalation, caller: Caller, text: str,
                   now: dt.datetime, deliver: Deliver) -> Escalated | Said:
    """The answer to `/mappa escalate` once `esc` (the recorded issue) is known."""
    if not esc.created:
        return handlers.message(f"This issue was already raised as issue #{esc.issue_id}.")
    area = caller.area or "national"
    payload = {"raised_by": caller.name, "area": area, "at": now.strftime("%Y-%m-%d %H:%M"),
               "text": text, "issue_id": esc.issue_id,
               "agencies": [a["agency"] for a in esc.agencies]}
    utc = now.astimezone(dt.UTC)
    rows, labels = [], {}
    for sog in esc.sog_chairs:
        if sog.get("slack_user_id"):
            r = _row(esc.issue_id, sog["person_id"], Channel.SLACK, sog["slack_user_id"], caller.area, payload)
            labels[r.group_key] = f"{sog['name']} (Slack)"
        elif sog.get("email"):
            r = _row(esc.issue_id, sog["person_id"], Channel.EMAIL, sog["email"], caller.area, payload)
            labels[r.group_key] = f"{sog['name']} (email)"
        else:
            continue
        rows.append(r)
    for agency in esc.agencies:
        for address in agency["contacts"]:
            r = _row(esc.issue_id, email_recipient_id(address), Channel.EMAIL, address, caller.area, payload)
            labels[r.group_key] = f"{agency['agency']} (email)"
            rows.append(r)
    found = await _deliver(engine, settings, deliver, rows, utc) if rows else {}
    told, failed = [], []
    # A SOG chair not reached on Slack is emailed instead, through the outbox too.
    fallback = []
    for sog in esc.sog_chairs:
        key = f"{RULE}|{sog['person_id']}|slack|{esc.issue_id}"
        if sog.get("slack_user_id") and _problem(found.get(key)) and sog.get("email"):
            log.warning("Slack DM to SOG chair %s failed: %s", sog["person_id"],
                        _problem(found.get(key)))
            r = _row(esc.issue_id, sog["person_id"], Channel.EMAIL, sog["email"], caller.area, payload)
            labels[r.group_key] = f"{sog['name']} (email)"
            fallback.append(r)
    if fallback:
        found.update(await _deliver(engine, settings, deliver, fallback, utc))
    instead = {r.recipient_id: r for r in fallback}
    for r in rows:
        if r.channel == Channel.SLACK and r.recipient_id in instead:
            r = instead[r.recipient_id]  # the email says how that chair was reached
        key = r.group_key
        problem = _problem(found.get(key))
        if problem is None:
            told.append(labels[key])
        elif r.channel == Channel.SLACK:
            failed.append(labels[key].removesuffix(" (Slack)"))
        else:
            failed.append(f"{labels[key]}: {problem}")
    for sog in esc.sog_chairs:
        if not sog.get("slack_user_id") and not sog.get("email"):
            failed.append(sog["name"])
    for agency in esc.agencies:
        if not agency["contacts"]:
            failed.append(f"{agency['agency']} (no contact email)")
    if not esc.sog_chairs:
        failed.append("no SOG chair is listed for your area")
    return Escalated(esc.issue_id, tuple(told), tuple(failed))
