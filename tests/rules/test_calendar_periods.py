"""Working days (Scottish bank holidays, local holidays) and reporting periods."""

import datetime as dt

import numpy as np
import pytest

from mappa_core.rules.calendar import (
    WorkingCalendar, add_working_days_by_area, working_days_between_by_area,
)
from mappa_core.rules.periods import PeriodError, parse_date, parse_period, previous_quarters, quarter_of

D = dt.date.fromisoformat
CAL = WorkingCalendar()


@pytest.mark.parametrize("day", [
    "2026-08-03",  # Summer Bank Holiday (first Monday of August, Scotland)
    "2026-11-30",  # St Andrew's Day
    "2026-12-28",  # Boxing Day (observed)
    "2027-01-04",  # 2 January (observed)
    "2026-04-03",  # Good Friday
])
def test_scottish_bank_holidays_are_not_working_days(day):
    assert not CAL.is_working_day(D(day))


def test_english_only_holidays_are_working_days():
    assert CAL.is_working_day(D("2026-04-06"))   # Easter Monday: not a Scottish bank holiday
    assert CAL.is_working_day(D("2026-08-31"))   # English Summer Bank Holiday


@pytest.mark.parametrize("start, n, expected", [
    ("2026-10-05", 10, "2026-10-19"),  # plain fortnight
    ("2026-07-27", 10, "2026-08-11"),  # across the Summer Bank Holiday
    ("2026-08-03", 10, "2026-08-17"),  # from the holiday itself (day 0)
    ("2026-11-28", 1, "2026-12-01"),   # Saturday, then St Andrew's Day Monday
    ("2026-12-21", 10, "2027-01-08"),  # Christmas and New Year
    ("2026-10-19", -10, "2026-10-05"), # counting back
    ("2026-10-05", 0, "2026-10-05"),
])
def test_add_working_days(start, n, expected):
    assert CAL.add_working_days(D(start), n) == D(expected)


def test_working_days_between_counts_after_start_up_to_end():
    assert CAL.working_days_between(D("2026-10-05"), D("2026-10-19")) == 10
    assert CAL.working_days_between(D("2026-10-19"), D("2026-10-05")) == -10
    assert CAL.working_days_between(D("2026-10-05"), D("2026-10-05")) == 0


@pytest.mark.parametrize("today, deadline, expected", [
    # Working days in (deadline, today], negative: how many have passed since. Counted by
    # hand on the calendar of November 2026 (Monday 30th St Andrew's Day).
    ("2026-11-27", "2026-11-26", -1),   # Thursday's deadline, on Friday
    ("2026-11-27", "2026-11-12", -11),  # 13, 16-20, 23-27
    ("2026-11-27", "2026-11-13", -10),
    ("2026-11-27", "2026-11-14", -10),  # a Saturday deadline: from Monday 16th
    ("2026-11-16", "2026-11-13", -1),   # Friday's deadline, on Monday
    ("2026-11-28", "2026-11-27", 0),    # on the Saturday after: no working day yet
    ("2026-12-01", "2026-11-27", -1),   # over the weekend and St Andrew's Day
    ("2026-11-27", "2026-12-01", 1),    # and forwards
    ("2026-11-27", "2026-11-30", 0),    # a holiday deadline: no working day left
    ("2026-11-27", "2026-11-27", 0),
])
def test_working_days_passed_since_a_deadline_on_every_weekday(today, deadline, expected):
    """A deadline yesterday is one working day overdue, whatever the weekday (numpy's
    backward count had been shifted by a day: Thursday's deadline was 0 working days
    overdue on Friday, and Friday's 2 on Monday)."""
    assert CAL.working_days_between(D(today), D(deadline)) == expected
    out = working_days_between_by_area(np.datetime64(today, "D"),
                                       np.array([deadline], dtype="datetime64[D]"),
                                       np.array(["Fife"], dtype=object), {"Fife": []})
    assert out.tolist() == [expected]


def test_local_holidays_apply_only_to_their_area():
    days = np.array(["2026-10-05", "2026-10-05"], dtype="datetime64[D]")
    out = add_working_days_by_area(days, np.array(["Fife", "Tayside"], dtype=object), 1,
                                   {"Fife": [D("2026-10-06")]})
    assert [str(x) for x in out] == ["2026-10-07", "2026-10-06"]


@pytest.mark.parametrize("text, start, end", [
    ("2026-27", "2026-04-01", "2027-03-31"),
    ("2026-27-Q1", "2026-04-01", "2026-06-30"),
    ("2026-27-Q2", "2026-07-01", "2026-09-30"),
    ("2026-27-Q3", "2026-10-01", "2026-12-31"),
    ("2026-27-Q4", "2027-01-01", "2027-03-31"),
    ("1999-00-Q4", "2000-01-01", "2000-03-31"),
    ("2026-10-01..2026-10-31", "2026-10-01", "2026-10-31"),
])
def test_parse_period(text, start, end):
    p = parse_period(text)
    assert (p.start, p.end) == (D(start), D(end))


@pytest.mark.parametrize("text", [
    "2026-28", "2026-27-Q5", "2026", "Q3", "2026-10-31..2026-10-01", "2026-02-30..2026-03-01", "",
])
def test_bad_periods_say_why(text):
    with pytest.raises(PeriodError, match="period"):
        parse_period(text)


def test_quarter_of_and_previous_quarters():
    assert quarter_of(D("2027-02-14")).label == "2026-27-Q4"
    assert quarter_of(D("2026-04-01")).label == "2026-27-Q1"
    assert [q.label for q in previous_quarters(parse_period("2026-27-Q2"), 3)] == [
        "2025-26-Q4", "2026-27-Q1", "2026-27-Q2",
    ]


@pytest.mark.parametrize("text", ["0001-01-01..0001-01-02", "0001-02", "2101-02-Q1",
                                  "2100-12-01..2101-01-31"])
def test_a_period_outside_the_years_records_can_hold_is_refused_with_its_reason(text):
    # Year 1 overflowed the date arithmetic deep in the loader (a traceback, or "something
    # went wrong" in Slack); the importer holds only 1900-2100.
    with pytest.raises(PeriodError, match="outside the years 1900-2100"):
        parse_period(text)


def test_an_as_of_date_outside_the_years_records_can_hold_is_refused():
    with pytest.raises(ValueError, match="outside the years 1900-2100"):
        parse_date("0001-01-02")
    assert parse_date("1900-01-01").year == 1900
