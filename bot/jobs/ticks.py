"""The scheduled jobs' ticks. Each loads what its job reads, asks `planner.plan` what SPEC
section 4 asks for at `now`, and writes that into the outbox (or returns it, for --dry-run);
running a tick twice plans nothing new."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from mappa_core.storage import audits_and_scrs, outbox, recorded
from mappa_core.rules import planner
from mappa_core.rules.calendar import calendar_for
from mappa_core.rules.indicators import compute_deadlines
from mappa_core.rules.periods import quarter_of
from mappa_core.rules.records import window_start
from mappa_core.rules.values import parse_date
from mappa_core.rules.vocabulary import Rule
from mappa_core.storage.queries import known_areas, load_people, load_records, local_holidays

LONDON = ZoneInfo("Europe/London")
JOB_NAMES = (*planner.JOBS, "deliver")  # the planning jobs, then the sender


@dataclass
class TickResult:
    job: str
    now: dt.datetime
    planned: pd.DataFrame
    inserted: int = 0
    skipped: str = ""


def parse_when(text: str, tz: dt.tzinfo = LONDON) -> dt.datetime:
    """A date (09:00 that day in `tz`, the configured time zone), read as every date of the
    product is (values.parse_date: YYYY-MM-DD or DD/MM/YYYY), or an ISO date-time (in `tz`
    unless it says)."""
    text = text.strip()
    if re.fullmatch(r"[0-9/-]+", text):  # a day, read (and refused) as every date is
        return dt.datetime.combine(parse_date(text), dt.time(9, 0), tzinfo=tz)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a date (YYYY-MM-DD or DD/MM/YYYY) nor a "
                         "date-time (YYYY-MM-DDTHH:MM)") from None
    return when if when.tzinfo else when.replace(tzinfo=tz)


def _state(engine, today: dt.date, lookback_days: int):
    # The quarter so far (below-target alerts), a week before it (weekly summary) and
    # the open paperwork's lookback.
    week_ago = today - dt.timedelta(days=7)
    since = window_start(week_ago, quarter_of(week_ago).start, lookback_days)
    records = load_records(engine, since=since)
    computed = compute_deadlines(records, today, lookback_days)
    snoozes, acks = outbox.snoozes_and_acks(engine)
    return records, computed, snoozes, acks


def plan_job(engine, job: str, now: dt.datetime, rules: planner.NudgeRules,
             area_channels: dict | None = None) -> pd.DataFrame:
    """What `job` would plan at `now` (no writes); case-free notices are copied to each
    area's channels (`area_channels`: channel -> areas, from bot.channels.area_channels)."""
    today = now.astimezone(LONDON).date()
    if job not in planner.JOBS:
        raise ValueError(f"unknown job {job!r}: use one of {', '.join(JOB_NAMES)}")
    if job == "digest" and not calendar_for(None, {}).is_working_day(today):
        return planner.empty()
    return planner.plan(job, _inputs(engine, job, now, today, rules.lookback_days), rules,
                        area_channels)


def _inputs(engine, job: str, now: dt.datetime, today: dt.date, lookback_days: int
            ) -> planner.Inputs:
    """What the planner reads for `job`, loaded from the database."""
    if job == "quarterly-review":
        return planner.Inputs(today, load_people(engine), areas=known_areas(engine))
    records, c, snoozes, acks = _state(engine, today, lookback_days)
    if job == "weekly-summary":
        return planner.Inputs(today, records.people, computed=c,
                              week_ago=compute_deadlines(records, today - dt.timedelta(days=7)),
                              to_key=recorded.pending_by_area(engine))
    scr = audits_and_scrs.scr_actions(engine, today)
    if job == "escalations":
        return planner.Inputs(today, records.people, computed=c, agencies=records.agencies,
                              acks=acks, scr_actions=scr, local_holidays=records.local_holidays)
    case_audits, meeting_audits = audits_and_scrs.audits_frames(engine)
    return planner.Inputs(
        today, records.people, areas=known_areas(engine), computed=c, agencies=records.agencies,
        snoozes=snoozes, problems=outbox.unreported_failures(engine),
        told=frozenset(outbox.recent_item_keys(engine, Rule.DELIVERY_PROBLEM.value,
                                               now - planner.DELIVERY_PROBLEM_QUIET)),
        case_audits=case_audits, meeting_audits=meeting_audits, scr_actions=scr,
        local_holidays=records.local_holidays)


def run_planning_job(engine, job: str, now: dt.datetime, rules: planner.NudgeRules,
                     dry_run: bool = False, area_channels: dict | None = None) -> TickResult:
    notes = plan_job(engine, job, now, rules, area_channels)
    result = TickResult(job, now, notes)
    if notes.empty and job == "digest":
        result.skipped = "not a working day" if not calendar_for(None, {}).is_working_day(
            now.astimezone(LONDON).date()) else ""
    if dry_run or notes.empty:
        return result
    result.inserted = outbox.plan(engine, notes, now, rules, local_holidays(engine))
    if job == "digest":
        # Every failure now told (today, or within the quiet period before) is reported.
        told = outbox.recent_item_keys(engine, Rule.DELIVERY_PROBLEM.value, now - planner.DELIVERY_PROBLEM_QUIET)
        failures = outbox.unreported_failures(engine)
        outbox.mark_reported(engine, [
            int(f.id) for f in failures.itertuples(index=False)
            if planner.delivery_problem_key(f.recipient_id, f.channel, f.last_error) in told])
    return result
