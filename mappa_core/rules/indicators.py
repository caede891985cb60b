"""The ten National Performance Indicators of SPEC section 3, for any period and area.

Each result carries id, title, target, numerator, denominator, percent, met, pending,
exceptions (and breakdown for attendance), plus the live view's margin and counts.
An item is in the denominator once it is done or its deadline is before `as_of`; on
its deadline day and before, and not done, it is pending (nothing is late until the
next day).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from . import deadlines
from .periods import Period
from .records import DUE_SOON_DAYS, LOOKBACK_DAYS, Records

INDICATORS: dict[str, tuple[str, int]] = {
    "l3-reviews": ("Level 3 cases reviewed at least every 6 weeks", 95),
    "l2-reviews": ("Level 2 cases reviewed at least every 12 weeks", 95),
    "dtc-attendance": ("Attendance by each Duty to Co-operate agency, where invited", 90),
    "police-attendance": ("Attendance by Police Scotland", 90),
    "cbsw-attendance": ("Attendance by Community Based Social Work", 90),
    "ra-written": ("Written contributions from Responsible Authorities that did not attend", 100),
    "dtc-written": ("Written contributions from Duty to Co-operate agencies that did not attend", 100),
    "custody-initial-l3": (
        "Initial Level 3 meeting held in the community at least 4 weeks before release", 100,
    ),
    "minutes-10wd": ("Minutes issued and RMP updated and ratified within 10 working days", 90),
    "disclosure": ("Disclosure considered and decision recorded", 100),
}

TOPICS: dict[str, tuple[str, ...]] = {
    "all": tuple(INDICATORS),
    "level2": ("l2-reviews",),
    "level3": ("l3-reviews",),
    "attendance": ("dtc-attendance", "police-attendance", "cbsw-attendance"),
    "contributions": ("ra-written", "dtc-written"),
    "custody": ("custody-initial-l3",),
    "minutes": ("minutes-10wd",),
    "disclosure": ("disclosure",),
}

EXCEPTION_FIELDS = ("ref", "meeting_id", "agency", "due", "done", "reason", "chair_id")


def percent(numerator: int, denominator: int) -> float | None:
    if denominator == 0:
        return None
    value = Decimal(numerator * 100) / Decimal(denominator)
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def target_met(numerator: int, denominator: int, target: int) -> bool | None:
    if denominator == 0:
        return None
    return numerator * 100 >= target * denominator


def margin(numerator: int, denominator: int, pending: int, target: int) -> int | None:
    """How many more failures the period can absorb and still meet the target, if every
    pending item were counted; negative when the target can no longer be met."""
    total = denominator + pending
    if total == 0:
        return None
    allowed = ((100 - target) * total) // 100
    return allowed - (denominator - numerator)


@dataclass
class IndicatorResult:
    id: str
    numerator: int
    denominator: int
    pending: int
    exceptions: list[dict]
    breakdown: list[dict] | None = None
    counts: dict = field(default_factory=dict)
    margin_override: int | None = None
    has_margin_override: bool = False

    @property
    def title(self) -> str:
        return INDICATORS[self.id][0]

    @property
    def target(self) -> int:
        return INDICATORS[self.id][1]

    @property
    def percent(self) -> float | None:
        return percent(self.numerator, self.denominator)

    @property
    def met(self) -> bool | None:
        if self.breakdown is not None and self.id == "dtc-attendance":
            if self.denominator == 0:
                return None
            return all(b["met"] is not False for b in self.breakdown)
        return target_met(self.numerator, self.denominator, self.target)

    @property
    def margin(self) -> int | None:
        if self.has_margin_override:
            return self.margin_override
        return margin(self.numerator, self.denominator, self.pending, self.target)

    def to_dict(self) -> dict:
        out = {
            "id": self.id,
            "title": self.title,
            "target": self.target,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "percent": self.percent,
            "met": self.met,
            "pending": self.pending,
            "exceptions": self.exceptions,
        }
        if self.breakdown is not None:
            out["breakdown"] = self.breakdown
        out["margin"] = self.margin
        out["counts"] = self.counts
        return out


def _iso(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date().isoformat()


def _clean(value):
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value


def _exceptions(df: pd.DataFrame, due_col: str, done_col: str | None) -> list[dict]:
    """Exception rows in the SPEC shape, by case then due date (repeats stand together)."""
    if df.empty:
        return []
    keys = ["ref", due_col] + [c for c in ("meeting_id", "agency") if c in df]
    df = df.sort_values(keys, kind="stable")
    n = len(df)
    none = [None] * n
    cols = {
        "ref": df["ref"].tolist(),
        "meeting_id": df["meeting_id"].tolist() if "meeting_id" in df else none,
        "agency": df["agency"].tolist() if "agency" in df else none,
        "due": [_iso(v) for v in df[due_col]],
        "done": [_iso(v) for v in df[done_col]] if done_col else none,
        "reason": df["reason"].tolist() if "reason" in df else none,
        "chair_id": df["chair_id"].tolist() if "chair_id" in df else none,
    }
    return [
        {k: _clean(cols[k][i]) for k in EXCEPTION_FIELDS} for i in range(n)
    ]


def _count(
    ind_id: str, items: pd.DataFrame, ok: pd.Series, counted: pd.Series,
    due_col: str, done_col: str | None,
) -> IndicatorResult:
    """Numerator, denominator, pending and exceptions over items of one indicator."""
    counted = counted.to_numpy(bool)
    ok = ok.to_numpy(bool)
    failed = items[counted & ~ok]
    return IndicatorResult(
        ind_id,
        numerator=int((counted & ok).sum()),
        denominator=int(counted.sum()),
        pending=int((~counted).sum()),
        exceptions=_exceptions(failed, due_col, done_col),
    )


def _passed(deadline: pd.Series, c: Computed) -> pd.Series:
    """The deadline has passed: it is before as_of (on its own day an item is pending)."""
    return deadline < pd.Timestamp(c.as_of)


def _in_period(values: pd.Series, period: Period) -> pd.Series:
    return (values >= pd.Timestamp(period.start)) & (values <= pd.Timestamp(period.end))


class Computed:
    """The deadline frames for one `as_of`, shared by the indicators, counts and `due`.

    Each frame (`reviews`, `meetings`, `invitations`, `releases`) is worked out when first
    read and then kept, so an answer pays only for the rules it reads: `status level2`
    never builds the paperwork, attendance or pre-release frames. Safe to share between
    threads (the Slack handlers do).
    """

    def __init__(self, records: Records, as_of: dt.date,
                 parent: Computed | None = None, area: str | None = None,
                 lookback_days: int = LOOKBACK_DAYS):
        self.records = records
        self.as_of = as_of
        # How far back open paperwork is chased (MAPPA_LOOKBACK_DAYS): the open items and
        # the live counts read it here, so the digests, `/mappa due` and the counts agree.
        self.lookback_days = parent.lookback_days if parent is not None else lookback_days
        self._parent, self._area = parent, area
        self._frames: dict[str, pd.DataFrame] = {}
        self._lock = threading.RLock()

    def _frame(self, name: str) -> pd.DataFrame:
        with self._lock:
            if name not in self._frames:
                if self._parent is not None:
                    whole = self._parent._frame(name)
                    self._frames[name] = whole[whole["area"] == self._area]
                else:
                    self._frames[name] = _DEADLINE_FRAMES[name](self)
            return self._frames[name]

    reviews = property(lambda self: self._frame("reviews"))
    meetings = property(lambda self: self._frame("meetings"))
    invitations = property(lambda self: self._frame("invitations"))
    releases = property(lambda self: self._frame("releases"))


_DEADLINE_FRAMES = {
    "reviews": lambda c: deadlines.review_items(c.records, c.as_of),
    "meetings": lambda c: deadlines.meeting_items(c.records, c.as_of),
    "invitations": lambda c: deadlines.invitation_items(c.records, c.meetings),
    "releases": lambda c: deadlines.pre_release_items(c.records, c.as_of),
}


def restrict(c: Computed, area: str) -> Computed:
    """The same deadlines for one area only (for per-area answers from a national load)."""
    rec = c.records
    ind = rec.individuals[rec.individuals["area"] == area]
    refs = set(ind["ref"])
    custody = rec.custody[rec.custody["ref"].isin(refs)] if len(rec.custody) else rec.custody
    records = Records(
        ind, rec.meetings[rec.meetings["ref"].isin(refs)],
        rec.invitations, rec.agencies, rec.people, rec.events, rec.local_holidays, area,
        custody,
    )
    return Computed(records, c.as_of, parent=c, area=area)


def compute_deadlines(records: Records, as_of: dt.date, lookback_days: int = LOOKBACK_DAYS) -> Computed:
    return Computed(deadlines.as_stood(records, as_of), as_of, lookback_days=lookback_days)


def _reviews(c: Computed, period: Period, level: int) -> IndicatorResult:
    r = c.reviews
    items = r[(r["level"] == level) & _in_period(r["due"], period)]
    res = _count(
        f"l{level}-reviews", items, items["status"] == "met", items["status"] != "pending",
        "due", "done",
    )
    return res


def _attendance(c: Computed, period: Period, ind_id: str) -> IndicatorResult:
    inv = c.invitations
    inv = inv[_in_period(inv["date"], period)]
    if ind_id == "police-attendance":
        items, ok = inv[inv["role"] == "police"], None
    elif ind_id == "cbsw-attendance":
        items, ok = inv[inv["role"] == "social_work"], None
    else:
        items = inv[~inv["is_ra"]]
        ok = items["attended_ok"] | (items["absent"] & items["written"])
    if ok is None:
        ok = items["attended_ok"]
    res = _count(ind_id, items, ok, pd.Series(True, index=items.index), "date", None)
    breakdown = []
    margins = []
    grouped = pd.DataFrame({"agency": items["agency"], "ok": ok.astype(int)}).groupby("agency")["ok"]
    for agency, (num, den) in sorted(
        zip(grouped.sum().index, zip(grouped.sum().tolist(), grouped.count().tolist()))
    ):
        target = INDICATORS[ind_id][1]
        breakdown.append(
            {
                "agency": agency,
                "numerator": int(num),
                "denominator": int(den),
                "percent": percent(num, den),
                "met": target_met(num, den, target),
            }
        )
        margins.append(margin(num, den, 0, target))
    res.breakdown = breakdown
    if ind_id == "dtc-attendance":
        res.has_margin_override = True
        res.margin_override = min(margins) if margins else None
    return res


def _written(c: Computed, period: Period, ra: bool) -> IndicatorResult:
    inv = c.invitations
    items = inv[_in_period(inv["date"], period) & inv["absent"] & (inv["is_ra"] == ra)]
    counted = items["written"] | _passed(items["deadline"], c)
    return _count(
        "ra-written" if ra else "dtc-written", items, items["written"], counted, "deadline", None
    )


def _custody(c: Computed, period: Period) -> IndicatorResult:
    r = c.releases
    items = r[_in_period(r["release_date"], period)]
    counted = items["met"] | _passed(items["deadline"], c)
    return _count("custody-initial-l3", items, items["met"], counted, "deadline", "done")


def _minutes(c: Computed, period: Period) -> IndicatorResult:
    m = c.meetings
    items = m[_in_period(m["date"], period)]
    counted = items["minutes_done"] | _passed(items["deadline"], c)
    return _count(
        "minutes-10wd", items, items["minutes_on_time"], counted, "deadline", "minutes_completed"
    )


def _disclosure(c: Computed, period: Period) -> IndicatorResult:
    m = c.meetings
    items = m[_in_period(m["date"], period)]
    # A recorded no counts at once (not met); a blank waits for the deadline to pass.
    counted = items["disclosure_recorded"] | _passed(items["deadline"], c)
    return _count("disclosure", items, items["disclosure_done"], counted, "deadline", None)


def compute_indicators(
    computed: Computed, period: Period, ids: tuple[str, ...] = tuple(INDICATORS)
) -> list[IndicatorResult]:
    """The indicators named in `ids` (default all ten) for `period`, as of `computed.as_of`."""
    builders = {
        "l3-reviews": lambda: _reviews(computed, period, 3),
        "l2-reviews": lambda: _reviews(computed, period, 2),
        "dtc-attendance": lambda: _attendance(computed, period, "dtc-attendance"),
        "police-attendance": lambda: _attendance(computed, period, "police-attendance"),
        "cbsw-attendance": lambda: _attendance(computed, period, "cbsw-attendance"),
        "ra-written": lambda: _written(computed, period, True),
        "dtc-written": lambda: _written(computed, period, False),
        "custody-initial-l3": lambda: _custody(computed, period),
        "minutes-10wd": lambda: _minutes(computed, period),
        "disclosure": lambda: _disclosure(computed, period),
    }
    results = [builders[i]() for i in ids]
    for res in results:
        res.counts = operational_counts(computed, res.id)
    return results


# --------------------------------------------------------------------------- data quality

DATA_QUALITY_CHECKS = {
    "no_entry_date": "open Level 2/3 cases with neither a Level 2/3 meeting nor a level_from",
    "status_custody_mismatch": "status community while the current custody period has no "
                               "release date, or one after as_of",
    "seniority_unknown": "attended invitations with seniority_ok blank (counted as not met)",
}


def data_quality(c: Computed, period: Period, checks=tuple(DATA_QUALITY_CHECKS)) -> list[dict]:
    """The data-quality rows of SPEC section 3, `{"check", "ref", "detail"}`, by check and
    case. Cases as they stood on `as_of`; seniority for the meetings held in `period`.

    Rows name cases: they are for the co-ordinator and the quarterly pack, never a channel.
    """
    ind = c.records.individuals
    rows: list[dict] = []
    if "no_entry_date" in checks:
        has_meeting = ind["ref"].isin(c.records.meetings["ref"])
        level_from = ind["level_from"] if "level_from" in ind else pd.Series(pd.NaT, index=ind.index)
        hit = ind[ind["level"].isin([2, 3]) & ind["mappa_end"].isna() & ~has_meeting
                  & level_from.isna()]
        rows += [{"check": "no_entry_date", "ref": ref,
                  "detail": f"open at Level {int(level)} with no Level 2/3 meeting and no "
                            "level_from: its reviews cannot be tracked"}
                 for ref, level in zip(hit["ref"], hit["level"])]
    if "status_custody_mismatch" in checks:
        as_of = pd.Timestamp(c.as_of)
        hit = ind[ind["status"].eq("community") & ind["custody_from"].notna()
                  & (ind["release_date"].isna() | (ind["release_date"] > as_of))]
        rows += [{"check": "status_custody_mismatch", "ref": ref,
                  "detail": f"status community but in custody since {_iso(cf)} "
                            + ("with no release date" if pd.isna(rel)
                               else f"until {_iso(rel)}")}
                 for ref, cf, rel in zip(hit["ref"], hit["custody_from"], hit["release_date"])]
    if "seniority_unknown" in checks and len(c.records.invitations):
        inv = c.invitations
        hit = inv[_in_period(inv["date"], period) & inv["attended"] & inv["seniority_ok"].isna()]
        hit = hit.sort_values(["ref", "date", "meeting_id", "agency"], kind="stable")
        rows += [{"check": "seniority_unknown", "ref": ref,
                  "detail": f"meeting {mid} on {_iso(d)}: {agency} attended, seniority_ok blank"}
                 for ref, mid, d, agency in zip(hit["ref"], hit["meeting_id"], hit["date"],
                                                hit["agency"])]
    order = {k: i for i, k in enumerate(DATA_QUALITY_CHECKS)}
    return sorted(rows, key=lambda r: (order[r["check"]], r["ref"]))


def data_quality_counts(rows: list[dict]) -> dict[str, int]:
    """How many rows of each check (every check named, with 0 where none)."""
    counts = dict.fromkeys(DATA_QUALITY_CHECKS, 0)
    for r in rows:
        counts[r["check"]] += 1
    return counts


# --------------------------------------------------------------------------- live view


def operational_counts(c: Computed, ind_id: str) -> dict:
    """What stands open today (as_of) behind one indicator (paperwork: within the lookback)."""
    today = pd.Timestamp(c.as_of)
    soon = today + pd.Timedelta(days=DUE_SOON_DAYS)
    since = today - pd.Timedelta(days=c.lookback_days)
    if ind_id in ("l2-reviews", "l3-reviews"):
        level = 3 if ind_id == "l3-reviews" else 2
        ind = c.records.individuals
        open_cases = int(((ind["level"] == level) & ind["mappa_end"].isna()).sum())
        r = c.reviews[c.reviews["level"] == level]
        overdue = r[(r["status"] == "late") & ~r["restarted"].astype(bool)]
        pending = r[r["status"] == "pending"]
        return {
            "open_cases": open_cases,
            "overdue": int(overdue["ref"].nunique()),
            "due_14_days": int((pending["due"] <= soon).sum()),
        }
    m = c.meetings[c.meetings["deadline"] >= since]
    if ind_id == "minutes-10wd":
        open_ = m[~m["minutes_done"]]
        return {
            "minutes_pending": int((open_["deadline"] >= today).sum()),
            "minutes_overdue": int((open_["deadline"] < today).sum()),
        }
    if ind_id == "disclosure":
        return {"not_recorded": int((~m["disclosure_recorded"]).sum())}
    inv = c.invitations[c.invitations["deadline"] >= since]
    if ind_id in ("ra-written", "dtc-written"):
        ra = ind_id == "ra-written"
        missing = inv[inv["absent"] & ~inv["written"] & (inv["is_ra"] == ra)]
        return {
            "contributions_missing": int((missing["deadline"] >= today).sum()),
            "contributions_overdue": int((missing["deadline"] < today).sum()),
        }
    if ind_id == "custody-initial-l3":
        r = c.releases
        upcoming = r[(r["release_date"] > today) & ~r["met"]]
        return {
            "releases_without_initial_meeting": len(upcoming),
            "deadline_within_14_days": int((upcoming["deadline"] <= soon).sum()),
        }
    return {}


def group_exceptions(results: list[IndicatorResult]) -> dict[str, dict]:
    """Commonalities behind the exceptions: counts by reason, agency, case and chair."""
    df = exceptions_frame(results)
    out = {}
    for key, col in (("by_reason", "reason"), ("by_agency", "agency"),
                     ("by_case", "ref"), ("by_chair", "chair_id")):
        counts = df[col].fillna("(none recorded)" if col == "reason" else "(none)")
        if col == "agency":
            counts = df[col].dropna()
        vc = counts.value_counts()
        if col == "ref":
            vc = vc[vc > 1]  # repeats
        out[key] = {str(k): int(v) for k, v in vc.items()}
    return out


def exceptions_frame(results: list[IndicatorResult]) -> pd.DataFrame:
    rows = [{"indicator": r.id, **e} for r in results for e in r.exceptions]
    return pd.DataFrame(rows, columns=["indicator", *EXCEPTION_FIELDS])
