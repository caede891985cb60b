"""`/mappa escalate`: an urgent issue raised by a person, told at once to the area's SOG
chair, and e-mailed to the agencies the person chooses, whole.

1. `record`: check who can be told (the same SOG chairs the planner escalates to) and
   record the issue once per request (a retried request finds it). Nothing is written when
   no SOG chair can be reached: the person is told so, with their text to copy.
2. `escalate`: plan its messages into the outbox as urgent and deliver them at once
   through the delivery seam (the `deliver` the channel that carried the request gives:
   bot/delivery/worker.deliver_pending with its transport). The SOG chair gets the whole
   text: in Slack in continued messages when it is longer than MAX_PART characters, by
   e-mail in one. The answer says who was told, who was not and why, and offers the
   agencies to choose from.
3. `email_agencies`: the agencies the person chose from that offer (never from the words
   of the text), each e-mailed the whole issue once, at its one address.

The messages get the outbox's guarantees like every other notice: one row per recipient
(and part) under a dedupe key (a retried request or a second press plans nothing new),
exactly-once sending, and a transient failure retried by the delivery worker after the
reply has been given. All of an issue's rows are planned in one transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pandas as pd

from bot.commands.access import Caller
from bot.commands.answers import Escalated, Said
from mappa_core.rules.planner import Notice, frame, sog_chairs_by_area
from mappa_core.rules.planner.directory import agency_addresses, email_recipient_id
from mappa_core.rules.vocabulary import Channel, Rule, Stage, Urgency
from mappa_core.storage import outbox, people as people_store, urgent_issues

log = logging.getLogger("mappa.escalate")
RULE = Rule.URGENT_ISSUE
WAIT_FOR_OTHER_WORKER = 5.0  # seconds: a row another replica's worker is sending
# Characters of the issue in one Slack message: a longer issue continues in further
# messages ("part 2 of 3"), each cut at a line end or a space, so that it reaches the SOG
# chair whole and each message reads on a phone.
MAX_PART = 12_000
MAX_CHOICES = 100  # agencies offered to choose from (a Slack menu's options)
# Deliver the outbox groups named, now: its bot.delivery.worker.DeliveryReport.
Deliver = Callable[[list[str], dt.datetime], Awaitable]

ASK = ("What is the urgent issue? Type it after the command, for example `/mappa escalate "
       "Housing placement for SYN-0001564 collapsed tonight`. It goes at once to your area's "
       "SOG chair, and you can then choose agencies to e-mail it to.")
# Slack's markup in what a person typed: a mention or a link (<@U1>, <!channel>), an
# @-broadcast, or formatting (*bold*, _italic_, ~struck~, `code`).
_MARKUP = re.compile(r"<[@!#]|<https?:|@(channel|here|everyone)\b|[*_~`]")


def ask() -> Said:
    """The answer to `/mappa escalate` with no text (or only spaces): what is the issue?"""
    return Said(ASK)


@dataclass
class Escalation:
    """An issue recorded (`issue_id`), or refused before anything was written (`problem`)."""

    issue_id: int | None
    created: bool  # False when this exact request was already raised (a Slack retry)
    sog_chairs: list[dict] = field(default_factory=list)
    choices: list[tuple[str, str]] = field(default_factory=list)  # agencies: (id, name)
    problem: str | None = None


def _directory(engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    agencies, everyone, columns = people_store.directory(engine)
    people = pd.DataFrame(everyone, columns=columns)
    return people.astype(object).where(people.notna(), None), pd.DataFrame(
        agencies, columns=["agency", "name", "kind", "role", "email"])


def _addresses(people: pd.DataFrame, agencies: pd.DataFrame) -> dict[str, str]:
    """Each agency's one address (planner.directory.agency_addresses: one e-mail an agency)."""
    found = agency_addresses(people, agencies)
    return dict(zip(found["agency"], found["address"]))


def _names(agencies: pd.DataFrame) -> dict[str, str]:
    return {a: (n if isinstance(n, str) and n.strip() else a)
            for a, n in zip(agencies["agency"], agencies["name"])}


def record(ctx, caller: Caller, text: str, request_key: str, at: dt.datetime) -> Escalation:
    """Record the issue once (a retried request finds it) and work out who can be told;
    nothing is recorded when no SOG chair of the raiser's area can be reached."""
    people, agencies = _directory(ctx.engine)
    # The same SOG chairs the planner escalates to (national ones where the area has none).
    chosen = sog_chairs_by_area(people, [caller.area])["person_id"].tolist()
    sog = [p for p in people.to_dict("records") if p["person_id"] in chosen]
    if not any(p.get("slack_user_id") or p.get("email") for p in sog):
        if caller.area is None:
            problem = ("you have no MAPPA area in the people list, so there is no SOG chair "
                       "to tell (and no national SOG chair is listed)")
        else:
            problem = (f"no SOG chair of {caller.area} can be reached: none is in the people "
                       "list with a Slack id or an e-mail address")
        return Escalation(None, False, problem=problem)
    dedupe = hashlib.sha256(f"{caller.person_id}\n{request_key}\n{text}".encode()).hexdigest()[:64]
    issue_id, created = urgent_issues.record(
        ctx.engine, dedupe, at, caller.person_id, caller.area, text, [])
    names, addresses = _names(agencies), _addresses(people, agencies)
    choices = sorted(((a, names[a]) for a in addresses if a in names),
                     key=lambda c: (c[1].lower(), c[0]))[:MAX_CHOICES]
    return Escalation(issue_id, created, sog, choices)


def parts_of(text: str, limit: int = MAX_PART) -> list[str]:
    """`text` in consecutive parts of at most `limit` characters, each cut at its last line
    end, else its last space (in the part's second half), else where it must; the parts
    joined are the text, character for character."""
    parts, rest = [], text
    while len(rest) > limit:
        head = rest[:limit]
        cut = head.rfind("\n") + 1
        if cut <= limit // 2:
            cut = head.rfind(" ") + 1
        if cut <= limit // 2:
            cut = limit
        parts.append(rest[:cut])
        rest = rest[cut:]
    return [*parts, rest]


def _row(issue_id: int, recipient: str, channel: Channel, address: str, area, payload: dict,
         part: str = "") -> Notice:
    group = f"{RULE}|{recipient}|{channel}|{issue_id}" + (f"|{part}" if part else "")
    return Notice(rule=RULE, item_key=f"urgent:{issue_id}", stage=Stage.RAISED,
                  recipient_id=recipient, channel=channel, address=address,
                  urgency=Urgency.URGENT, group_key=group, dedupe_key=group, area=area,
                  payload=payload)


async def _deliver(engine, settings, deliver: Deliver, rows: list[Notice], now: dt.datetime
                   ) -> dict[str, dict]:
    """Plan `rows` (in one transaction) and deliver exactly them now; each group's outcome."""
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


def _payload(caller: Caller, issue_id: int, now: dt.datetime, text: str) -> dict:
    return {"raised_by": caller.name, "area": caller.area or "national",
            "at": now.strftime("%Y-%m-%d %H:%M"), "text": text, "issue_id": issue_id}


def _notes(text: str, parts: int) -> tuple[str, ...]:
    notes = []
    if parts > 1:
        notes.append(f"It is {len(text):,} characters, longer than one Slack message: the SOG "
                     f"chair has it whole in {parts} messages (part 1 of {parts}, ...), and "
                     "any agency you choose has it whole in one e-mail.")
    if _MARKUP.search(text):
        notes.append("It is shown exactly as you typed it: Slack mentions (@channel, "
                     "<!channel>, <@someone>) and formatting (*bold*, _italic_) in it notify "
                     "no one and format nothing.")
    return tuple(notes)


async def escalate(engine, settings, esc: Escalation, caller: Caller, text: str,
                   now: dt.datetime, deliver: Deliver) -> Escalated | Said:
    """The answer to `/mappa escalate` once `esc` (the recorded issue) is known: the SOG
    chairs told now, and the agencies offered to choose from."""
    if esc.problem:
        return Escalated(None, (), (), problem=esc.problem, issue_text=text)
    if not esc.created:
        return Said(f"This issue was already raised as issue #{esc.issue_id}.")
    issue_id = esc.issue_id
    whole = _payload(caller, issue_id, now, text)
    parts = parts_of(text)
    utc = now.astimezone(dt.UTC)
    rows: list[Notice] = []
    slack_rows: dict[str, list[Notice]] = {}
    email_rows: dict[str, Notice] = {}
    for sog in esc.sog_chairs:
        if sog.get("slack_user_id"):
            for i, part in enumerate(parts, 1):
                payload = {**whole, "text": part, "part": i, "parts": len(parts)}
                r = _row(issue_id, sog["person_id"], Channel.SLACK, sog["slack_user_id"],
                         caller.area, payload, str(i) if len(parts) > 1 else "")
                slack_rows.setdefault(sog["person_id"], []).append(r)
                rows.append(r)
        elif sog.get("email"):
            r = _row(issue_id, sog["person_id"], Channel.EMAIL, sog["email"], caller.area, whole)
            email_rows[sog["person_id"]] = r
            rows.append(r)
    found = await _deliver(engine, settings, deliver, rows, utc) if rows else {}
    # A SOG chair not reached on Slack (any part) is e-mailed the whole issue instead,
    # through the outbox too.
    fallback = []
    for sog in esc.sog_chairs:
        mine = slack_rows.get(sog["person_id"], [])
        problems = [p for p in (_problem(found.get(r.group_key)) for r in mine) if p]
        if problems and sog.get("email"):
            log.warning("Slack DM to SOG chair %s failed: %s", sog["person_id"], problems[0])
            r = _row(issue_id, sog["person_id"], Channel.EMAIL, sog["email"], caller.area, whole)
            email_rows[sog["person_id"]] = r
            fallback.append(r)
    if fallback:
        found.update(await _deliver(engine, settings, deliver, fallback, utc))
    told, failed = [], []
    for sog in esc.sog_chairs:
        name, mine = sog["name"], slack_rows.get(sog["person_id"], [])
        slack_problems = [p for p in (_problem(found.get(r.group_key)) for r in mine) if p]
        if mine and not slack_problems:
            told.append(f"{name} (Slack" + (f", {len(mine)} messages)" if len(mine) > 1 else ")"))
        elif sog["person_id"] in email_rows:
            problem = _problem(found.get(email_rows[sog["person_id"]].group_key))
            told.append(f"{name} (e-mail)") if problem is None else failed.append(
                f"{name} (e-mail): {problem}")
        elif mine:
            failed.append(f"{name} (Slack): {slack_problems[0]}")
        else:
            failed.append(f"{name}: no Slack id or e-mail address in the people list")
    return Escalated(issue_id, tuple(told), tuple(failed), choices=tuple(esc.choices),
                     notes=_notes(text, len(parts)))


def email_agencies(ctx, caller: Caller, issue_id: int, chosen: list[str], tz
                   ) -> tuple[list[Notice], dict[str, str], Said | None]:
    """Check the agencies the raiser chose for issue `issue_id` and record the choice: the
    outbox rows to send (one e-mail an agency, the whole issue) and each agency's name, or
    a refusal (then nothing is written). Times are shown in `tz`."""
    issue = urgent_issues.get(ctx.engine, issue_id)
    if issue is None:
        return [], {}, Said("That urgent issue no longer matches a record.")
    if issue["raised_by"] != caller.person_id:
        return [], {}, Said(f"Only the person who raised issue #{issue_id} can choose the "
                            "agencies it is e-mailed to.")
    chosen = list(dict.fromkeys(a for a in chosen if a))
    if not chosen:
        return [], {}, Said("Choose at least one agency in the menu first, then press "
                            "*E-mail the chosen agencies*.")
    people, agencies = _directory(ctx.engine)
    names, addresses = _names(agencies), _addresses(people, agencies)
    unknown = [a for a in chosen if a not in names]
    if unknown:
        return [], {}, Said("Nothing was sent: " + ", ".join(f"`{a}`" for a in unknown)
                            + " is not in the agencies list.")
    at = issue["raised_at"]
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    payload = {"raised_by": _raiser_name(people, issue["raised_by"]),
               "area": issue["area"] or "national",
               "at": at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
               "text": issue["text"], "issue_id": issue_id}
    rows = [_row(issue_id, email_recipient_id(addresses[a]), Channel.EMAIL, addresses[a],
                 issue["area"], payload) for a in chosen if a in addresses]
    urgent_issues.add_agencies(ctx.engine, issue_id, chosen)
    return rows, {a: names[a] for a in chosen}, None


def _raiser_name(people: pd.DataFrame, person_id: str) -> str:
    found = people.loc[people["person_id"] == person_id, "name"]
    return found.iloc[0] if len(found) and isinstance(found.iloc[0], str) else person_id


async def send_to_agencies(engine, settings, ctx, caller: Caller, issue_id: int,
                           chosen: list[str], now: dt.datetime, deliver: Deliver) -> Said:
    """E-mail issue `issue_id` whole to the agencies its raiser chose (each once, at its one
    address): the answer says who was e-mailed and who could not be."""
    rows, names, refused = await asyncio.to_thread(email_agencies, ctx, caller, issue_id,
                                                   chosen, settings.tz)
    if refused is not None:
        return refused
    found = await _deliver(engine, settings, deliver, rows, now.astimezone(dt.UTC)) if rows else {}
    by_address = {r.address: r for r in rows}
    people, agencies = await asyncio.to_thread(_directory, engine)
    addresses = _addresses(people, agencies)
    told, failed = [], []
    for agency, name in names.items():
        address = addresses.get(agency)
        if address is None or address not in by_address:
            failed.append(f"{name}: no e-mail address in the agencies or people list")
            continue
        problem = _problem(found.get(by_address[address].group_key))
        if problem is None:
            told.append(f"{name} ({address})")
        else:
            failed.append(f"{name} ({address}): {problem}")
    words = (f"Issue #{issue_id} e-mailed whole to " + ", ".join(told) + "."
             if told else f"Issue #{issue_id} was not e-mailed to any agency.")
    points = [f"Not reached: {f}. Please phone them." for f in failed]
    return Said(words, points=tuple(points))
