"""Database tables (SQLModel) for the records of SPEC section 5, plus local holidays.

No table holds a MAPPA individual's name: only the pseudonymous `ref`.
"""

import datetime as dt

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
    custody_from: dt.date | None = None
    release_date: dt.date | None = None
    release_level: int | None = None
    chair_id: str | None = Field(default=None, max_length=64)
    birth_year: int | None = None
    gender: str | None = Field(default=None, max_length=32)
    ethnicity: str | None = Field(default=None, max_length=64)
    rosh: str | None = Field(default=None, max_length=16)


class Meeting(SQLModel, table=True):
    meeting_id: str = Field(primary_key=True, max_length=64)
    ref: str = Field(foreign_key="individual.ref", index=True, max_length=64)
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
    meeting_id: str = Field(foreign_key="meeting.meeting_id", primary_key=True, max_length=64)
    agency: str = Field(foreign_key="agency.agency", primary_key=True, max_length=64)
    attendance: str = Field(max_length=16)
    seniority_ok: bool | None = None
    written_contribution: bool | None = None
    reason: str | None = Field(default=None, max_length=32)


class Event(SQLModel, table=True):
    ref: str = Field(foreign_key="individual.ref", primary_key=True, max_length=64)
    date: dt.date = Field(primary_key=True)
    event: str = Field(primary_key=True, max_length=32)
    order_type: str | None = Field(default=None, max_length=16)


class LocalHoliday(SQLModel, table=True):
    """A holiday one area observes on top of the Scottish bank holidays."""

    __tablename__ = "local_holiday"
    area: str = Field(primary_key=True, max_length=64)
    date: dt.date = Field(primary_key=True)
    name: str = Field(default="", max_length=200)
