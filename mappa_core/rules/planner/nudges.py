"""The nudge rules (SPEC section 4): each chair's daily digest, the agency chasers and the
escalations of breaches to the SOG chair, over the open items of `due.open_items`.

They work on whole regions at once (frames, not a loop per item) and end in
`notice.finish`, which writes each row's dedupe and group keys.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..calendar import working_days_between_by_area
from ..deadlines import MINUTES_WORKING_DAYS, PRE_RELEASE_DAYS
from ..details import agency_names, with_details
from ..due import open_items
from ..indicators import Computed
from ..vocabulary import Channel, Rule, Stage, Urgency
from .directory import (
    agency_addresses, contacts, email_recipient_id, sog_chairs_by_area, with_roles,
)
from .outbox_rows import empty, finish
from .thresholds import NudgeRules


def _since_meeting(items: pd.DataFrame) -> pd.Series:
    """Working days since the meeting, for paperwork items: their deadline is the
    MINUTES_WORKING_DAYS-th working day after it (deadlines.meeting_items)."""
    return MINUTES_WORKING_DAYS - items["working_days_left"]


def _release(items: pd.DataFrame) -> pd.Series:
    """The release date of a pre-release item (its deadline is release less 28 days)."""
    return items["deadline"] + pd.Timedelta(days=PRE_RELEASE_DAYS)


def plan_chair_digests(
    c: Computed, people: pd.DataFrame, rules: NudgeRules,
    snoozes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each chair's items for today's digest: one row per item; delivery groups them."""
    today = c.as_of
    items = open_items(c, rules.lookback_days)
    if items.empty:
        return empty()
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
    items["stage"] = np.where(items["overdue"], Stage.OVERDUE.value, Stage.DUE.value)
    chan = contacts(with_roles(people))
    items = items.merge(chan.drop(columns=["area"]), left_on="chair_id", right_on="person_id",
                        how="inner")
    if snoozes is not None and not snoozes.empty:
        live = snoozes[pd.to_datetime(snoozes["until"]) > today_ts]
        snoozed = set(zip(live["item_key"], live["person_id"]))
        keep = [(k, p) not in snoozed for k, p in zip(items["item_key"], items["person_id"])]
        items = items[keep]
    items = items.rename(columns={"person_id": "recipient_id"})
    items["urgency"] = Urgency.NORMAL.value
    # A digest line names the agency as chasers and escalations do: by its display name.
    items["agency_name"] = agency_names(items["agency"], c.records.agencies)
    return finish(items, Rule.DIGEST, today, today.isoformat())


def plan_agency_chasers(c: Computed, people: pd.DataFrame, agencies: pd.DataFrame,
                        rules: NudgeRules) -> pd.DataFrame:
    """Email chasers to agency contacts for missing written contributions: once when it
    is missing, once more when its deadline has passed."""
    items = open_items(c, rules.lookback_days)
    items = items[(items["kind"] == "contribution")
                  & (_since_meeting(items) >= rules.contribution_nudge_wd)]
    if items.empty:
        return empty()
    items = items.merge(agency_addresses(people, agencies), on="agency", how="inner")
    items = with_details(items, people, agencies, c.records.meetings)
    items["recipient_id"] = email_recipient_id(items["address"])
    items["channel"] = Channel.EMAIL.value
    items["urgency"] = Urgency.NORMAL.value
    items["stage"] = np.where(items["overdue"], Stage.OVERDUE.value, Stage.MISSING.value)
    return finish(items, Rule.CHASER, c.as_of, "once")


def plan_escalations(
    c: Computed, people: pd.DataFrame, rules: NudgeRules, acks: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Breaches for each area's SOG chair; repeated every `escalation_repeat_wd` working days
    while unresolved, until a SOG chair acknowledges that item and stage."""
    today = c.as_of
    today_ts = pd.Timestamp(today)
    items = open_items(c, rules.lookback_days)
    if items.empty:
        return empty()
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
        return empty()
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
        [Stage.BREACH.value, Stage.FIVE_WEEKS.value], Stage.BREACH.value,
    )
    items["urgency"] = np.where(items["stage"].eq(Stage.BREACH.value) & items["kind"].eq("pre_release"),
                                Urgency.URGENT.value, Urgency.NORMAL.value)
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
    return finish(items, Rule.ESCALATION, today, "c" + items["cycle"].astype(str))
