"""The oversight notices (SPEC section 4 and the SOG's duties): Monday's weekly summary of
the indicators, an indicator falling below target, the quarterly-review reminder, overdue
SCR actions and the co-ordinators' audit reminders. Each builds one `Notice` at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd

from ..calendar import calendar_for
from ..indicators import Computed, IndicatorResult, compute_indicators, data_quality, restrict, why
from ..periods import quarter_of, reporting_year, reporting_year_of
from ..vocabulary import Rule, Stage, Urgency
from .directory import (
    COORDINATOR, SOG_CHAIR, EmailAddress, agency_addresses, chairs, coordinators, oversight_contacts,
    sog_chairs_by_area,
)
from .outbox_rows import Notice, frame, notice
from .thresholds import NudgeRules


def _previous_quarter(today: dt.date):
    return quarter_of(quarter_of(today).start - dt.timedelta(days=1))


def _names(c: Computed, people: pd.DataFrame) -> tuple[dict, dict]:
    """The agencies' and the people's names by id, for an indicator's `why`."""
    agencies = c.records.agencies
    agency_names = dict(zip(agencies["agency"], agencies["name"])) \
        if {"agency", "name"} <= set(agencies.columns) else {}
    people_names = dict(zip(people["person_id"], people["name"])) \
        if {"person_id", "name"} <= set(people.columns) else {}
    return agency_names, people_names


def _figures(res: IndicatorResult, area: str, quarter: str, names: tuple[dict, dict]) -> dict:
    """An indicator's figures as a notice carries them, with what drives it below target
    (`why`: the agencies below target, or the chairs and reasons behind most misses)."""
    return {"indicator": res.id, "title": res.title, "target": res.target,
            "percent": res.percent, "numerator": res.numerator,
            "denominator": res.denominator, "margin": res.margin, "pending": res.pending,
            "met": res.met, "area": area, "quarter": quarter, "why": why(res, *names)}


def plan_below_target(c: Computed, people: pd.DataFrame) -> pd.DataFrame:
    """Once per indicator per quarter per area, the day it falls below target, with what
    drives it there."""
    today = c.as_of
    quarter = quarter_of(today)
    areas = sorted(c.records.individuals["area"].unique())
    sog = sog_chairs_by_area(people, areas)
    names = _names(c, people)
    out: list[Notice] = []
    for area in areas:
        area_chairs = sog[sog["area"] == area]
        if area_chairs.empty:
            continue
        for res in compute_indicators(restrict(c, area), quarter):
            if res.met is not False:
                continue
            urgency = Urgency.URGENT if res.indicator.urgent else Urgency.NORMAL
            payload = _figures(res, area, quarter.label, names)
            for chair in area_chairs.itertuples(index=False):
                out.append(notice(Rule.BELOW_TARGET, chair, f"indicator:{res.id}:{area}:{quarter.label}",
                                  Stage.BELOW_TARGET, area, payload, quarter.label, today, urgency))
    return frame(out)


def plan_weekly_summary(c_now: Computed, c_week_ago: Computed, people: pd.DataFrame,
                        to_key: dict | None = None) -> pd.DataFrame:
    """Monday's summary for each SOG chair and each co-ordinator: every indicator quarter
    to date, its margin, the change since a week ago and, below target, what drives it.
    The co-ordinator's also says how many values recorded through the bot wait to be keyed
    into ViSOR (`to_key`: area -> how many), and the co-ordinator gets the data-quality rows
    of SPEC section 3 as a message of their own, apart from the indicators (they name cases:
    a private notice, never a channel)."""
    today = c_now.as_of
    quarter = quarter_of(today)
    before_q = quarter_of(c_week_ago.as_of)
    areas = sorted(c_now.records.individuals["area"].unique())
    sog = sog_chairs_by_area(people, areas)
    coords = coordinators(people)
    week = f"{today.isocalendar().year}-W{today.isocalendar().week:02d}"
    names = _names(c_now, people)
    out: list[Notice] = []
    for area in areas:
        area_chairs = sog[sog["area"] == area]
        area_coords = coords[coords["area"].isna() | (coords["area"] == area)]
        if area_chairs.empty and area_coords.empty:
            continue
        recipients = pd.concat([area_chairs[["person_id", "channel", "address"]],
                                area_coords[["person_id", "channel", "address"]]],
                               ignore_index=True).drop_duplicates("person_id")
        area_c = restrict(c_now, area)
        now_results = compute_indicators(area_c, quarter)
        # Last week's figure for the same quarter; none when the quarter has just begun.
        prev = {r.id: r.percent for r in compute_indicators(restrict(c_week_ago, area), quarter)} \
            if before_q == quarter else {}
        for res in now_results:
            payload = {**_figures(res, area, quarter.label, names),
                       "previous_percent": prev.get(res.id)}
            for who in recipients.itertuples(index=False):
                out.append(notice(Rule.WEEKLY, who, f"indicator:{res.id}:{area}", Stage.SUMMARY,
                                  area, payload, week, today))
        # The co-ordinator's data-quality rows (they name cases), a message of their own.
        for dq in data_quality(area_c, quarter):
            payload = {**dq, "area": area, "quarter": quarter.label}
            # One case can fail a check more than once (two agencies' seniority at one
            # meeting): the detail's digest keeps each its own row.
            tag = hashlib.sha1(str(dq["detail"]).encode()).hexdigest()[:8]
            for who in area_coords.itertuples(index=False):
                out.append(notice(Rule.DATA_QUALITY, who, f"data_quality:{dq['check']}:{dq['ref']}:{tag}",
                                  Stage.SUMMARY, area, payload, week, today))
        if (to_key or {}).get(area):
            payload = {"to_key": int(to_key[area]), "area": area, "quarter": quarter.label}
            for who in area_coords.itertuples(index=False):
                out.append(notice(Rule.WEEKLY, who, f"to_key:{area}", Stage.SUMMARY, area,
                                  payload, week, today))
    return frame(out)


def plan_quarterly_review(today: dt.date, people: pd.DataFrame, areas) -> pd.DataFrame:
    """Once a quarter, remind each area's SOG chair and co-ordinator that the SOG's review
    of the quarter just ended is due."""
    previous = _previous_quarter(today)
    chan = oversight_contacts(people)
    out: list[Notice] = []
    for area in sorted(set(areas)):
        for who in chan.itertuples(index=False):
            if not ({SOG_CHAIR, COORDINATOR} & set(who.role_list)):
                continue
            if who.area is not None and who.area != area:
                continue
            out.append(notice(Rule.QUARTERLY, who, f"quarterly:{area}:{previous.label}",
                              Stage.REVIEW_DUE, area, {"quarter": previous.label, "area": area},
                              previous.label, today))
    return frame(out)


def plan_audit_reminders(today: dt.date, case_audits: pd.DataFrame, meeting_audits: pd.DataFrame,
                         people: pd.DataFrame, areas) -> pd.DataFrame:
    """Remind co-ordinators, in their digest, of audits not yet done: the year's case audit
    from the start of Q4, and last quarter's meeting audit for each chair."""
    year = reporting_year(reporting_year_of(today))
    quarter = quarter_of(today)
    last_q = _previous_quarter(today)
    done_years = set(case_audits.loc[case_audits["completed_on"].notna(), "year"]) \
        if not case_audits.empty else set()
    audited = set(zip(meeting_audits["quarter"], meeting_audits["chair_id"])) \
        if not meeting_audits.empty else set()
    meeting_chairs = chairs(people)
    out: list[Notice] = []
    for coord in coordinators(people).itertuples(index=False):
        scope = [a for a in areas if coord.area is None or a == coord.area]
        items = []
        if quarter.label.endswith("Q4") and year.label not in done_years:
            items.append(("audit:case:" + year.label, {
                "kind": "audit_reminder", "what": "case audit", "period": year.label,
                "detail": f"no Level 2/3 case audit recorded for {year.label}"}))
        for chair in meeting_chairs.itertuples(index=False):
            if chair.area is not None and chair.area not in scope:
                continue
            if (last_q.label, chair.person_id) not in audited:
                items.append((f"audit:meeting:{last_q.label}:{chair.person_id}", {
                    "kind": "audit_reminder", "what": "meeting audit", "period": last_q.label,
                    "detail": f"no audit of {chair.name}'s meetings recorded for {last_q.label}"}))
        for key, payload in items:
            out.append(notice(Rule.AUDIT_REMINDER, coord, key, Stage.DUE, coord.area, payload,
                              today.isoformat(), today, grouped_with=Rule.DIGEST))
    return frame(out)


def plan_scr_overdue(today: dt.date, actions: pd.DataFrame, people: pd.DataFrame,
                     agencies: pd.DataFrame, rules: NudgeRules,
                     acks: pd.DataFrame | None = None,
                     local_holidays: dict | None = None) -> pd.DataFrame:
    """Overdue SCR actions: an email to the owner agency's contacts and an escalation to the
    SOG chair, repeated every `escalation_repeat_wd` working days (in the action's area's
    calendar) until done; the escalation stops once a SOG chair acknowledges it (like the
    others)."""
    acked = set() if acks is None or acks.empty else set(zip(acks["item_key"], acks["stage"]))
    overdue = actions[actions["overdue"]] if not actions.empty else actions
    if overdue.empty:
        return frame([])
    every_area = sorted(set(people["area"].dropna()) - {""})
    contacts = agency_addresses(people, agencies)
    emails: list[Notice] = []
    escalations: list[Notice] = []
    for a in overdue.itertuples(index=False):
        cal = calendar_for(a.area if isinstance(a.area, str) else None, local_holidays or {})
        cycle = max(cal.working_days_between(a.due, today), 0) // max(rules.escalation_repeat_wd, 1)
        payload = {"kind": "scr_action", "action_id": int(a.id), "title": a.title,
                   "owner": a.owner_agency, "description": a.description,
                   "due": pd.Timestamp(a.due).date().isoformat(), "area": a.area}
        key = f"scr:{a.id}"
        for address in sorted(set(contacts.loc[contacts["agency"] == a.owner_agency, "address"])):
            emails.append(notice(Rule.SCR, EmailAddress(address), key, Stage.OVERDUE, a.area, payload,
                                 f"c{cycle}", today))
        areas = [a.area] if a.area else every_area
        if (key, Stage.SCR_OVERDUE) in acked:
            continue
        for chair in sog_chairs_by_area(people, areas).itertuples(index=False):
            escalations.append(notice(Rule.ESCALATION, chair, key, Stage.SCR_OVERDUE, a.area,
                                      payload, f"c{cycle}", today))
    return frame(emails + escalations)
