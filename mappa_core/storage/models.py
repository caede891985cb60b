"""Database tables (SQLModel) for the records of SPEC section 5, plus local holidays.

No table holds a MAPPA individual's name: only the pseudonymous `ref`.

The import's references (a meeting's `ref`, an invitation's meeting and agency, ...) have
no foreign keys: the importer checks every one and writes nothing if one names no row
(migration 0012 says why).
"""

import datetime as dt

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel


class Agency(SQLModel, table=True):
    agency: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=8)  # ra | dtc
    role: str = Field(max_length=32)
    email: str | None = Field(default=None, max_length=254)


class Person(SQLModel, table=True):
    person_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254)
    slack_user_id: str | None = Field(default=None, max_length=32, index=True)
    roles: str = Field(max_length=200)  # ';'-separated
    area: str | None = Field(default=None, max_length=64)
    agency: str | None = Field(default=None, max_length=64)


class Individual(SQLModel, table=True):
    ref: str = Field(primary_key=True, max_length=64)
    area: str = Field(max_length=64, index=True)
    category: int
    level: int
    status: str = Field(max_length=16)
    mappa_start: dt.date
    mappa_end: dt.date | None = None
    level_from: dt.date | None = None  # the entry point of the Level 2/3 review chain
    custody_from: dt.date | None = None
    release_date: dt.date | None = None
    release_level: int | None = None
    chair_id: str | None = Field(default=None, max_length=64)
    birth_year: int | None = None
    gender: str | None = Field(default=None, max_length=32)
    ethnicity: str | None = Field(default=None, max_length=64)
    rosh: str | None = Field(default=None, max_length=16)


class CustodyPeriod(SQLModel, table=True):
    """A past custody period (custody.csv, or a current one the importer kept when the
    export moved on to a later period): the review chain paused in it, and its release
    is counted by `custody-initial-l3`."""

    __tablename__ = "custody_period"
    ref: str = Field(primary_key=True, max_length=64)  # an individual's (the importer checks)
    custody_from: dt.date = Field(primary_key=True)
    release_date: dt.date
    release_level: int | None = None


class Meeting(SQLModel, table=True):
    __table_args__ = (Index("ix_meeting_date", "date"), Index("ix_meeting_ref_date", "ref", "date"),
                      Index("ix_meeting_kind_level_setting_date", "kind", "level", "setting",
                            "date"))
    meeting_id: str = Field(primary_key=True, max_length=64)
    ref: str = Field(index=True, max_length=64)  # an individual's (the importer checks)
    date: dt.date
    level: int
    kind: str = Field(max_length=16)
    setting: str = Field(max_length=16)
    chair_id: str = Field(max_length=64)
    outcome_level: str | None = Field(default=None, max_length=8)  # 1 | 2 | 3 | exit
    minutes_issued: dt.date | None = None
    rmp_ratified: dt.date | None = None
    disclosure_considered: bool | None = None
    reason: str | None = Field(default=None, max_length=32)


class Invitation(SQLModel, table=True):
    meeting_id: str = Field(primary_key=True, max_length=64)  # a meeting's (the importer checks)
    agency: str = Field(primary_key=True, max_length=64)  # an agency's (the importer checks)
    attendance: str = Field(max_length=16)
    seniority_ok: bool | None = None
    written_contribution: bool | None = None
    reason: str | None = Field(default=None, max_length=32)


class Event(SQLModel, table=True):
    ref: str = Field(primary_key=True, max_length=64)  # an individual's (the importer checks)
    date: dt.date = Field(primary_key=True)
    event: str = Field(primary_key=True, max_length=32)
    order_type: str | None = Field(default=None, max_length=16)


class LocalHoliday(SQLModel, table=True):
    """A holiday one area observes on top of the Scottish bank holidays."""

    __tablename__ = "local_holiday"
    area: str = Field(primary_key=True, max_length=64)
    date: dt.date = Field(primary_key=True)
    name: str = Field(default="", max_length=200)


class AuditLog(SQLModel, table=True):
    """Every Slack command and action: who, when, what, and how it ended."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(index=True)
    slack_user_id: str | None = Field(default=None, max_length=32)
    person_id: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=64)
    detail: str = Field(default="", max_length=500)
    outcome: str = Field(max_length=64)


class UrgentIssue(SQLModel, table=True):
    """An urgent issue raised by a person (`/mappa escalate`) for the SOG chair."""

    __tablename__ = "urgent_issue"
    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=64, unique=True)
    raised_at: dt.datetime
    raised_by: str = Field(max_length=64)
    area: str | None = Field(default=None, max_length=64)
    text: str = Field(sa_column=Column(Text, nullable=False))  # whole, however long
    # ';'-separated ids of the agencies the raiser chose to e-mail it to (none unless chosen)
    agencies: str = Field(default="", sa_column=Column(Text, nullable=False))


class Snooze(SQLModel, table=True):
    """A chair's snooze of one nudge item until a date (never silences an escalation)."""

    item_key: str = Field(primary_key=True, max_length=200)
    person_id: str = Field(primary_key=True, max_length=64)
    until: dt.date
    created_at: dt.datetime


class ItemNote(SQLModel, table=True):
    """A reason recorded against an item from Slack, with the person's free text."""

    __tablename__ = "item_note"
    id: int | None = Field(default=None, primary_key=True)
    item_key: str = Field(max_length=200, index=True)
    person_id: str = Field(max_length=64)
    reason: str = Field(max_length=32)
    text: str = Field(default="", max_length=2000)
    at: dt.datetime
    agency: str | None = Field(default=None, max_length=64)  # the agency behind it, if named


class Outbox(SQLModel, table=True):
    """Planned notifications. Jobs insert (ignoring duplicate dedupe keys); the delivery
    worker claims pending rows, sends one message per group_key, and marks them sent."""

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=400, unique=True)
    rule: str = Field(max_length=32)
    item_key: str = Field(max_length=200)
    stage: str = Field(max_length=32)
    recipient_id: str = Field(max_length=300)
    channel: str = Field(max_length=8)  # slack | email | none
    address: str = Field(default="", max_length=300)
    urgency: str = Field(default="normal", max_length=8)
    group_key: str = Field(max_length=400, index=True)
    area: str | None = Field(default=None, max_length=64)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    planned_at: dt.datetime
    not_before: dt.datetime
    status: str = Field(default="pending", max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: dt.datetime
    claim_token: str | None = Field(default=None, max_length=40, index=True)
    claimed_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)
    reported: bool = False
    # Where a Slack notice was posted (chat.postMessage's channel and ts): a button pressed
    # on it may draw it again only there (bot/commands/notices.py). None: not a Slack
    # message, or sent before this was kept.
    posted_channel: str | None = Field(default=None, max_length=64)
    posted_ts: str | None = Field(default=None, max_length=32)


class EscalationAck(SQLModel, table=True):
    """A SOG chair's acknowledgement of an escalation: it stops repeating at that stage."""

    __tablename__ = "escalation_ack"
    item_key: str = Field(primary_key=True, max_length=200)
    stage: str = Field(primary_key=True, max_length=32)
    person_id: str = Field(max_length=64)
    at: dt.datetime


class Area(SQLModel, table=True):
    """A MAPPA area's settings: its population, for the annual report's rate per 100,000."""

    area: str = Field(primary_key=True, max_length=64)
    population: int | None = None


class CaseAudit(SQLModel, table=True):
    """A Level 2/3 (or Level 1) case drawn for the year's audit, and its findings."""

    __tablename__ = "case_audit"
    id: int | None = Field(default=None, primary_key=True)
    year: str = Field(max_length=7, index=True)  # 2026-27
    ref: str = Field(max_length=64)
    level: int
    seed: int
    sampled_at: dt.datetime
    auditor: str | None = Field(default=None, max_length=64)
    referral_reviewed: bool | None = None
    minutes_reviewed: bool | None = None
    all_agencies_present: bool | None = None
    rmp_quality: str | None = Field(default=None, max_length=16)  # good | adequate | poor
    actions_on_time: bool | None = None
    effective_practice: str = Field(default="", max_length=2000)
    improvements: str = Field(default="", max_length=2000)
    feedback_to_sog: str = Field(default="", max_length=2000)
    completed_on: dt.date | None = None


class MeetingAudit(SQLModel, table=True):
    """A quarter's audit of one chair's meetings."""

    __tablename__ = "meeting_audit"
    id: int | None = Field(default=None, primary_key=True)
    quarter: str = Field(max_length=10, index=True)  # 2026-27-Q3
    chair_id: str = Field(max_length=64)
    meeting_id: str | None = Field(default=None, max_length=64)
    auditor: str | None = Field(default=None, max_length=64)
    findings: str = Field(default="", max_length=2000)
    completed_on: dt.date


class Scr(SQLModel, table=True):
    """A Significant Case Review whose recommendations the SOG follows up."""

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    area: str | None = Field(default=None, max_length=64)
    published: dt.date | None = None


class ScrRecommendation(SQLModel, table=True):
    __tablename__ = "scr_recommendation"
    id: int | None = Field(default=None, primary_key=True)
    scr_id: int = Field(foreign_key="scr.id", index=True)
    text: str = Field(max_length=2000)


class ScrAction(SQLModel, table=True):
    __tablename__ = "scr_action"
    id: int | None = Field(default=None, primary_key=True)
    recommendation_id: int = Field(foreign_key="scr_recommendation.id", index=True)
    owner_agency: str = Field(max_length=64)
    description: str = Field(max_length=2000)
    due: dt.date
    status: str = Field(default="open", max_length=16)  # open | done
    done_on: dt.date | None = None


class ScrUpdate(SQLModel, table=True):
    __tablename__ = "scr_update"
    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="scr_action.id", index=True)
    at: dt.datetime
    person_id: str | None = Field(default=None, max_length=64)
    text: str = Field(max_length=2000)


class RecordedValue(SQLModel, table=True):
    """A value a person recorded through the bot (a button or the reason modal), and the
    export's value when they did (`base`, blank: none): an import whose cell still says the
    base (or is blank) keeps the recorded value, one that says the recorded value has
    caught up (`base` becomes the value), and one that says anything else replaces it and
    leaves it in the audit log (storage/recorded.py).

    `row_key` is the row's key as a JSON list (`["M1"]`, `["M1", "police"]`): any id
    round-trips, whatever characters it holds.
    """

    __tablename__ = "recorded_value"
    target_table: str = Field(primary_key=True, max_length=32)
    row_key: str = Field(primary_key=True, max_length=200)
    target_column: str = Field(primary_key=True, max_length=32)
    value: str = Field(max_length=64)
    person_id: str | None = Field(default=None, max_length=64)
    slack_user_id: str | None = Field(default=None, max_length=32)
    recorded_at: dt.datetime
    base: str | None = Field(default=None, max_length=64)


class ChangeStamp(SQLModel, table=True):
    """One row whose version goes up in the same transaction as every import and every
    button that changes a record: replicas compare it before answering from their caches."""

    __tablename__ = "change_stamp"
    id: int = Field(primary_key=True)
    version: int = 0


class SeenRequest(SQLModel, table=True):
    """A request from Slack the bot has acted on, by the SHA-256 of its idempotency key
    (seen_requests.py): a replay of it within Slack's 5-minute signature window, to this
    replica or another, is recognised and not applied again. Kept an hour."""

    __tablename__ = "seen_request"
    key: str = Field(primary_key=True, max_length=64)
    seen_at: dt.datetime = Field(index=True)
