"""Who is told what, and when (SPEC section 4). Pure: state and a date in, notifications out.

The planner reads open items from `due.open_items` (itself built on `deadlines`), so no due
date is computed here. Each notification carries a dedupe key built from the rule, the
item, the stage, the recipient and the day (or the repeat cycle), so that planning the same
day twice, on two replicas or after a restart, inserts nothing new into the outbox.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .calendar import calendar_for, working_days_between_by_area
from .deadlines import MINUTES_WORKING_DAYS, PRE_RELEASE_DAYS
from .details import DETAIL_COLUMNS, with_details
from .due import open_items
from .indicators import INDICATORS, Computed, compute_indicators, data_quality, restrict
from .periods import quarter_of
from .records import LOOKBACK_DAYS

NOTIFICATION_COLUMNS = [
    "rule", "item_key", "stage", "recipient_id", "channel", "address", "urgency",
    "group_key", "dedupe_key", "area", "payload",
]


@dataclass(frozen=True)
class NudgeRules:
    """Every threshold of SPEC section 4 (working days unless named `_days`).

    Each can be set per deployment as MAPPA_<NAME in capitals>: the bot's settings
    (bot/settings.py) read and check them and build this object; the core never reads
    the environment.
    """

    review_nudge_wd: int = 10              # chair: from N working days before a review is due
    l3_review_escalate_days: int = 1       # SOG chair: N calendar days after an L3 due date
    l2_review_escalate_wd: int = 5         # SOG chair: N working days after an L2 due date
    minutes_nudge_wd: int = 7              # chair: from working day N after the meeting
    minutes_escalate_wd: int = 11          # SOG chair: on working day N (the breach)
    contribution_nudge_wd: int = 1         # chair + agency chaser: N working days after
    contribution_escalate_wd: int = 5
    disclosure_nudge_wd: int = 1
    disclosure_escalate_wd: int = 5
    pre_release_nudge_days: int = 84       # chair: from 12 weeks before release
    pre_release_escalate_days: int = 35    # SOG chair: 5 weeks before release
    escalation_repeat_wd: int = 5          # an unacknowledged escalation repeats this often
    lookback_days: int = LOOKBACK_DAYS     # paperwork older than this is no longer chased
    work_start: str = "08:30"              # digests and non-urgent messages go out from ...
    work_end: str = "17:30"                # ... until (Europe/London)


def _since_meeting(items: pd.DataFrame) -> pd.Series:
    """Working days since the meeting, for paperwork items: their deadline is the
    MINUTES_WORKING_DAYS-th working day after it (deadlines.meeting_items)."""
    return MINUTES_WORKING_DAYS - items["working_days_left"]


def _release(items: pd.DataFrame) -> pd.Series:
    """The release date of a pre-release item (its deadline is release less 28 days)."""
    return items["deadline"] + pd.Timedelta(days=PRE_RELEASE_DAYS)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=NOTIFICATION_COLUMNS)


def _people_roles(people: pd.DataFrame) -> pd.DataFrame:
    p = people.copy()
    p["role_list"] = p["roles"].fillna("").str.split(";")
    p["area"] = p["area"].where(p["area"].notna() & (p["area"] != ""), None)
    return p


# The stages an escalation is acknowledged at (its Acknowledge button carries one).
ESCALATION_STAGES = ("breach", "five_weeks", "below_target", "scr_overdue")


def _has_role(p: pd.DataFrame, role: str) -> pd.Series:
    """A boolean mask (also on no rows: an empty object Series would select columns)."""
    return p["role_list"].map(lambda r: role in r).astype(bool)


def _channel(people: pd.DataFrame) -> pd.DataFrame:
    """Slack where the person has a Slack user id, email otherwise (SPEC section 4)."""
    slack = people["slack_user_id"].fillna("").astype(str)
    email = people["email"].fillna("").astype(str)
    out = people[["person_id", "area"]].copy()
    out["channel"] = np.where(slack != "", "slack", np.where(email != "", "email", "none"))
    out["address"] = np.where(slack != "", slack, email)
    return out


def sog_chairs_by_area(people: pd.DataFrame, areas) -> pd.DataFrame:
    """(area, person_id, channel, address) for each area's SOG chairs; national ones where
    an area has none of its own."""
    p = _people_roles(people)
    sog = p[_has_role(p, "sog_chair")]
    chan = _channel(sog)
    rows = []
    national = chan[chan["area"].isna()]
    for area in sorted(set(areas)):
        own = chan[chan["area"] == area]
        use = own if not own.empty else national
        rows.append(use.assign(area=area))
    if not rows:
        return pd.DataFrame(columns=["area", "person_id", "channel", "address"])
    return pd.concat(rows, ignore_index=True)


# The notices that carry no case reference (indicator figures, the quarterly reminder): the
# only ones a channel shared by a whole area (a Teams channel) may receive.
CASE_FREE_RULES = frozenset({"weekly", "below_target", "quarterly"})


def plan_area_channels(notes: pd.DataFrame, area_channels: dict) -> pd.DataFrame:
    """`notes` plus one copy of each case-free notice for each area channel of its area.

    `area_channels`: channel name -> the areas that have one (e.g. {"teams": {"Grampian"}}).
    A copy's recipient is "<channel>:<area>" and its address the area; it is deduplicated
    and grouped like the notice it copies. Nothing outside CASE_FREE_RULES is ever copied.
    """
    if notes.empty or not area_channels:
        return notes
    free = notes[notes["rule"].isin(CASE_FREE_RULES) & notes["area"].notna()]
    free = free.drop_duplicates(["rule", "item_key", "stage", "area"])
    copies = []
    for channel, areas in sorted(area_channels.items()):
        mine = free[free["area"].isin(set(areas))].copy()
        if mine.empty:
            continue
        mine["channel"] = channel
        mine["recipient_id"] = channel + ":" + mine["area"].astype(str)
        mine["address"] = mine["area"].astype(str)
        suffix = mine["dedupe_key"].str.rsplit("|", n=1).str[-1]
        day = mine["group_key"].str.rsplit("|", n=1).str[-1]
        mine["dedupe_key"] = (mine["rule"] + "|" + mine["item_key"] + "|" + mine["stage"] + "|"
                              + mine["recipient_id"] + "|" + suffix)
        mine["group_key"] = mine["rule"] + "|" + mine["recipient_id"] + "|" + day
        copies.append(mine)
    if not copies:
        return notes
    return pd.concat([notes, *copies], ignore_index=True)[NOTIFICATION_COLUMNS]


def _items_payload(df: pd.DataFrame) -> list[dict]:
    cols = ["kind", "level", "ref", "meeting_id", "agency", "deadline", "overdue",
            "working_days_left", "detail", "item_key", "stage", "area"]
    cols += [col for col in DETAIL_COLUMNS if col in df]  # where the planner added them
    out = []
    for row in df[cols].itertuples(index=False):
        d = row._asdict()
        d["deadline"] = d["deadline"].date().isoformat()
        d["overdue"] = bool(d["overdue"])
        d["working_days_left"] = int(d["working_days_left"])
        d["level"] = None if pd.isna(d["level"]) else int(d["level"])
        for k in ("meeting_id", "agency", "detail"):
            if not isinstance(d[k], str):
                d[k] = None
        out.append(d)
    return out


def _finish(df: pd.DataFrame, rule: str, day: dt.date, key_suffix: pd.Series | str) -> pd.DataFrame:
    if df.empty:
        return _empty()
    df = df.copy()
    df["rule"] = rule
    df["payload"] = _items_payload(df) if "kind" in df else df["payload"]
    suffix = key_suffix if isinstance(key_suffix, str) else key_suffix.astype(str)
    df["dedupe_key"] = (
        rule + "|" + df["item_key"] + "|" + df["stage"] + "|" + df["recipient_id"] + "|" + suffix
    )
    df["group_key"] = rule + "|" + df["recipient_id"] + "|" + day.isoformat()
    return df[NOTIFICATION_COLUMNS].reset_index(drop=True)


def plan_chair_digests(
    c: Computed, people: pd.DataFrame, rules: NudgeRules,
    snoozes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each chair's items for today's digest: one row per item; delivery groups them."""
    today = c.as_of
    items = open_items(c, rules.lookback_days)
    if items.empty:
        return _empty()
    wdl = items["working_days_left"]
    kind = items["kind"]
    since_meeting = _since_meeting(items)
    release = _release(items)
    today_ts = pd.Timestamp(today)
    show = (
        ((kind == "review") & (wdl <= rules.review_nudge_wd))
        | ((kind == "minutes") & (since_meeting >= rules.minutes_nudge_wd))
        | ((kind == "contribution") & (since_meeting >= rules.contribution_nudge_wd))
        | ((kind == "disclosure") & (since_meeting >= rules.disclosure_nudge_wd))
        | ((kind == "pre_release")
           & (release - pd.Timedelta(days=rules.pre_release_nudge_days) <= today_ts))
    )
    items = items[show].copy()
    items["stage"] = np.where(items["overdue"], "overdue", "due")
    chan = _channel(_people_roles(people))
    items = items.merge(chan.drop(columns=["area"]), left_on="chair_id", right_on="person_id",
                        how="inner")
    if snoozes is not None and not snoozes.empty:
        live = snoozes[pd.to_datetime(snoozes["until"]) > today_ts]
        snoozed = set(zip(live["item_key"], live["person_id"]))
        keep = [(k, p) not in snoozed for k, p in zip(items["item_key"], items["person_id"])]
        items = items[keep]
    items = items.rename(columns={"person_id": "recipient_id"})
    items["urgency"] = "normal"
    return _finish(items, "digest", today, today.isoformat())


def plan_agency_chasers(c: Computed, people: pd.DataFrame, agencies: pd.DataFrame,
                        rules: NudgeRules) -> pd.DataFrame:
    """Email chasers to agency contacts for missing written contributions: once when it
    is missing, once more when its deadline has passed."""
    items = open_items(c, rules.lookback_days)
    items = items[(items["kind"] == "contribution")
                  & (_since_meeting(items) >= rules.contribution_nudge_wd)]
    if items.empty:
        return _empty()
    contacts = []
    ag = agencies[agencies["email"].notna() & (agencies["email"] != "")]
    contacts.append(pd.DataFrame({"agency": ag["agency"], "address": ag["email"]}))
    p = _people_roles(people)
    ac = p[_has_role(p, "agency_contact") & p["email"].notna()
           & (p["email"] != "") & p["agency"].notna()]
    contacts.append(pd.DataFrame({"agency": ac["agency"], "address": ac["email"]}))
    contacts = pd.concat(contacts).drop_duplicates()
    items = items.merge(contacts, on="agency", how="inner")
    items = with_details(items, people, agencies, c.records.meetings)
    items["recipient_id"] = "email:" + items["address"].str.lower()
    items["channel"] = "email"
    items["urgency"] = "normal"
    items["stage"] = np.where(items["overdue"], "overdue", "missing")
    return _finish(items, "chaser", c.as_of, "once")


def plan_escalations(
    c: Computed, people: pd.DataFrame, rules: NudgeRules, acks: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Breaches for each area's SOG chair; repeated every `escalation_repeat_wd` working days
    while unresolved, until a SOG chair acknowledges that item and stage."""
    today = c.as_of
    today_ts = pd.Timestamp(today)
    items = open_items(c, rules.lookback_days)
    if items.empty:
        return _empty()
    wdl = items["working_days_left"]
    kind = items["kind"]
    level = pd.to_numeric(items["level"], errors="coerce")
    since_meeting = _since_meeting(items)
    release = _release(items)
    l3 = (kind == "review") & (level == 3) & (
        items["deadline"] + pd.Timedelta(days=rules.l3_review_escalate_days) <= today_ts)
    l2 = (kind == "review") & (level == 2) & (-wdl >= rules.l2_review_escalate_wd)
    minutes = (kind == "minutes") & (since_meeting >= rules.minutes_escalate_wd)
    contrib = (kind == "contribution") & (since_meeting >= rules.contribution_escalate_wd)
    disclosure = (kind == "disclosure") & (since_meeting >= rules.disclosure_escalate_wd)
    pre_breach = (kind == "pre_release") & items["overdue"]
    pre_warn = (kind == "pre_release") & ~items["overdue"] & (
        release - pd.Timedelta(days=rules.pre_release_escalate_days) <= today_ts)
    hit = l3 | l2 | minutes | contrib | disclosure | pre_breach | pre_warn
    items = items[hit].copy()
    if items.empty:
        return _empty()
    # When each escalation began, to count its repeat cycle in working days.
    d = items["deadline"]
    start = np.select(
        [items["kind"].eq("review") & l3[hit], items["kind"].eq("review"),
         items["kind"].eq("pre_release") & pre_breach[hit], items["kind"].eq("pre_release")],
        [d + pd.Timedelta(days=rules.l3_review_escalate_days), d,
         d + pd.Timedelta(days=1), d + pd.Timedelta(days=PRE_RELEASE_DAYS - rules.pre_release_escalate_days)],
        d,
    )
    items["stage"] = np.select(
        [items["kind"].eq("pre_release") & pre_breach[hit], items["kind"].eq("pre_release")],
        ["breach", "five_weeks"], "breach",
    )
    items["urgency"] = np.where(items["stage"].eq("breach") & items["kind"].eq("pre_release"),
                                "urgent", "normal")
    since = working_days_between_by_area(
        np.asarray(start, dtype="datetime64[D]"), np.full(len(items), np.datetime64(today, "D")),
        items["area"].to_numpy(), c.records.local_holidays,
    )
    items["cycle"] = np.maximum(since, 0) // max(rules.escalation_repeat_wd, 1)
    if acks is not None and not acks.empty:
        acked = set(zip(acks["item_key"], acks["stage"]))
        items = items[[(k, s) not in acked for k, s in zip(items["item_key"], items["stage"])]]
    items = with_details(items, people, c.records.agencies, c.records.meetings)
    sog = sog_chairs_by_area(people, items["area"].unique())
    items = items.merge(sog, on="area", how="inner").rename(columns={"person_id": "recipient_id"})
    return _finish(items, "escalation", today, "c" + items["cycle"].astype(str))


def plan_below_target(c: Computed, people: pd.DataFrame) -> pd.DataFrame:
    """Once per indicator per quarter per area, the day it falls below target."""
    today = c.as_of
    quarter = quarter_of(today)
    areas = sorted(c.records.individuals["area"].unique())
    sog = sog_chairs_by_area(people, areas)
    rows = []
    for area in areas:
        chairs = sog[sog["area"] == area]
        if chairs.empty:
            continue
        for res in compute_indicators(restrict(c, area), quarter):
            if res.met is not False:
                continue
            for chair in chairs.itertuples(index=False):
                rows.append({
                    "item_key": f"indicator:{res.id}:{area}:{quarter.label}",
                    "stage": "below_target", "recipient_id": chair.person_id,
                    "channel": chair.channel, "address": chair.address, "area": area,
                    "urgency": "urgent" if res.id in ("l3-reviews", "custody-initial-l3") else "normal",
                    "payload": {"indicator": res.id, "title": INDICATORS[res.id][0],
                                "target": res.target, "percent": res.percent,
                                "numerator": res.numerator, "denominator": res.denominator,
                                "margin": res.margin, "pending": res.pending, "area": area,
                                "quarter": quarter.label},
                })
    if not rows:
        return _empty()
    return _finish(pd.DataFrame(rows), "below_target", today, quarter.label)


DELIVERY_PROBLEM_QUIET = dt.timedelta(days=30)


def delivery_problem_key(recipient_id: str, channel: str, error) -> str:
    """One key per recipient, channel and reason: the same failure is told once."""
    error = "" if error is None or (isinstance(error, float) and np.isnan(error)) else str(error)[:300]
    digest = hashlib.sha1(f"{recipient_id}|{channel}|{error}".encode()).hexdigest()[:20]
    return f"delivery:{digest}"


def plan_delivery_problems(problems: pd.DataFrame, people: pd.DataFrame, today: dt.date,
                           told: set[str] | frozenset = frozenset()) -> pd.DataFrame:
    """Tell each area's co-ordinators about messages that could not be delivered.

    `problems`: outbox rows given up on (id, area, rule, recipient_id, channel, last_error).
    One line per recipient, channel and reason; one whose key is in `told` (told within
    DELIVERY_PROBLEM_QUIET) is left out: a bad address fails every day's digest the same
    way, and the co-ordinator needs telling once, not every day. The payload's
    `outbox_ids` are the rows the line covers.
    """
    if problems is None or problems.empty:
        return _empty()
    p = _people_roles(people)
    coords = _channel(p[_has_role(p, "coordinator")])
    rows = []
    problems = problems.assign(last_error=problems["last_error"].fillna("").astype(str).str[:300],
                               area=problems["area"].where(problems["area"].notna(), None))
    grouped = problems.groupby(["recipient_id", "channel", "last_error"], dropna=False, sort=True)
    for (recipient, channel, error), group in grouped:
        key = delivery_problem_key(recipient, channel, error)
        if key in told:
            continue
        areas = set(group["area"])
        for coord in coords.itertuples(index=False):
            if coord.area is not None and coord.area not in areas:
                continue
            rows.append({
                "item_key": key, "stage": "failed",
                "recipient_id": coord.person_id, "channel": coord.channel,
                "address": coord.address, "area": coord.area or group["area"].iloc[0],
                "urgency": "normal",
                "payload": {"kind": "delivery_problem",
                            "rule": ", ".join(sorted(set(group["rule"]))),
                            "recipient": recipient, "channel": channel, "error": error,
                            "outbox_ids": sorted(int(i) for i in group["id"])},
            })
    if not rows:
        return _empty()
    out = _finish(pd.DataFrame(rows), "delivery_problem", today, today.isoformat())
    # They travel in the co-ordinator's digest.
    out["group_key"] = "digest|" + out["recipient_id"] + "|" + today.isoformat()
    return out


def plan_weekly_summary(c_now: Computed, c_week_ago: Computed, people: pd.DataFrame) -> pd.DataFrame:
    """Monday's summary for each SOG chair and each co-ordinator: every indicator quarter
    to date, its margin, and the change since a week ago. The co-ordinator's also lists the
    data-quality rows of SPEC section 3 (they name cases: a private notice, never a
    channel)."""
    today = c_now.as_of
    quarter = quarter_of(today)
    before_q = quarter_of(c_week_ago.as_of)
    areas = sorted(c_now.records.individuals["area"].unique())
    sog = sog_chairs_by_area(people, areas)
    coords = _coordinators(people)
    week = f"{today.isocalendar().year}-W{today.isocalendar().week:02d}"
    rows = []
    for area in areas:
        chairs = sog[sog["area"] == area]
        area_coords = coords[coords["area"].isna() | (coords["area"] == area)]
        if chairs.empty and area_coords.empty:
            continue
        recipients = pd.concat([chairs[["person_id", "channel", "address"]],
                                area_coords[["person_id", "channel", "address"]]],
                               ignore_index=True).drop_duplicates("person_id")
        area_c = restrict(c_now, area)
        now_results = compute_indicators(area_c, quarter)
        # Last week's figure for the same quarter; none when the quarter has just begun.
        prev = {r.id: r.percent for r in compute_indicators(restrict(c_week_ago, area), quarter)} \
            if before_q == quarter else {}
        for res in now_results:
            payload = {"indicator": res.id, "title": INDICATORS[res.id][0], "target": res.target,
                       "percent": res.percent, "numerator": res.numerator,
                       "denominator": res.denominator, "margin": res.margin,
                       "pending": res.pending, "met": res.met, "area": area,
                       "quarter": quarter.label, "previous_percent": prev.get(res.id)}
            for chair in recipients.itertuples(index=False):
                rows.append({"item_key": f"indicator:{res.id}:{area}", "stage": "summary",
                             "recipient_id": chair.person_id, "channel": chair.channel,
                             "address": chair.address, "area": area, "urgency": "normal",
                             "payload": payload})
        # After the indicators, the co-ordinator's data-quality rows (they name cases).
        for dq in data_quality(area_c, quarter):
            payload = {**dq, "area": area, "quarter": quarter.label}
            for who in area_coords.itertuples(index=False):
                # One case can fail a check more than once (two agencies' seniority at one
                # meeting): the detail's digest keeps each its own row.
                tag = hashlib.sha1(str(dq["detail"]).encode()).hexdigest()[:8]
                rows.append({"item_key": f"data_quality:{dq['check']}:{dq['ref']}:{tag}",
                             "stage": "summary", "recipient_id": who.person_id,
                             "channel": who.channel, "address": who.address, "area": area,
                             "urgency": "normal", "payload": payload})
    if not rows:
        return _empty()
    return _finish(pd.DataFrame(rows), "weekly", today, week)


def plan_quarterly_review(today: dt.date, people: pd.DataFrame, areas) -> pd.DataFrame:
    """Once a quarter, remind each area's SOG chair and co-ordinator that the SOG's review
    of the quarter just ended is due."""
    previous = quarter_of(quarter_of(today).start - dt.timedelta(days=1))
    p = _people_roles(people)
    chan = _channel(p)
    chan["role_list"] = p["role_list"].to_numpy()
    rows = []
    for area in sorted(set(areas)):
        for who in chan.itertuples(index=False):
            if not ({"sog_chair", "coordinator"} & set(who.role_list)):
                continue
            if who.area is not None and who.area != area:
                continue
            rows.append({"item_key": f"quarterly:{area}:{previous.label}", "stage": "review_due",
                         "recipient_id": who.person_id, "channel": who.channel,
                         "address": who.address, "area": area, "urgency": "normal",
                         "payload": {"quarter": previous.label, "area": area}})
    if not rows:
        return _empty()
    return _finish(pd.DataFrame(rows), "quarterly", today, previous.label)


def _coordinators(people: pd.DataFrame) -> pd.DataFrame:
    p = _people_roles(people)
    return _channel(p[_has_role(p, "coordinator")])


def plan_audit_reminders(today: dt.date, case_audits: pd.DataFrame, meeting_audits: pd.DataFrame,
                         people: pd.DataFrame, areas) -> pd.DataFrame:
    """Remind co-ordinators, in their digest, of audits not yet done: the year's case audit
    from the start of Q4, and last quarter's meeting audit for each chair."""
    from .periods import reporting_year, reporting_year_of

    year = reporting_year(reporting_year_of(today))
    quarter = quarter_of(today)
    last_q = quarter_of(quarter.start - dt.timedelta(days=1))
    done_years = set(case_audits.loc[case_audits["completed_on"].notna(), "year"]) \
        if not case_audits.empty else set()
    audited = set(zip(meeting_audits["quarter"], meeting_audits["chair_id"])) \
        if not meeting_audits.empty else set()
    p = _people_roles(people)
    chairs = p[_has_role(p, "chair")]
    rows = []
    for coord in _coordinators(people).itertuples(index=False):
        scope = [a for a in areas if coord.area is None or a == coord.area]
        items = []
        if quarter.label.endswith("Q4") and year.label not in done_years:
            items.append(("audit:case:" + year.label, {
                "kind": "audit_reminder", "what": "case audit", "period": year.label,
                "detail": f"no Level 2/3 case audit recorded for {year.label}"}))
        for chair in chairs.itertuples(index=False):
            if chair.area is not None and chair.area not in scope:
                continue
            if (last_q.label, chair.person_id) not in audited:
                items.append((f"audit:meeting:{last_q.label}:{chair.person_id}", {
                    "kind": "audit_reminder", "what": "meeting audit", "period": last_q.label,
                    "detail": f"no audit of {chair.name}'s meetings recorded for {last_q.label}"}))
        for key, payload in items:
            rows.append({"item_key": key, "stage": "due", "recipient_id": coord.person_id,
                         "channel": coord.channel, "address": coord.address,
                         "area": coord.area, "urgency": "normal", "payload": payload})
    if not rows:
        return _empty()
    out = _finish(pd.DataFrame(rows), "audit_reminder", today, today.isoformat())
    out["group_key"] = "digest|" + out["recipient_id"] + "|" + today.isoformat()
    return out


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
        return _empty()
    rows = []
    p = _people_roles(people)
    contacts = p[_has_role(p, "agency_contact")]
    for a in overdue.itertuples(index=False):
        cal = calendar_for(a.area if isinstance(a.area, str) else None, local_holidays or {})
        cycle = max(cal.working_days_between(a.due, today), 0) // max(rules.escalation_repeat_wd, 1)
        payload = {"kind": "scr_action", "action_id": int(a.id), "title": a.title,
                   "owner": a.owner_agency, "description": a.description,
                   "due": pd.Timestamp(a.due).date().isoformat(), "area": a.area}
        key = f"scr:{a.id}"
        addresses = set(agencies.loc[agencies["agency"] == a.owner_agency, "email"].dropna())
        addresses |= set(contacts.loc[contacts["agency"] == a.owner_agency, "email"].dropna())
        for address in sorted(x for x in addresses if x):
            rows.append({"rule": "scr", "item_key": key, "stage": "overdue",
                         "recipient_id": "email:" + address.lower(), "channel": "email",
                         "address": address, "area": a.area, "urgency": "normal",
                         "payload": payload, "cycle": cycle})
        areas = [a.area] if a.area else sorted(set(p["area"].dropna()))
        if (key, "scr_overdue") in acked:
            continue
        for chair in sog_chairs_by_area(people, areas).itertuples(index=False):
            rows.append({"rule": "escalation", "item_key": key, "stage": "scr_overdue",
                         "recipient_id": chair.person_id, "channel": chair.channel,
                         "address": chair.address, "area": a.area, "urgency": "normal",
                         "payload": payload, "cycle": cycle})
    if not rows:
        return _empty()
    df = pd.DataFrame(rows)
    parts = [_finish(df[df["rule"] == rule].drop(columns=["rule"]), rule, today,
                     "c" + df.loc[df["rule"] == rule, "cycle"].astype(str))
             for rule in ("scr", "escalation") if (df["rule"] == rule).any()]
    return pd.concat(parts, ignore_index=True)
