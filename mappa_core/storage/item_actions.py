"""What people do to an item through the bot (its buttons and the reason form) and what
they have done: the reads and writes behind bot/commands/actions.py and the redrawn
notice (bot/channels/slack/redraw.py).

Each write is one transaction that also notes who recorded the value (recorded.py, so a
later import keeps it) and bumps the change stamp (every replica's answer cache starts
again). The caller passes the time: storage never reads the clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from . import models  # noqa: F401  (registers the tables)
from . import recorded
from .db import bump_change_stamp


@dataclass(frozen=True)
class Who:
    """The person who acts, as the provenance of what they record names them."""

    person_id: str
    slack_user_id: str | None = None


def _t(name: str):
    return SQLModel.metadata.tables[name]


def _provenance(conn, who: Who, table: str, key: tuple, column: str, value,
                at: dt.datetime) -> None:
    """Who recorded this value and when, in the same transaction and before the value is
    written (the stored one is the export's, kept as its base): a later import keeps it
    until the export changes (recorded.py)."""
    recorded.record(conn, table, key, column, value, person_id=who.person_id,
                    slack_user_id=who.slack_user_id, at=at)


# --------------------------------------------------------------------------- items


def meeting_item(engine: Engine, meeting_id: str, absent_agency: str | None = None
                 ) -> dict | None:
    """The meeting (meeting_id, ref, chair_id) with its case's area and chair (case_chair);
    None when there is no such meeting, or when `absent_agency` is given and that agency
    was not recorded absent from it (only an absent agency owes a written contribution)."""
    meeting, individual, invitation = _t("meeting"), _t("individual"), _t("invitation")
    with engine.connect() as conn:
        row = conn.execute(
            select(meeting.c.meeting_id, meeting.c.ref, meeting.c.chair_id,
                   individual.c.area, individual.c.chair_id.label("case_chair"))
            .join(individual, individual.c.ref == meeting.c.ref)
            .where(meeting.c.meeting_id == meeting_id)
        ).mappings().first()
        if row is None:
            return None
        if absent_agency is not None:
            found = conn.execute(select(invitation.c.agency).where(and_(
                invitation.c.meeting_id == meeting_id, invitation.c.agency == absent_agency,
                invitation.c.attendance == "absent"))).first()
            if found is None:
                return None
        return dict(row)


def case_item(engine: Engine, ref: str) -> dict | None:
    """The case (ref, area, chair_id), or None."""
    individual = _t("individual")
    with engine.connect() as conn:
        row = conn.execute(select(individual.c.ref, individual.c.area, individual.c.chair_id)
                           .where(individual.c.ref == ref)).mappings().first()
    return None if row is None else dict(row)


def set_meeting_date(engine: Engine, meeting_id: str, column: str, day: dt.date, who: Who,
                     at: dt.datetime) -> dt.date | None:
    """Record `column` (minutes_issued, rmp_ratified) of the meeting as `day`, unless it is
    already recorded: then that date, and nothing changes."""
    meeting = _t("meeting")
    with engine.begin() as conn:
        current = conn.execute(select(meeting.c[column]).where(
            meeting.c.meeting_id == meeting_id)).scalar()
        if current is not None:
            return current
        _provenance(conn, who, "meeting", (meeting_id,), column, day, at)
        conn.execute(meeting.update().where(meeting.c.meeting_id == meeting_id)
                     .values({column: day}))
        bump_change_stamp(conn)
    return None


def record_contribution(engine: Engine, meeting_id: str, agency: str, who: Who,
                        at: dt.datetime) -> tuple[str, bool]:
    """Mark the agency's written contribution to the meeting received. Returns the
    agency's display name (its id when it has none) and whether it was already recorded
    (then nothing changes)."""
    inv, agencies = _t("invitation"), _t("agency")
    where = and_(inv.c.meeting_id == meeting_id, inv.c.agency == agency)
    with engine.begin() as conn:
        name = conn.execute(select(agencies.c.name).where(
            agencies.c.agency == agency)).scalar() or agency
        if conn.execute(select(inv.c.written_contribution).where(where)).scalar() is True:
            return name, True
        _provenance(conn, who, "invitation", (meeting_id, agency), "written_contribution",
                    True, at)
        conn.execute(inv.update().where(where).values(written_contribution=True))
        bump_change_stamp(conn)
    return name, False


def snooze(engine: Engine, item_key: str, person_id: str, until: dt.date,
           at: dt.datetime) -> None:
    """The person's snooze of the item, set or moved to `until`."""
    table = _t("snooze")
    where = and_(table.c.item_key == item_key, table.c.person_id == person_id)
    with engine.begin() as conn:
        if conn.execute(select(table.c.until).where(where)).scalar() is None:
            conn.execute(table.insert().values(item_key=item_key, person_id=person_id,
                                               until=until, created_at=at))
        else:
            conn.execute(table.update().where(where).values(until=until, created_at=at))
        bump_change_stamp(conn)


def agency_names(engine: Engine) -> dict[str, str]:
    """Every agency id with its display name (its id when it has none), by name."""
    agency = _t("agency")
    with engine.connect() as conn:
        rows = conn.execute(select(agency.c.agency, agency.c.name)).all()
    return dict(sorted(((a, n or a) for a, n in rows), key=lambda kv: (kv[1].lower(), kv[0])))


def record_reason(engine: Engine, item_key: str, who: Who, code: str, text: str,
                  at: dt.datetime, on: tuple[str, tuple] | None = None,
                  agency: str | None = None) -> None:
    """A reason (and note, and the agency behind it if named) for the item, once per
    identical note; the reason is also set on the row `on` names: ("invitation", (meeting
    id, agency)) or ("meeting", (meeting id,)), where the item has one."""
    note = _t("item_note")
    with engine.begin() as conn:
        same = conn.execute(select(note.c.id).where(and_(
            note.c.item_key == item_key, note.c.person_id == who.person_id,
            note.c.reason == code, note.c.text == text,
            note.c.agency.is_(None) if agency is None else note.c.agency == agency))).first()
        if same is None:
            conn.execute(note.insert().values(item_key=item_key, person_id=who.person_id,
                                              reason=code, text=text, at=at, agency=agency))
        if on is not None:
            table, key = on
            t = _t(table)
            where = and_(t.c.meeting_id == key[0], t.c.agency == key[1]) \
                if table == "invitation" else t.c.meeting_id == key[0]
            _provenance(conn, who, table, key, "reason", code, at)
            conn.execute(t.update().where(where).values(reason=code))
        bump_change_stamp(conn)


# --------------------------------------------------------------------------- escalations


def scr_action_area(engine: Engine, action_id: int) -> str | None:
    """The area of the SCR an action belongs to (None: national); KeyError when there is
    no such action."""
    scr, rec, action = _t("scr"), _t("scr_recommendation"), _t("scr_action")
    with engine.connect() as conn:
        row = conn.execute(
            select(scr.c.area).join(rec, rec.c.scr_id == scr.c.id)
            .join(action, action.c.recommendation_id == rec.c.id)
            .where(action.c.id == action_id)).first()
    if row is None:
        raise KeyError(action_id)
    return row[0]


def escalations_to(engine: Engine, person_id: str, item_keys: list[str],
                   rules: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(item key, stage, urgency) of each outbox row of `rules` sent to the person about
    one of `item_keys`."""
    table = _t("outbox")
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(table.c.item_key, table.c.stage, table.c.urgency).where(and_(
                table.c.rule.in_(rules), table.c.recipient_id == person_id,
                table.c.item_key.in_(item_keys))))]


def acknowledge(engine: Engine, pairs: list[tuple[str, str]], person_id: str,
                at: dt.datetime) -> None:
    """Record each (item key, stage) once, whoever acknowledged it first (idempotent):
    the existing acknowledgements read in one query, the others inserted."""
    table = _t("escalation_ack")
    with engine.begin() as conn:
        keys = sorted({key for key, _ in pairs})
        existing = {(key, stage) for key, stage in conn.execute(
            select(table.c.item_key, table.c.stage).where(table.c.item_key.in_(keys)))}
        new = [pair for pair in dict.fromkeys(pairs) if pair not in existing]
        if new:
            conn.execute(table.insert(), [{"item_key": key, "stage": stage,
                                           "person_id": person_id, "at": at}
                                          for key, stage in new])
        bump_change_stamp(conn)


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class History:
    """What people did to some items, as the rows that record it."""

    done: list[dict]      # recorded_value rows: minutes, RMP, contributions received
    snoozes: list[dict]   # the viewer's own snoozes
    notes: list[dict]     # item_note rows, oldest first
    acks: list[dict]      # escalation_ack rows
    names: dict[str, str]  # person id -> name, for everyone in the rows above


def history(engine: Engine, viewer: str, item_keys: list[str], meeting_rows: list[str],
            invitation_rows: list[str]) -> History:
    """What was done to `item_keys` (and, through the values recorded on them, to the
    meetings and invitations whose row keys (recorded.row_key) are given), as `viewer`
    (a person id) sees it: their own snoozes, everyone's notes and acknowledgements."""
    person, rv = _t("person"), _t("recorded_value")
    snooze_t, note, ack = _t("snooze"), _t("item_note"), _t("escalation_ack")
    with engine.connect() as conn:
        done = []
        if meeting_rows:
            done += conn.execute(select(rv).where(
                (rv.c.target_table == "meeting") & rv.c.row_key.in_(meeting_rows)
                & rv.c.target_column.in_(["minutes_issued", "rmp_ratified"]))).mappings().all()
        if invitation_rows:
            done += conn.execute(select(rv).where(
                (rv.c.target_table == "invitation") & rv.c.row_key.in_(invitation_rows)
                & (rv.c.target_column == "written_contribution")
                & (rv.c.value == "yes"))).mappings().all()
        snoozes = conn.execute(select(snooze_t).where(
            snooze_t.c.item_key.in_(item_keys) & (snooze_t.c.person_id == viewer))
        ).mappings().all()
        notes = conn.execute(select(note).where(note.c.item_key.in_(item_keys))
                             .order_by(note.c.at, note.c.id)).mappings().all()
        acks = conn.execute(select(ack).where(ack.c.item_key.in_(item_keys))).mappings().all()
        who = {r["person_id"] for r in [*done, *snoozes, *notes, *acks] if r["person_id"]}
        names = dict(conn.execute(select(person.c.person_id, person.c.name)
                                  .where(person.c.person_id.in_(list(who))))
                     .all()) if who else {}
    return History([dict(r) for r in done], [dict(r) for r in snoozes],
                   [dict(r) for r in notes], [dict(r) for r in acks], names)
