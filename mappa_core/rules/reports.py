"""Report data for the Strategic Oversight Group: the quarterly pack, ViSOR-style statistics,
the annual-report tables and the comparison of areas. Pure: records in, tables out."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .calendar import calendar_for
from .indicators import (
    INDICATORS, Computed, IndicatorResult, compute_deadlines, compute_indicators, contributors,
    data_quality, data_quality_counts, exceptions_frame, group_exceptions, restrict,
)
from .periods import Period, previous_quarters, quarter_of, reporting_year, reporting_year_of
from .records import Records, window_start
from .schema import reason_label

TREND_QUARTERS = 8  # the pack's trend: the quarter and the seven before it (two years)
# Fewer items than this in either period and a change in points says nothing about a trend
# (1 of 2 to 1 of 1 is "+50 points"): the pack says "too few to judge a change" instead.
FEW_TO_JUDGE = 5
MARKED_CHANGE = 0.2  # a rise or fall of a fifth in managed cases is worth the SOG's questions
CHANGE_QUESTIONS = {
    "rise": [
        "Is the rise from more referrals, fewer cases leaving MAPPA, or cases moving up a level?",
        "Are Level 2 and 3 meetings and their chairs resourced for the extra cases?",
        "Are referrals meeting the criteria for the level they are managed at?",
    ],
    "fall": [
        "Is the fall from cases leaving MAPPA, moving down a level, or fewer referrals?",
        "Were cases moved down a level with a clear, recorded rationale?",
        "Is anything delaying referrals (for example late information from an agency)?",
    ],
}


# What the pack calls each indicator where a table cell has no room for its title (declared
# with the indicator).
SHORT_NAMES = {ind_id: ind.short for ind_id, ind in INDICATORS.items()}
REPEATED_CASES_SHOWN = 10  # the pack names the cases with most exceptions; the appendix has all
_QUARTER_LABEL = re.compile(r"\d{2}(\d{2})-(\d{2})-Q([1-4])")


def axis_label(label: str) -> str:
    """A quarter as a chart axis says it: `2025-26-Q3` is `Q3 25-26` (quarter and year)."""
    m = _QUARTER_LABEL.fullmatch(label)
    return f"Q{m[3]} {m[1]}-{m[2]}" if m else label


def as_read(df: pd.DataFrame) -> pd.DataFrame:
    """The table as a person reads it: every cell a Python str, int, float or None.

    Pandas stores a missing value as NaN (or NaT), which is truthy and prints as `nan`, and a
    column of whole numbers with one gap as floats (`4251.0`). Object columns keep what the
    rows hold, so templates see None and CSV files get a blank cell."""
    return df.astype(object).where(df.notna(), None)


def _table(rows: list[dict], columns: list[str] | None = None) -> pd.DataFrame:
    """A table from rows of Python values, kept as they are (see as_read)."""
    return pd.DataFrame(rows, columns=columns, dtype=object)


def _whole(value: float) -> int | float:
    """12.0 days is 12 days; a median of 12.5 stays 12.5."""
    return int(value) if float(value).is_integer() else float(value)


@dataclass
class QuarterlyPack:
    area: str | None
    period: Period
    as_of: dt.date
    indicators: list[dict]
    trend: list[dict]            # per quarter: {"label", indicator id -> percent}
    exceptions: pd.DataFrame
    commonality: dict
    caseload: list[dict]         # per quarter: managed cases at Level 2 and 3
    changes: list[dict]          # marked changes with the guidance's questions
    data_quality: list[dict]     # {"check", "count"}: the SPEC checks by id, then others
    data_quality_cases: list[dict] = field(default_factory=list)  # SPEC rows: check, ref, detail
    # The period before (the quarter before a quarter, the year before a year; None otherwise):
    # {"label", "axis_label", "exceptions", "indicators": {id: {"percent", "numerator",
    # "denominator", "met", "exceptions", "points", "few", "now"}}}; points: the change in
    # points; few: either period counts fewer than FEW_TO_JUDGE items (no trend to judge).
    previous: dict | None = None
    patterns: dict = field(default_factory=dict)  # exception_patterns(): commonalities first
    chair_names: dict = field(default_factory=dict)  # person_id -> name, for the chairs named
    # A period not yet ended on as_of (None once it has): see period_progress().
    in_progress: dict | None = None
    # The caseload's last quarter if it is in progress: its cases managed so far beside the
    # quarter before's up to the same day, the like-for-like pair that `changes` compares.
    caseload_so_far: dict | None = None
    # The pack's closing list for the SOG, from the data only: for_the_sog().
    for_sog: dict = field(default_factory=dict)


def period_progress(period: Period, as_of: dt.date, local_holidays: dict | None = None,
                    area: str | None = None) -> dict | None:
    """A period that has not ended on `as_of`: how far through it the records run, in the
    area's working days (`done` of `total`, as_of counted). None for a finished period."""
    if as_of >= period.end:
        return None
    cal = calendar_for(area, local_holidays or {})
    before_start = period.start - dt.timedelta(days=1)
    done = max(cal.working_days_between(before_start, as_of), 0)
    return {"to": as_of, "done": done, "total": cal.working_days_between(before_start, period.end),
            "kind": ("quarter" if period == quarter_of(period.start)
                     else "year" if period == reporting_year(reporting_year_of(period.start))
                     else "period")}


def _managed_cases(c: Computed, quarters: list[Period], to: list[dt.date] | None = None) -> list[dict]:
    """Distinct cases with a Level 2 / Level 3 meeting held in each quarter (up to the matching
    day of `to`, if given)."""
    m = c.records.meetings
    out = []
    for i, q in enumerate(quarters):
        end = min(q.end, to[i]) if to else q.end
        held = m[(m["date"] >= pd.Timestamp(q.start)) & (m["date"] <= pd.Timestamp(end))]
        out.append({"quarter": q.label,
                    "level2": int(held.loc[held["level"] == 2, "ref"].nunique()),
                    "level3": int(held.loc[held["level"] == 3, "ref"].nunique())})
    return out


def _caseload_so_far(c: Computed, quarters: list[Period], as_of: dt.date) -> dict | None:
    """The last quarter in progress on `as_of`: its cases managed so far, and the quarter
    before's up to the same day of the quarter. Cases managed grow through a quarter (a Level 2
    case meets every 12 weeks), so only these two compare like with like."""
    if len(quarters) < 2 or not quarters[-1].start <= as_of < quarters[-1].end:
        return None
    before, now = quarters[-2], quarters[-1]
    same_day = min(before.start + (as_of - now.start), before.end)
    counts = _managed_cases(c, [before, now], [same_day, as_of])
    return {"before": {**counts[0], "to": same_day}, "now": {**counts[1], "to": as_of}}


def _changes(caseload: list[dict]) -> list[dict]:
    """Marked rises and falls between the last two rows: whole quarters, or (for a quarter
    in progress) both quarters up to the same day."""
    if len(caseload) < 2:
        return []
    prev, now = caseload[-2], caseload[-1]
    out = []
    for level in ("level2", "level3"):
        a, b = prev[level], now[level]
        if a == 0 and b == 0:
            continue
        change = (b - a) / a if a else 1.0
        if abs(change) >= MARKED_CHANGE and abs(b - a) >= 2:
            kind = "rise" if b > a else "fall"
            out.append({"what": f"{'Level 2' if level == 'level2' else 'Level 3'} cases managed",
                        "before": a, "after": b, "change_percent": round(change * 100, 1),
                        "kind": kind, "questions": CHANGE_QUESTIONS[kind]})
    return out


def comparison_period(period: Period) -> Period | None:
    """What a pack compares with: the quarter before a quarter, the reporting year before a
    year; a date range has no natural predecessor, so none."""
    if period == quarter_of(period.start):
        return quarter_of(period.start - dt.timedelta(days=1))
    year = reporting_year(reporting_year_of(period.start))
    if period == year:
        return reporting_year(year.start.year - 1)
    return None


def _previous(now: list[dict], before: Period, results_before, unfinished: bool = False) -> dict:
    """Each indicator then and now: the change in points, and whether it crossed its target.

    In an `unfinished` period an indicator below target is only "not met so far" while its
    margin says the pending items can still bring it back ("no longer met" once it cannot),
    and one above target is "met so far"."""
    out = {}
    for ind, b in zip(now, results_before):
        points = (round(ind["percent"] - b.percent, 1)
                  if ind["percent"] is not None and b.percent is not None else None)
        if b.met is True and ind["met"] is False:
            now_is = ("not met so far" if unfinished and ind["margin"] is not None and ind["margin"] >= 0
                      else "no longer met")
        elif b.met is False and ind["met"] is True:
            now_is = "met so far" if unfinished else "now met"
        else:
            now_is = None
        few = points is not None and min(ind["denominator"], b.denominator) < FEW_TO_JUDGE
        out[b.id] = {"percent": b.percent, "numerator": b.numerator, "denominator": b.denominator,
                     "met": b.met, "exceptions": len(b.exceptions), "points": points,
                     "few": few, "now": now_is}
    return {"label": before.label, "axis_label": axis_label(before.label),
            "exceptions": sum(len(r.exceptions) for r in results_before), "indicators": out}


def _top(counts: pd.Series, k: int = 2) -> list[dict]:
    """The k largest counts of a value_counts() as [{"name", "count"}]."""
    return [{"name": str(key), "count": int(n)} for key, n in counts.head(k).items()]


def exception_patterns(exceptions: pd.DataFrame, chair_names: dict[str, str]) -> dict:
    """What the exceptions have in common, largest first, so the SOG sees the pattern before
    the rows: by reason (with the indicators it hits), by agency and by chair (with their main
    reasons), and the cases that are exceptions more than once."""
    total = len(exceptions)
    if not total:
        return {"total": 0, "cases": 0, "unrecorded": 0, "by_reason": [], "by_agency": [],
                "by_chair": [], "repeated": {"cases": 0, "exceptions": 0, "by_count": [], "top": []}}
    df = exceptions.assign(
        reason_label=[reason_label(r) for r in exceptions["reason"]],
        short=[SHORT_NAMES.get(i, i) for i in exceptions["indicator"]],
    )

    def share(n: int) -> int:
        return int(round(100 * n / total))

    def grouped(col: str) -> list[tuple[str, pd.DataFrame]]:
        groups = [(str(k), sub) for k, sub in df.groupby(col, dropna=True, sort=False)]
        return sorted(groups, key=lambda g: (-len(g[1]), g[0]))

    by_reason = [{"reason": sub["reason"].iloc[0], "label": label, "count": len(sub),
                  "share": share(len(sub)), "indicators": _top(sub["short"].value_counts())}
                 for label, sub in grouped("reason_label")]
    by_agency = [{"agency": agency, "count": len(sub), "share": share(len(sub)),
                  "reasons": _top(sub["reason_label"].value_counts())}
                 for agency, sub in grouped("agency")]
    by_chair = [{"chair_id": chair, "name": chair_names.get(chair) or chair, "count": len(sub),
                 "share": share(len(sub)), "cases": int(sub["ref"].nunique()),
                 "reasons": _top(sub["reason_label"].value_counts())}
                for chair, sub in grouped("chair_id")]
    no_chair = int(df["chair_id"].isna().sum())
    if no_chair:
        by_chair.append({"chair_id": None, "name": "No chair recorded", "count": no_chair,
                         "share": share(no_chair), "cases": int(df.loc[df["chair_id"].isna(), "ref"].nunique()),
                         "reasons": _top(df.loc[df["chair_id"].isna(), "reason_label"].value_counts())})
    per_case = df["ref"].value_counts()
    repeats = per_case[per_case > 1]
    top = []
    for ref, n in sorted(repeats.items(), key=lambda kv: (-kv[1], kv[0]))[:REPEATED_CASES_SHOWN]:
        sub = df[df["ref"] == ref]
        top.append({"ref": ref, "count": int(n), "indicators": _top(sub["short"].value_counts(), k=n),
                    "reasons": _top(sub["reason_label"].value_counts(), k=n)})
    by_count = [{"exceptions": int(k), "cases": int(v)}
                for k, v in sorted(repeats.value_counts().items(), reverse=True)]
    return {
        "total": total, "cases": int(per_case.size), "unrecorded": int(df["reason"].isna().sum()),
        "by_reason": by_reason, "by_agency": by_agency, "by_chair": by_chair,
        "repeated": {"cases": int(repeats.size), "exceptions": int(repeats.sum()),
                     "by_count": by_count, "top": top},
    }


def for_the_sog(results: list[IndicatorResult], patterns: dict) -> dict:
    """The short list the pack ends with, built only from the data: each indicator not met
    with its largest contributor (`contributors`: the agency furthest below target or with
    most missing, or the chair with most exceptions), how many exceptions have no reason,
    and the cases that were an exception more than once."""
    not_met = []
    for r in results:
        if r.met is not False:
            continue
        top = contributors(r)
        not_met.append({"id": r.id, "title": r.title, "percent": r.percent, "target": r.target,
                        "numerator": r.numerator, "denominator": r.denominator,
                        "exceptions": len(r.exceptions), "few": r.denominator < FEW_TO_JUDGE,
                        "top": top[0] if top else None, "contributors": len(top),
                        # one each over several: no one contributor is larger
                        "spread": len(top) > 1 and top[0]["count"] == 1
                        and "percent" not in top[0]})
    total, unrecorded = patterns.get("total", 0), patterns.get("unrecorded", 0)
    return {"not_met": not_met, "exceptions": total, "unrecorded": unrecorded,
            "unrecorded_share": int(round(100 * unrecorded / total)) if total else 0,
            "repeated": patterns.get("repeated") or {"cases": 0, "exceptions": 0, "top": []}}


def _data_quality(c: Computed, period: Period, exceptions: pd.DataFrame,
                  cases: list[dict]) -> list[dict]:
    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    m = c.meetings[(c.meetings["date"] >= start) & (c.meetings["date"] <= end)]
    inv = c.invitations[(c.invitations["date"] >= start) & (c.invitations["date"] <= end)]
    ind = c.records.individuals
    managed = ind[(ind["level"] >= 2) & ind["mappa_end"].isna()]
    raw_inv = c.records.invitations.set_index(["meeting_id", "agency"])
    written = raw_inv["written_contribution"].reindex(pd.MultiIndex.from_frame(inv[["meeting_id", "agency"]]))
    disclosure = c.records.meetings.set_index("meeting_id")["disclosure_considered"].reindex(m["meeting_id"])
    # The checks of SPEC section 3 first, by id (their cases are listed in the pack).
    checks = [
        *data_quality_counts(cases).items(),
        ("Absent with no record of a written contribution",
         int((inv["absent"].to_numpy() & written.isna().to_numpy()).sum())),
        ("Meetings with the disclosure decision left blank", int(disclosure.isna().sum())),
        ("Meetings with no invitations recorded",
         int((~m["meeting_id"].isin(c.records.invitations["meeting_id"])).sum())),
        ("Exceptions with no reason recorded",
         int(exceptions["reason"].isna().sum()) if not exceptions.empty else 0),
        ("Level 2/3 cases with no chair recorded", int(managed["chair_id"].isna().sum())),
    ]
    return [{"check": name, "count": n} for name, n in checks]


def pack_since(period: Period, as_of: dt.date) -> dt.date:
    """The `since` for load_records that the pack of `period` needs: today's open items and
    the trend's first quarter."""
    return window_start(as_of, previous_quarters(period, TREND_QUARTERS)[0].start)


def quarterly_pack(records: Records, period: Period, as_of: dt.date, area: str | None = None,
                   trend_quarters: int = TREND_QUARTERS) -> QuarterlyPack:
    """Everything the SOG's quarterly review needs, for one area or all.

    `records` must hold at least the last `trend_quarters` quarters (load_records with
    since = `pack_since(period, as_of)`).
    """
    c = compute_deadlines(records, as_of)
    if area is not None:
        c = restrict(c, area)
    results = compute_indicators(c, period)
    quarters = previous_quarters(period, trend_quarters)
    trend, by_label = [], {}
    for q in quarters:
        row = {"label": q.label}
        by_label[q.label] = compute_indicators(c, q)
        for r in by_label[q.label]:
            row[r.id] = r.percent
        trend.append(row)
    indicators = [r.to_dict() for r in results]
    before = comparison_period(period)
    previous = None
    if before is not None:
        previous = _previous(indicators, before, by_label.get(before.label) or compute_indicators(c, before),
                             unfinished=as_of < period.end)
    exceptions = as_read(exceptions_frame(results))
    people = c.records.people
    chair_names = (dict(zip(people["person_id"], people["name"]))
                   if {"person_id", "name"} <= set(people.columns) else {})
    cases = data_quality(c, period)
    caseload = _managed_cases(c, quarters)
    so_far = _caseload_so_far(c, quarters, as_of)
    # Before its first day a quarter has no cases yet: nothing to compare.
    changes = ([] if as_of < quarters[-1].start
               else _changes([so_far["before"], so_far["now"]] if so_far else caseload))
    patterns = exception_patterns(exceptions, chair_names)
    return QuarterlyPack(
        area=area, period=period, as_of=as_of,
        indicators=indicators, trend=trend, exceptions=exceptions,
        commonality=group_exceptions(results), caseload=caseload, changes=changes,
        data_quality=_data_quality(c, period, exceptions, cases),
        data_quality_cases=cases, previous=previous,
        patterns=patterns, for_sog=for_the_sog(results, patterns),
        chair_names={k: v for k, v in chair_names.items()
                     if k in set(exceptions["chair_id"].dropna()) and isinstance(v, str)},
        in_progress=period_progress(period, as_of, records.local_holidays, area),
        caseload_so_far=so_far,
    )


def compare_areas(records: Records, period: Period, as_of: dt.date) -> pd.DataFrame:
    """Every area side by side on each indicator (its percent, numerator/denominator and
    whether its target is met), with caseload sizes beside them."""
    c = compute_deadlines(records, as_of)
    rows = []
    for area in sorted(records.individuals["area"].unique()):
        ca = restrict(c, area)
        ind = ca.records.individuals
        row = {"area": area,
               "level2_cases": int(((ind["level"] == 2) & ind["mappa_end"].isna()).sum()),
               "level3_cases": int(((ind["level"] == 3) & ind["mappa_end"].isna()).sum())}
        for r in compute_indicators(ca, period):
            row[f"{r.id}_percent"] = r.percent
            row[f"{r.id}_n"] = f"{r.numerator}/{r.denominator}"
            row[f"{r.id}_met"] = r.met
        rows.append(row)
    return _table(rows)


# --------------------------------------------------------------------------- statistics


AGE_BANDS = [(0, 17, "under 18"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"),
             (45, 54, "45-54"), (55, 64, "55-64"), (65, 200, "65 and over")]


def _in_range(dates: pd.Series, start: dt.date, end: dt.date) -> pd.Series:
    return (dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))


def _open_on(ind: pd.DataFrame, day: dt.date) -> pd.Series:
    ts = pd.Timestamp(day)
    return (ind["mappa_start"] <= ts) & (ind["mappa_end"].isna() | (ind["mappa_end"] > ts))


def age_band(birth_year: pd.Series, on: dt.date) -> pd.Series:
    age = on.year - pd.to_numeric(birth_year, errors="coerce")
    out = pd.Series("not known", index=birth_year.index, dtype=object)
    for lo, hi, label in AGE_BANDS:
        out[(age >= lo) & (age <= hi)] = label
    return out


def _count_table(df: pd.DataFrame, by: list[str], name: str) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=[*by, name])
    return df.groupby(by, dropna=False).size().rename(name).reset_index()


def statistics(records: Records, start: dt.date, end: dt.date,
               by: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
    """The ViSOR-style figures of guidance chapter 19.14 for [start, end] (counts on `end`).

    `records` must be a full load with events (load_records(..., with_events=True)).
    """
    ind = records.individuals.copy()
    ind["age_band"] = age_band(ind["birth_year"], end)
    for col in ("gender", "ethnicity", "rosh"):
        ind[col] = ind[col].fillna("not known")
    extra = [b for b in by if b in ("gender", "ethnicity", "age_band", "rosh")]
    open_now = ind[_open_on(ind, end)]
    community = open_now[open_now["status"] == "community"]
    tables: dict[str, pd.DataFrame] = {}
    tables["individuals_by_category_level"] = _count_table(open_now, ["category", "level", *extra], "individuals")
    tables["community_by_category_level"] = _count_table(community, ["category", "level", *extra], "in_community")
    tables["rso_in_community"] = pd.DataFrame(
        [{"registered_sex_offenders_in_community": int((community["category"] == 1).sum())}])
    tables["category3_level2_3_in_community"] = _count_table(
        community[community["category"] == 3], ["level"], "category3_in_community")
    new = ind[_in_range(ind["mappa_start"], start, end)]
    archived = ind[ind["mappa_end"].notna() & _in_range(ind["mappa_end"], start, end)]
    tables["new_cases"] = _count_table(new, ["category", "level", *extra], "new")
    tables["archived_cases"] = _count_table(archived, ["category", "level", *extra], "archived")

    ev = records.events.copy()
    if ev.empty:
        ev = pd.DataFrame(columns=["ref", "date", "event", "order_type"])
    ev = ev.merge(ind[["ref", "category", "level"]], on="ref", how="left")
    in_period = ev[_in_range(ev["date"], start, end)]
    tables["further_offences"] = _count_table(
        in_period[in_period["event"].isin(["further_sexual_offence", "further_violent_offence"])],
        ["event", "category", "level"], "count")
    orders = in_period[in_period["event"].isin(
        ["order_applied", "order_granted", "order_refused", "order_on_conviction"])]
    tables["preventative_orders"] = _count_table(
        orders.assign(order_type=orders["order_type"].fillna("not recorded")),
        ["event", "order_type"], "count")
    tables["order_breaches"] = _count_table(
        in_period[in_period["event"] == "order_breach"], ["category", "level"], "count")
    tables["licence_recalls"] = _count_table(
        in_period[in_period["event"] == "licence_recall"], ["category", "level"], "count")
    tables["wanted_missing"] = _wanted_missing(ev, start, end)
    return tables


def _wanted_missing(ev: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Each wanted or missing episode starting in the period: how long, and whether located."""
    ev = ev.sort_values(["ref", "date"])
    episodes = ev[ev["event"].isin(["wanted", "missing"]) & _in_range(ev["date"], start, end)]
    located = ev[ev["event"] == "located"][["ref", "date"]].rename(columns={"date": "located"})
    if episodes.empty:
        return _table([{"event": e, "episodes": 0, "located": 0, "still_outstanding": 0,
                        "median_days": None} for e in ("wanted", "missing")])
    merged = pd.merge_asof(
        episodes.sort_values("date"), located.sort_values("located"),
        left_on="date", right_on="located", by="ref", direction="forward",
    )
    merged.loc[merged["located"] > pd.Timestamp(end), "located"] = pd.NaT
    merged["days"] = (merged["located"].fillna(pd.Timestamp(end)) - merged["date"]).dt.days
    rows = []
    for event in ("wanted", "missing"):
        sub = merged[merged["event"] == event]
        rows.append({"event": event, "episodes": int(len(sub)),
                     "located": int(sub["located"].notna().sum()),
                     "still_outstanding": int(sub["located"].isna().sum()),
                     "median_days": _whole(np.median(sub["days"])) if len(sub) else None})
    return _table(rows)


def annual_end(year: Period, as_of: dt.date | None) -> dt.date:
    """The day the annual tables count to: 31 March, or `as_of` in a year not yet ended (the
    figures "on 31 March" are then those on `as_of`, the year's counts those so far)."""
    return year.end if as_of is None else min(year.end, as_of)


def annual_tables(records: Records, year: Period, population: dict[str, int],
                  as_of: dt.date | None = None) -> dict[str, pd.DataFrame]:
    """Annex 3 Table 1 and Table 2 of the annual report, per area and in total, to
    annual_end(year, as_of). The columns keep their `_31_march` names either way."""
    ind = records.individuals
    ev = records.events if not records.events.empty else pd.DataFrame(
        columns=["ref", "date", "event", "order_type"])
    ev = ev.merge(ind[["ref", "area"]], on="ref", how="left")
    end = annual_end(year, as_of)
    at_liberty = ind[_open_on(ind, end) & (ind["category"] == 1) & (ind["status"] == "community")]
    in_year = ev[_in_range(ev["date"], year.start, end)]
    t1, t2 = [], []
    for area in sorted(ind["area"].unique()):
        n = int((at_liberty["area"] == area).sum())
        pop = population.get(area)
        ev_a = in_year[in_year["area"] == area]
        open_events = ev[(ev["area"] == area) & (ev["date"] <= pd.Timestamp(end))]
        wm = _wanted_missing(open_events.drop(columns=["area"]), dt.date(1900, 1, 1), end)
        t1.append({
            "area": area, "rso_at_liberty_31_march": n,
            "per_100000_population": round(n * 100000 / pop, 1) if pop else None,
            "notification_breaches": int((ev_a["event"] == "notification_breach").sum()),
            "wanted_31_march": int(wm.loc[wm["event"] == "wanted", "still_outstanding"].sum()),
            "missing_31_march": int(wm.loc[wm["event"] == "missing", "still_outstanding"].sum()),
        })
        granted_all = ev[(ev["area"] == area) & (ev["event"].isin(["order_granted", "order_on_conviction"]))
                         & (ev["date"] <= pd.Timestamp(end))]
        t2.append({
            "area": area,
            "orders_in_force_31_march": int(len(granted_all)),
            "orders_imposed_in_year": int(ev_a["event"].isin(["order_granted", "order_on_conviction"]).sum()),
            "breach_charges_in_year": int((ev_a["event"] == "order_breach").sum()),
        })
    if t1:
        # The total row is summed in Python: whole numbers stay whole, a missing rate stays None.
        areas = [r["area"] for r in t1]
        total_pop = sum(population.get(a, 0) for a in areas) or None
        tot1 = {k: sum(r[k] for r in t1) for k in t1[0] if k not in ("area", "per_100000_population")}
        tot1["per_100000_population"] = (round(tot1["rso_at_liberty_31_march"] * 100000 / total_pop, 1)
                                         if total_pop and all(a in population for a in areas) else None)
        t1.append({"area": "Total", **{k: tot1[k] for k in t1[0] if k != "area"}})
        t2.append({"area": "Total", **{k: sum(r[k] for r in t2) for k in t2[0] if k != "area"}})
    return {"table1": _table(t1), "table2": _table(t2)}

