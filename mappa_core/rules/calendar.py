"""Working-day calendar: Monday-Friday less Scottish bank holidays and an area's local holidays.

"Within 10 working days" of a meeting on day D means on or before the 10th working day
after D, D itself being day 0 (SPEC section 2). The functions are vectorised over numpy
datetime64[D] arrays so that deadlines for a whole region are one call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Protocol

import holidays
import numpy as np

# Years covered by the calendar. Wide enough for every record ViSOR holds and every
# deadline the product computes; numpy's busday functions need the list up front.
FIRST_YEAR = 1990
LAST_YEAR = 2080


@lru_cache(maxsize=1)
def scottish_bank_holidays() -> tuple[dt.date, ...]:
    hols = holidays.country_holidays(
        "GB", subdiv="SCT", years=range(FIRST_YEAR, LAST_YEAR + 1)
    )
    return tuple(sorted(hols.keys()))


class WorkingCalendar:
    """Working days for one area: Scottish bank holidays plus that area's local holidays."""

    def __init__(self, local_holidays: Iterable[dt.date] = ()):
        days = set(scottish_bank_holidays()) | set(local_holidays)
        self.holidays = frozenset(days)
        self._cal = np.busdaycalendar(
            weekmask="1111100", holidays=np.array(sorted(days), dtype="datetime64[D]")
        )

    def is_working_day(self, day: dt.date) -> bool:
        return bool(np.is_busday(np.datetime64(day, "D"), busdaycal=self._cal))

    def add_working_days(self, days, n: int):
        """The nth working day after each day (day itself is day 0); n < 0 counts back.

        Accepts a date or a datetime64[D] array and returns the same kind.
        """
        scalar = isinstance(days, dt.date)
        arr = np.asarray(np.datetime64(days, "D") if scalar else days, dtype="datetime64[D]")
        # Rolling a non-working day D to the neighbouring working day on the side away from
        # the count leaves the number of working days between D and the answer unchanged.
        roll = "backward" if n >= 0 else "forward"
        out = np.busday_offset(arr, n, roll=roll, busdaycal=self._cal)
        return out.astype(dt.date) if scalar else out

    def working_days_between(self, start, end):
        """Working days in (start, end]: how many are left from start until end.

        Negative when end is before start (how many have passed since).
        """
        scalar = isinstance(start, dt.date) and isinstance(end, dt.date)
        a = np.asarray(start, dtype="datetime64[D]")
        b = np.asarray(end, dtype="datetime64[D]")
        # busday_count(x, y) counts [x, y) forwards, and (y, x] (negated) backwards: so
        # (start, end] forwards is [start+1, end+1), and (end, start] backwards is (end,
        # start] as it stands. Shifting both by one backwards too counted [end+2, start+1]:
        # a deadline on Thursday was 0 working days overdue on Friday, and Friday's was 2
        # on Monday.
        out = np.where(b >= a, np.busday_count(a + 1, b + 1, busdaycal=self._cal),
                       np.busday_count(a, b, busdaycal=self._cal))
        return int(out) if scalar else out


@lru_cache(maxsize=64)
def _calendar(local: tuple[dt.date, ...]) -> WorkingCalendar:
    return WorkingCalendar(local)


def calendar_for(area: str | None, local_holidays: Mapping[str, Iterable[dt.date]]) -> WorkingCalendar:
    """The calendar of one area (None: bank holidays only)."""
    local = tuple(sorted(local_holidays.get(area, ()))) if area is not None else ()
    return _calendar(local)


def add_working_days_by_area(
    days: np.ndarray, areas: np.ndarray, n: int, local_holidays: Mapping[str, Iterable[dt.date]]
) -> np.ndarray:
    """The nth working day after each day, each in its own area's calendar."""
    days = np.asarray(days, dtype="datetime64[D]")
    out = np.empty_like(days)
    valid = ~np.isnat(days)
    out[~valid] = np.datetime64("NaT")
    if not local_holidays:
        out[valid] = calendar_for(None, {}).add_working_days(days[valid], n)
        return out
    areas = np.asarray(areas, dtype=object)
    for area in set(areas[valid].tolist()):
        mask = valid & (areas == area)
        out[mask] = calendar_for(area, local_holidays).add_working_days(days[mask], n)
    return out


def working_days_between_by_area(
    start: np.ndarray, end: np.ndarray, areas: np.ndarray,
    local_holidays: Mapping[str, Iterable[dt.date]],
) -> np.ndarray:
    """Working days in (start, end] for each pair, in its own area's calendar."""
    start = np.asarray(start, dtype="datetime64[D]")
    end = np.asarray(end, dtype="datetime64[D]")
    out = np.zeros(len(end), dtype=np.int64)
    areas = np.asarray(areas, dtype=object)
    groups = set(areas.tolist()) if local_holidays else {None}
    for area in groups:
        mask = (areas == area) if area is not None else np.ones(len(end), dtype=bool)
        cal = calendar_for(area, local_holidays)
        out[mask] = cal.working_days_between(start[mask] if start.ndim else start, end[mask])
    return out


class WorkingHours(Protocol):
    work_start: str  # "HH:MM"
    work_end: str


def release_time(now: dt.datetime, urgent: bool, hours: WorkingHours,
                 local_holidays: dict | None = None, area: str | None = None) -> dt.datetime:
    """When a message may go out: at once if urgent or within working hours on a working
    day; otherwise at the start of the next working day (Europe/London).

    `hours` is anything with `work_start` and `work_end` as "HH:MM" (the planner's NudgeRules).
    """
    if urgent:
        return now
    cal = calendar_for(area, local_holidays or {})
    start = dt.time.fromisoformat(hours.work_start)
    end = dt.time.fromisoformat(hours.work_end)
    day = now.date()
    if cal.is_working_day(day) and start <= now.time() < end:
        return now
    if cal.is_working_day(day) and now.time() < start:
        nxt = day
    else:
        nxt = cal.add_working_days(day, 1)
    return dt.datetime.combine(nxt, start, tzinfo=now.tzinfo)
