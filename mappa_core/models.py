"""Database tables (SQLModel) for the records of SPEC section 5, plus local holidays.

No table holds a MAPPA individual's name: only the pseudonymous `ref`.
"""

import datetime as dt
from typing import Optional

from sqlmodel import Field, SQLModel


class Agency(SQLModel, table=True):
    agency: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=8)  # ra | dtc
    role: str = Field(max_length=32)
    email: Optional[str] = Field(default=None, max_length=254)


class Person(SQLModel, table=True):
    person_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    email: Optional[str] = Field(default=None, max_length=254)
    slack_user_id: Optional[str] = Field(default=None, max_length=32, index=True)
    roles: str = Field(max_length=200)  # ';'-separated
    area: Optional[str] = Field(default=None, max_length=64)
    agency: Optional[str] = Field(default=None, max_length=64)


class Individual(SQLModel, table=True):
    ref: str = Field(primary_key=True, max_length=64)
    area: str = Field(max_length=64, index=True)
    category: int
    level: int
    status: str = Field(max_length=16)
    mappa_start: dt.date
    mappa_end: Optional[dt.date] = None
    custody_from: Optional[dt.date] = None
    release_date: Optional[dt.date] = None
    release_level: Optional[int] = None
    chair_id: Optional[str] = Field(default=None, max_length=64)
    birth_year: Optional[int] = None
    gender: Optional[str] = Field(default=None, max_length=32)
    ethnicity: Optional[str] = Field(default=None, max_length=64)
    rosh: Optional[str] = Field(default=None, max_length=16)


class Meeting(SQLModel, table=True):
    meeting_id: str = Field(primary_key=True, max_length=64)
    ref: str = Field(foreign_key="individual.ref", index=True, max_length=64)
    date: dt.date
    level: int
    kind: str = Field(max_length=16)
    setting: str = Field(max_length=16)
    chair_id: str = Field(max_length=64)
    outcome_level: Optional[str] = Field(default=None, max_length=8)  # 1 | 2 | 3 | exit
    minutes_issued: Optional[dt.date] = None
    rmp_ratified: Optional[dt.date] = None
    disclosure_considered: Optional[bool] = None
    reason: Optional[str] = Field(default=None, max_length=32)


class Invitation(SQLModel, table=True):
    meeting_id: str = Field(foreign_key="meeting.meeting_id", primary_key=True, max_length=64)
    agency: str = Field(foreign_key="agency.agency", primary_key=True, max_length=64)
    attendance: str = Field(max_length=16)
    seniority_ok: Optional[bool] = None
    written_contribution: Optional[bool] = None
    reason: Optional[str] = Field(default=None, max_length=32)


class Event(SQLModel, table=True):
    ref: str = Field(foreign_key="individual.ref", primary_key=True, max_length=64)
    date: dt.date = Field(primary_key=True)
    event: str = Field(primary_key=True, max_length=32)
    order_type: Optional[str] = Field(default=None, max_length=16)


class LocalHoliday(SQLModel, table=True):
    """A holiday one area observes on top of the Scottish bank holidays."""

    __tablename__ = "local_holiday"
    area: str = Field(primary_key=True, max_length=64)
    date: dt.date = Field(primary_key=True)
    name: str = Field(default="", max_length=200)
