"""Buttons on nudges and the reason modal: each checks who acts, writes, and is idempotent
(a retried or double-clicked action finds the work done and says so)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlmodel import SQLModel

from bot.commands.access import Caller
from bot.commands.handlers import Context, Reply, message
from bot.templates import mrkdwn_escape
from mappa_core.storage import recorded
from mappa_core.rules.calendar import calendar_for
from mappa_core.rules.kinds import ITEM_KINDS, MAX_ITEM_KEY, key_parts, read_key
from mappa_core.rules.planner import ESCALATION_STAGES
from mappa_core.storage.db import bump_change_stamp
from mappa_core.storage.queries import local_holidays
from mappa_core.rules.reports import reason_label
from mappa_core.rules.schema import REASON_CODES
from mappa_core.rules.vocabulary import Rule, Urgency

REASON_LABELS = [(code, reason_label(code)) for code in REASON_CODES]
SNOOZE_CHOICES = {"snooze_1wd": 1, "snooze_3wd": 3}


class ActionError(ValueError):
    """The action cannot apply: the message is safe to show the person."""


@dataclass(frozen=True)
class Item:
    key: str
    kind: str
    ref: str
    area: str
    case_chair: str | None
    meeting_id: str | None = None
    meeting_chair: str | None = None
    agency: str | None = None

    @property
    def label(self) -> str:
        what = ITEM_KINDS[self.kind].noun
        where = f"meeting {self.meeting_id}" if self.meeting_id else f"case {self.ref}"
        return f"{what}, {where}" + (f" ({self.agency})" if self.agency else "")


GONE = "That item no longer matches a record: it may have been re-imported."


def check_key(key: str) -> str:
    """Refuse a key no button of ours carries, before it reaches the database."""
    if not key or len(key) > MAX_ITEM_KEY:
        raise ActionError(f"{GONE} (The button's item key is not one this bot made.)")
    return key


def find_item(ctx: Context, key: str) -> Item:
    """The record behind an item key, read back as its kind declares it
    (mappa_core.rules.kinds): a meeting (with an agency, that agency's absence from it),
    or a case."""
    t = SQLModel.metadata.tables
    meeting, individual, invitation = t["meeting"], t["individual"], t["invitation"]
    # What a button of ours carries: a declared kind, its parts, a real due date, and a
    # Level 2 or 3 chain.
    read = read_key(check_key(key))
    gone = ActionError(GONE)
    if read is None:
        raise gone
    spec, part = read
    with ctx.engine.connect() as conn:
        if spec.names_meeting():
            row = conn.execute(
                select(meeting.c.meeting_id, meeting.c.ref, meeting.c.chair_id,
                       individual.c.area, individual.c.chair_id.label("case_chair"))
                .join(individual, individual.c.ref == meeting.c.ref)
                .where(meeting.c.meeting_id == part["meeting_id"])
            ).mappings().first()
            if row is None:
                raise gone
            agency = part.get("agency")
            if agency is not None:
                # Only an agency that was absent owes a written contribution.
                found = conn.execute(select(invitation.c.agency).where(and_(
                    invitation.c.meeting_id == part["meeting_id"], invitation.c.agency == agency,
                    invitation.c.attendance == "absent"))).first()
                if found is None:
                    raise gone
            return Item(key, spec.kind, row["ref"], row["area"], row["case_chair"],
                        row["meeting_id"], row["chair_id"], agency)
        row = conn.execute(select(individual.c.ref, individual.c.area, individual.c.chair_id)
                           .where(individual.c.ref == part["ref"])).mappings().first()
        if row is None:
            raise gone
        return Item(key, spec.kind, row["ref"], row["area"], row["chair_id"])


def check_may_act(caller: Caller, item: Item) -> None:
    if caller.may_see_case(item.area, item.case_chair) or (
        caller.chairs and item.meeting_chair == caller.person_id
    ):
        return
    raise ActionError("Only the case's chair, the meeting's chair, the co-ordinator or the "
                      "SOG chair can act on this item.")


def _set_meeting_date(ctx: Context, caller: Caller, item: Item, column: str, what: str) -> Reply:
    if item.kind != "minutes":
        raise ActionError(f"{what} applies to minutes items only.")
    meeting = SQLModel.metadata.tables["meeting"]
    with ctx.engine.begin() as conn:
        current = conn.execute(select(meeting.c[column]).where(
            meeting.c.meeting_id == item.meeting_id)).scalar()
        if current is not None:
            return message(f"{what} for meeting `{mrkdwn_escape(item.meeting_id)}` was already "
                           f"recorded on {current.isoformat()}; nothing changed.")
        conn.execute(meeting.update().where(meeting.c.meeting_id == item.meeting_id)
                     .values({column: ctx.today}))
        _provenance(conn, caller, "meeting", (item.meeting_id,), column, ctx.today)
        bump_change_stamp(conn)
    ctx.cache.clear()
    return message(f":white_check_mark: {what} for meeting `{mrkdwn_escape(item.meeting_id)}` "
                   f"recorded on {ctx.today.isoformat()}.")


def _provenance(conn, caller: Caller, table: str, key: tuple, column: str, value) -> None:
    """Who recorded this value and when, in the same transaction: a later import keeps it
    where the export's cell is blank (mappa_core.storage.recorded)."""
    recorded.record(conn, table, key, column, value, person_id=caller.person_id,
                    slack_user_id=caller.slack_user_id, at=dt.datetime.now(dt.UTC))


def minutes_issued(ctx: Context, caller: Caller, key: str) -> Reply:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    return _set_meeting_date(ctx, caller, item, "minutes_issued", "Minutes issued")


def rmp_ratified(ctx: Context, caller: Caller, key: str) -> Reply:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    return _set_meeting_date(ctx, caller, item, "rmp_ratified", "RMP ratified")


def contribution_received(ctx: Context, caller: Caller, key: str) -> Reply:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    if item.kind != "contribution":
        raise ActionError("Contribution received applies to written-contribution items only.")
    inv, agency = (SQLModel.metadata.tables[t] for t in ("invitation", "agency"))
    where = and_(inv.c.meeting_id == item.meeting_id, inv.c.agency == item.agency)
    with ctx.engine.begin() as conn:
        # Named as every notice names it: by its display name, the id when it has none.
        name = mrkdwn_escape(conn.execute(select(agency.c.name).where(
            agency.c.agency == item.agency)).scalar() or item.agency)
        if conn.execute(select(inv.c.written_contribution).where(where)).scalar() is True:
            return message(f"The written contribution from {name} was "
                           "already recorded; nothing changed.")
        conn.execute(inv.update().where(where).values(written_contribution=True))
        _provenance(conn, caller, "invitation", (item.meeting_id, item.agency),
                    "written_contribution", True)
        bump_change_stamp(conn)
    ctx.cache.clear()
    return message(f":white_check_mark: Written contribution from {name} "
                   f"for meeting `{mrkdwn_escape(item.meeting_id)}` recorded.")


def snooze_until(ctx: Context, item: Item, choice: str, picked: str | None) -> dt.date:
    if choice in SNOOZE_CHOICES:
        cal = calendar_for(item.area, local_holidays(ctx.engine))  # the case's area's days
        return cal.add_working_days(ctx.today, SNOOZE_CHOICES[choice])
    try:
        until = dt.date.fromisoformat(picked or "")
    except ValueError:
        raise ActionError("Pick a date to snooze until.") from None
    if until <= ctx.today:
        raise ActionError("A snooze must end after today.")
    if until > ctx.today + dt.timedelta(days=90):
        raise ActionError("A snooze can last at most 90 days.")
    return until


def snooze(ctx: Context, caller: Caller, key: str, choice: str, picked: str | None = None) -> Reply:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    until = snooze_until(ctx, item, choice, picked)
    table = SQLModel.metadata.tables["snooze"]
    now = dt.datetime.now(dt.UTC)
    where = and_(table.c.item_key == key, table.c.person_id == caller.person_id)
    with ctx.engine.begin() as conn:
        if conn.execute(select(table.c.until).where(where)).scalar() is None:
            conn.execute(table.insert().values(item_key=key, person_id=caller.person_id,
                                               until=until, created_at=now))
        else:
            conn.execute(table.update().where(where).values(until=until, created_at=now))
        bump_change_stamp(conn)
    return message(f":zzz: Snoozed {mrkdwn_escape(item.label)} until {until.isoformat()}. "
                   "Escalations to the SOG chair are not silenced by a snooze.")


def record_reason(ctx: Context, caller: Caller, key: str, code: str, text: str) -> Reply:
    item = find_item(ctx, key)
    check_may_act(caller, item)
    if code not in REASON_CODES:
        raise ActionError("Choose one of the listed reasons.")
    text = (text or "").strip()[:2000]
    t = SQLModel.metadata.tables
    now = dt.datetime.now(dt.UTC)
    with ctx.engine.begin() as conn:
        note = t["item_note"]
        same = conn.execute(select(note.c.id).where(and_(
            note.c.item_key == key, note.c.person_id == caller.person_id,
            note.c.reason == code, note.c.text == text))).first()
        if same is None:
            conn.execute(note.insert().values(item_key=key, person_id=caller.person_id,
                                              reason=code, text=text, at=now))
        if item.kind == "contribution":
            inv = t["invitation"]
            conn.execute(inv.update().where(and_(inv.c.meeting_id == item.meeting_id,
                                                 inv.c.agency == item.agency)).values(reason=code))
            _provenance(conn, caller, "invitation", (item.meeting_id, item.agency), "reason", code)
        elif item.meeting_id:
            meeting = t["meeting"]
            conn.execute(meeting.update().where(meeting.c.meeting_id == item.meeting_id)
                         .values(reason=code))
            _provenance(conn, caller, "meeting", (item.meeting_id,), "reason", code)
        bump_change_stamp(conn)
    ctx.cache.clear()
    return message(f":memo: Reason \"{reason_label(code)}\" recorded for "
                   f"{mrkdwn_escape(item.label)}.")


def _scr_action_area(ctx: Context, key: str) -> str | None:
    """The area of the SCR behind `scr:<action id>` (None: national)."""
    parts = key_parts(key)
    if len(parts) != 2 or not parts[1].isdigit() or len(parts[1]) > 18:
        raise ActionError("That escalation no longer matches a record.")
    t = SQLModel.metadata.tables
    scr, rec, action = t["scr"], t["scr_recommendation"], t["scr_action"]
    with ctx.engine.connect() as conn:
        row = conn.execute(
            select(scr.c.area).join(rec, rec.c.scr_id == scr.c.id)
            .join(action, action.c.recommendation_id == rec.c.id)
            .where(action.c.id == int(parts[1]))).first()
    if row is None:
        raise ActionError("That escalation no longer matches a record.")
    return row[0]


def _check_ack(ctx: Context, caller: Caller, key: str, stage: str) -> None:
    """Refuse an acknowledgement the caller may not make (ActionError says why)."""
    if not key or stage not in ESCALATION_STAGES:
        raise ActionError("That escalation no longer matches a record.")
    check_key(key)
    if "sog_chair" not in caller.roles:
        raise ActionError("Only a SOG chair can acknowledge an escalation.")
    if key.startswith("scr:"):
        area = _scr_action_area(ctx, key)
        if area is not None and not caller.covers_area(area):
            raise ActionError("That escalation belongs to another area.")
    elif not key.startswith("indicator:"):
        item = find_item(ctx, key)
        if not caller.covers_area(item.area):
            raise ActionError("That escalation belongs to another area.")


# The outbox rules whose rows a SOG chair acknowledges (their Acknowledge buttons).
ACK_RULES = (Rule.ESCALATION.value, Rule.BELOW_TARGET.value)
NOT_ESCALATED = "That escalation was not sent to you."
URGENT_ALONE = "It is urgent: acknowledge it on its own."


def _escalated(ctx: Context, caller: Caller, pairs: list[tuple[str, str]]) -> dict:
    """{(key, stage): urgent?} for the pairs that were escalated to the caller (an outbox
    row of an escalation or below-target alert with them as its recipient); a pair that
    is not a key is absent."""
    table = SQLModel.metadata.tables["outbox"]
    keys = sorted({key for key, _ in pairs})
    found: dict = {}
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(table.c.item_key, table.c.stage, table.c.urgency).where(and_(
            table.c.rule.in_(ACK_RULES), table.c.recipient_id == caller.person_id,
            table.c.item_key.in_(keys))))
        for key, stage, urgency in rows:
            found[(key, stage)] = found.get((key, stage), False) or urgency == Urgency.URGENT
    return found


def _write_acks(ctx: Context, caller: Caller, pairs: list[tuple[str, str]]) -> None:
    """Record each (key, stage) once, whoever acknowledged it first (idempotent)."""
    table = SQLModel.metadata.tables["escalation_ack"]
    with ctx.engine.begin() as conn:
        for key, stage in pairs:
            where = and_(table.c.item_key == key, table.c.stage == stage)
            if conn.execute(select(table.c.person_id).where(where)).first() is None:
                conn.execute(table.insert().values(item_key=key, stage=stage,
                                                   person_id=caller.person_id,
                                                   at=dt.datetime.now(dt.UTC)))
        bump_change_stamp(conn)


def acknowledge(ctx: Context, caller: Caller, key: str, stage: str) -> Reply:
    """A SOG chair acknowledges an escalation of `key` at `stage`: it stops repeating at
    that stage. Only one that was escalated to them (an item they were sent, at that
    stage)."""
    _check_ack(ctx, caller, key, stage)
    if (key, stage) not in _escalated(ctx, caller, [(key, stage)]):
        raise ActionError(NOT_ESCALATED)
    _write_acks(ctx, caller, [(key, stage)])
    return message(f":ok_hand: Acknowledged: {mrkdwn_escape(key)} ({mrkdwn_escape(stage)}). "
                   "It will not be repeated at this stage.")


MAX_ACK_SHOWN = 10  # an escalation shows a few items (bot/channels/escalation.py)


def acknowledge_shown(ctx: Context, caller: Caller, shown: list[tuple[str, str]]
                      ) -> tuple[Reply, str]:
    """"Acknowledge all shown" on an escalation: the (key, stage) pairs of the items the
    SOG chair had in front of them, each checked as if acknowledged alone, and
    each one that was escalated to them and is not urgent (an urgent one needs its own
    look: the button never carries one). Those refused are named with why; the others are
    recorded. Returns the reply and the audit outcome: "ok" when all were acknowledged,
    "partial" when some were refused, "refused" when none were acknowledged."""
    if "sog_chair" not in caller.roles:
        raise ActionError("Only a SOG chair can acknowledge an escalation.")
    pairs = list(dict.fromkeys(shown))
    if not pairs or len(pairs) > MAX_ACK_SHOWN:
        raise ActionError("That button no longer matches a record.")
    done, refused = [], []
    for key, stage in pairs:
        try:
            _check_ack(ctx, caller, key, stage)
        except ActionError as exc:
            refused.append((key, str(exc)))
            continue
        done.append((key, stage))
    escalated = _escalated(ctx, caller, done) if done else {}
    checked = []
    for key, stage in done:
        if (key, stage) not in escalated:
            refused.append((key, NOT_ESCALATED))
        elif escalated[(key, stage)]:
            refused.append((key, URGENT_ALONE))
        else:
            checked.append((key, stage))
    done = checked
    if done:
        _write_acks(ctx, caller, done)
    lines = [f":ok_hand: Acknowledged {len(done)} of {len(pairs)}; they will not be repeated "
             "at this stage."] if done else ["Nothing acknowledged."]
    lines += [f"• {mrkdwn_escape(key)}: {mrkdwn_escape(why)}" for key, why in refused]
    outcome = "ok" if not refused else "partial" if done else "refused"
    return message("\n".join(lines)), outcome
