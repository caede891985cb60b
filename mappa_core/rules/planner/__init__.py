"""Who is told what, and when (SPEC section 4). Pure: state and a date in, notices out.

`plan(job, inputs, rules)` is the entry: what one scheduled job tells everyone today, as
the outbox's rows. Inside, one module per concern:

- `thresholds`: `NudgeRules`, every threshold of SPEC section 4 (the bot's settings build it);
- `directory`: who is the chair, SOG chair, co-ordinator or agency contact of what, and
  how each is reached;
- `nudges`: the chairs' digests, the agency chasers and the escalations of breaches;
- `oversight_notices`: the weekly summary, below-target alerts, the quarterly-review reminder,
  overdue SCR actions and audit reminders;
- `delivery_problems`: messages that could not be delivered, told to co-ordinators;
- `area_channels`: copies of the case-free notices for a whole area's channel (Teams);
- `outbox_rows`: the typed `Notice`, its dedupe and group keys, and the outbox frame.

The planner reads open items from `due.open_items` (itself built on `deadlines`), so no due
date is computed here. Each notice carries a dedupe key built from the rule, the item, the
stage, the recipient and the day (or the repeat cycle), so that planning the same day
twice, on two replicas or after a restart, inserts nothing new into the outbox. When a
notice may go out (working hours) is `calendar.release_time`'s rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from ..calendar import calendar_for
from ..indicators import Computed
from ..vocabulary import Rule
from .area_channels import CASE_FREE_RULES, plan_area_channels
from .delivery_problems import DELIVERY_PROBLEM_QUIET, delivery_problem_key, plan_delivery_problems
from .directory import sog_chairs_by_area
from .nudges import plan_agency_chasers, plan_chair_digests, plan_escalations
from .outbox_rows import ESCALATION_STAGES, NOTIFICATION_COLUMNS, Notice, empty, frame
from .oversight_notices import (
    plan_audit_reminders, plan_below_target, plan_quarterly_review, plan_scr_overdue,
    plan_weekly_summary,
)
from .thresholds import NudgeRules

__all__ = [
    "CASE_FREE_RULES", "DELIVERY_PROBLEM_QUIET", "ESCALATION_STAGES", "JOBS", "NOTIFICATION_COLUMNS",
    "Inputs", "Notice", "NudgeRules", "delivery_problem_key", "empty", "frame", "plan",
    "plan_agency_chasers", "plan_area_channels", "plan_audit_reminders", "plan_below_target",
    "plan_chair_digests", "plan_delivery_problems", "plan_escalations", "plan_quarterly_review",
    "plan_scr_overdue", "plan_weekly_summary", "sog_chairs_by_area",
]

# The jobs that plan notices (the scheduler's fifth, `deliver`, only sends them).
JOBS = ("digest", "escalations", "weekly-summary", "quarterly-review")


def _none() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass(frozen=True)
class Inputs:
    """What the jobs read, loaded by the caller; each job reads only its own part.

    - digest: computed, people, agencies, snoozes, problems, told, case_audits,
      meeting_audits, scr_actions, areas, local_holidays;
    - escalations: computed, people, agencies, acks, scr_actions, local_holidays;
    - weekly-summary: computed, week_ago, people, to_key;
    - quarterly-review: people, areas.
    """

    today: dt.date
    people: pd.DataFrame
    areas: list[str] = field(default_factory=list)
    computed: Computed | None = None        # the records as they stood today
    week_ago: Computed | None = None        # ... and a week ago (the weekly summary's change)
    agencies: pd.DataFrame = field(default_factory=_none)
    snoozes: pd.DataFrame | None = None
    acks: pd.DataFrame | None = None
    problems: pd.DataFrame | None = None    # outbox rows given up on, not yet reported
    told: frozenset[str] = frozenset()      # delivery problems told within the quiet period
    case_audits: pd.DataFrame = field(default_factory=_none)
    meeting_audits: pd.DataFrame = field(default_factory=_none)
    scr_actions: pd.DataFrame = field(default_factory=_none)
    local_holidays: dict = field(default_factory=dict)  # area -> its own holidays
    to_key: dict = field(default_factory=dict)  # area -> values recorded, not yet in the export


def plan(job: str, inputs: Inputs, rules: NudgeRules,
         area_channels: dict | None = None) -> pd.DataFrame:
    """The notices `job` plans today, as the outbox's rows; the case-free ones are copied
    to each area's channels (`area_channels`: channel -> areas)."""
    return plan_area_channels(_plan(job, inputs, rules), area_channels or {})


def _plan(job: str, i: Inputs, rules: NudgeRules) -> pd.DataFrame:
    if job == "digest":
        return _off_local_holidays(pd.concat([
            plan_chair_digests(i.computed, i.people, rules, i.snoozes),
            plan_agency_chasers(i.computed, i.people, i.agencies, rules),
            plan_delivery_problems(i.problems, i.people, i.today, i.told),
            plan_audit_reminders(i.today, i.case_audits, i.meeting_audits, i.people, i.areas),
            _only(plan_scr_overdue(i.today, i.scr_actions, i.people, i.agencies, rules,
                                   local_holidays=i.local_holidays), Rule.SCR),
        ], ignore_index=True), i.today, i.local_holidays)
    if job == "escalations":
        return pd.concat([
            plan_escalations(i.computed, i.people, rules, i.acks),
            plan_below_target(i.computed, i.people),
            _only(plan_scr_overdue(i.today, i.scr_actions, i.people, i.agencies, rules, i.acks,
                                   i.local_holidays), Rule.ESCALATION),
        ], ignore_index=True)
    if job == "weekly-summary":
        return plan_weekly_summary(i.computed, i.week_ago, i.people, i.to_key)
    if job == "quarterly-review":
        return plan_quarterly_review(i.today, i.people, i.areas)
    raise ValueError(f"unknown job {job!r}: use one of {', '.join(JOBS)}")


def _off_local_holidays(notes: pd.DataFrame, today: dt.date, holidays: dict) -> pd.DataFrame:
    """The digest rows less those of areas keeping a local holiday today: their people get
    the next working day's digest (held back, today's would arrive beside it)."""
    off = {a for a in notes["area"].dropna().unique()
           if not calendar_for(a, holidays).is_working_day(today)}
    return notes[~notes["area"].isin(off)].reset_index(drop=True) if off else notes


def _only(notes: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """The SCR notices split between jobs: the owners' emails go with the digest, the SOG
    chair's escalation with the escalations."""
    return notes.query(f"rule == '{rule}'")
