"""Reporting periods: reporting years (1 April - 31 March), their quarters and date ranges.

A period is read once, where a person types it (a Slack command's text, a CLI argument:
`parse_period`), and travels as a `Period` value from there to the rules that compute with
it; nothing downstream parses it again. `asked` is the one rule for the period a question
is about: the one asked for, else the quarter to date, and never one that has not started.
Every refusal is a `PeriodError` whose message says, in words a person can act on, what is
wrong with what they typed."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# The one date parser (values.py); FIRST_YEAR..LAST_YEAR are the years records can hold.
from .values import FIRST_YEAR, LAST_YEAR, parse_date

_YEAR = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-(\d{2})-Q([1-4])")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


class PeriodError(ValueError):
    pass


# The longest period anyone may ask for: the work of one answer grows with its period, and
# ten years covers every report the guidance asks for (the annual report looks back one).
MAX_PERIOD_YEARS = 10


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive
    label: str

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def asked(period: Period | None, as_of: dt.date) -> Period:
    """The period a question about the records as they stood on `as_of` is about: `period`,
    or when none was asked for the quarter containing `as_of`. A period that starts after
    `as_of` is refused (all zeros would look like an answer)."""
    per = period or quarter_of(as_of)
    if per.start > as_of:
        raise PeriodError(f"period {per.label} starts after {as_of.isoformat()}, the date the "
                          "answer is as of: nothing in it has happened yet")
    return per


def reporting_year_of(day: dt.date) -> int:
    """The calendar year in which the reporting year containing `day` starts."""
    return day.year if day.month >= 4 else day.year - 1


def year_label(start_year: int) -> str:
    return f"{start_year}-{(start_year + 1) % 100:02d}"


def reporting_year(start_year: int) -> Period:
    return Period(
        dt.date(start_year, 4, 1), dt.date(start_year + 1, 3, 31), year_label(start_year)
    )


def quarter(start_year: int, q: int) -> Period:
    month = 4 + 3 * (q - 1)
    year = start_year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    start = dt.date(year, month, 1)
    nxt = dt.date(year + (month + 2) // 12, (month + 2) % 12 + 1, 1)
    return Period(start, nxt - dt.timedelta(days=1), f"{year_label(start_year)}-Q{q}")


def quarter_of(day: dt.date) -> Period:
    start_year = reporting_year_of(day)
    q = ((day.month - 4) % 12) // 3 + 1
    return quarter(start_year, q)


def previous_quarters(period: Period, n: int) -> list[Period]:
    """The n quarters ending with the quarter that contains period.start, oldest first."""
    out = [quarter_of(period.start)]
    while len(out) < n:
        out.insert(0, quarter_of(out[0].start - dt.timedelta(days=1)))
    return out


def _check_year_pair(text: str, first: str, second: str) -> int:
    start_year = int(first)
    if (start_year + 1) % 100 != int(second):
        raise PeriodError(
            f"period {text!r}: a reporting year is written with consecutive years, "
            f"e.g. {year_label(start_year)}"
        )
    return start_year


def parse_period(text: str) -> Period:
    """Parse `2026-27`, `2026-27-Q3` or `YYYY-MM-DD..YYYY-MM-DD` (both ends inclusive)."""
    period = _parse_period(text.strip())
    if period.start.year < FIRST_YEAR or period.end.year > LAST_YEAR:
        raise PeriodError(f"period {text.strip()!r} is outside the years {FIRST_YEAR}-{LAST_YEAR}")
    return period


def _parse_period(text: str) -> Period:
    try:
        if m := _QUARTER.fullmatch(text):
            return quarter(_check_year_pair(text, m[1], m[2]), int(m[3]))
        if m := _YEAR.fullmatch(text):
            return reporting_year(_check_year_pair(text, m[1], m[2]))
    except ValueError as exc:  # year 0 or 10000
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(f"period {text!r}: {exc}") from None
    if m := _RANGE.fullmatch(text):
        try:
            start, end = parse_date(m[1]), parse_date(m[2])
        except ValueError as exc:
            raise PeriodError(f"period {text!r}: {exc}") from None
        if end < start:
            raise PeriodError(f"period {text!r}: the end is before the start")
        if (end.year - start.year, end.month, end.day) > (MAX_PERIOD_YEARS, start.month, start.day):
            raise PeriodError(f"period {text!r} is longer than {MAX_PERIOD_YEARS} years; "
                              f"ask for at most {MAX_PERIOD_YEARS} years at a time")
        return Period(start, end, text)
    raise PeriodError(
        f"period {text!r} is not one of 2026-27, 2026-27-Q3 or YYYY-MM-DD..YYYY-MM-DD"
    )
