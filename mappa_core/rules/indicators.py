"""The ten National Performance Indicators of SPEC section 3, for any period and area.

Each result carries id, title, target, numerator, denominator, percent, met, pending,
exceptions (and breakdown for attendance), plus the live view's margin and counts.
An item is in the denominator once it is done or its deadline is before `as_of`; on
its deadline day and before, and not done, it is pending (nothing is late until the
next day).

Each indicator is declared once, an `Indicator` passed to `_declare` (section "the ten"
below); `status`, the topics, what an answer loads, the planner's alerts, the weekly summary
and the quarterly pack all read INDICATORS. To add an indicator: write its `compute` (the
period's result, through `_count`) and `count` (the live view's counts) beside the others;
declare it with its id, title, short name, target, topic (a new topic is a `Topic` member),
the frames it reads and whether a breach is urgent; add its row to docs/data-contract.md.
tests/rules/test_registry.py then checks it is declared once and reads only what it declares.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

import numpy as np
import pandas as pd

from . import deadlines
from .kinds import ItemKind, read_key
from .periods import Period
from .records import DUE_SOON_DAYS, LOOKBACK_DAYS, Records
from .schema import reason_label
from .vocabulary import Topic


# The deadline frames of `Computed` an indicator may read. The invitation records (the
# largest table, with the agencies) are loaded only for an indicator that reads them.
FRAMES = ("reviews", "meetings", "invitations", "releases")


class Driver(StrEnum):
    """What an indicator below target names as behind it (its `why`), declared with it."""

    AGENCY = "agency"  # the agencies below target
    CHAIR = "chair"    # the chairs whose cases or meetings hold most of the exceptions


@dataclass(frozen=True)
class Indicator:
    """One indicator, declared once.

    `compute(c, period, indicator)` gives its result for a period (numerator, denominator,
    pending, exceptions; see `_count`); `count(c)` the live view's
    operational counts of what stands open today. `reads` names the deadline frames
    (FRAMES) the two read. `urgent`: falling below target is urgent for the SOG chair.
    `each_agency`: met only if every agency in the breakdown meets the target, the
    margin the smallest agency's. `data_quality`: the checks shown with it. `short`: its
    name where there is no room for the title (the quarterly pack's tables). `driver`:
    what its `why` names when it is below target (`contributors`).
    """
    id: str
    title: str
    target: int
    topic: Topic
    reads: frozenset[str]
    compute: Callable[[Computed, Period, Indicator], IndicatorResult]
    count: Callable[[Computed], dict]
    short: str  # the quarterly pack's name for it where a table cell has no room for the title
    urgent: bool = False
    each_agency: bool = False
    data_quality: tuple[str, ...] = ()
    driver: Driver = Driver.CHAIR

    @property
    def reads_invitations(self) -> bool:
        return "invitations" in self.reads


INDICATORS: dict[str, Indicator] = {}


def _declare(indicator: Indicator) -> Indicator:
    if indicator.id in INDICATORS:
        raise ValueError(f"indicator {indicator.id!r} declared twice")
    if not indicator.reads or not indicator.reads <= set(FRAMES):
        raise ValueError(f"indicator {indicator.id!r}: reads must name frames of {FRAMES}")
    INDICATORS[indicator.id] = indicator
    return indicator


def reads_invitations(ids) -> bool:
    """Whether any of these indicators needs the invitation records loaded."""
    return any(INDICATORS[i].reads_invitations for i in ids)


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
    def indicator(self) -> Indicator:
        return INDICATORS[self.id]

    @property
    def title(self) -> str:
        return self.indicator.title

    @property
    def target(self) -> int:
        return self.indicator.target

    @property
    def percent(self) -> float | None:
        return percent(self.numerator, self.denominator)

    @property
    def met(self) -> bool | None:
        if self.breakdown is not None and self.indicator.each_agency:
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
        custody, rec.review_notes,
    )
    return Computed(records, c.as_of, parent=c, area=area)


def compute_deadlines(records: Records, as_of: dt.date, lookback_days: int = LOOKBACK_DAYS) -> Computed:
    return Computed(deadlines.as_stood(records, as_of), as_of, lookback_days=lookback_days)


# --------------------------------------------------------------------------- computing
# Each indicator's `compute(c, period, indicator)`; families share one, made per member.


def _reviews(level: int):
    """Each review due in the period on the Level `level` chain; met when held by then.
    A late one carries the reason (and agency) recorded on its item (`_with_notes`)."""
    def compute(c: Computed, period: Period, ind: Indicator) -> IndicatorResult:
        r = c.reviews
        items = r[(r["level"] == level) & _in_period(r["due"], period)]
        items = _with_notes(items, c.records.review_notes)
        return _count(ind.id, items, items["status"] == "met", items["status"] != "pending",
                      "due", "done")
    return compute


def _with_notes(items: pd.DataFrame, notes: pd.DataFrame) -> pd.DataFrame:
    """Review due dates with the reason and agency recorded through the bot on their item.

    A review item (`review:<ref>:L<level>:<due>`) stands for a run of late due dates from
    its own (one item while a chain is unreviewed: due.open_items), so the latest note on
    it applies to every due date of that run (the same case, level and closing meeting,
    from its due date on). Its reason replaces the meeting's; an agency named is the
    exception's agency. Like a meeting's recorded reason, a note is a correction of the
    record: it holds whenever it was recorded."""
    if notes is None or notes.empty or items.empty:
        return items
    rows = []
    for key, reason, agency in zip(notes["item_key"], notes["reason"], notes["agency"]):
        read = read_key(key)
        if read is None or read[0].kind != ItemKind.REVIEW:
            continue
        part = read[1]
        rows.append({"ref": part["ref"], "level": int(part["level"][1:]),
                     "from": pd.Timestamp(part["deadline"]), "note_reason": reason,
                     "note_agency": agency if isinstance(agency, str) and agency else None})
    if not rows:
        return items
    found = pd.DataFrame(rows).drop_duplicates(["ref", "level", "from"], keep="last")
    # Each note's run: the due date it names, and the meeting that closed it (if any).
    start = items.merge(found, left_on=["ref", "level", "due"],
                        right_on=["ref", "level", "from"])[
        ["ref", "level", "from", "done", "note_reason", "note_agency"]]
    if start.empty:
        return items
    out = items.reset_index().merge(start, on=["ref", "level"], how="left",
                                    suffixes=("", "_run"))
    same_run = (out["due"] >= out["from"]) & (
        (out["done"] == out["done_run"]) | (out["done"].isna() & out["done_run"].isna()))
    out = out[same_run | out["from"].isna()]
    # A due date in two runs' reach takes the later run's note.
    out = out.sort_values("from").drop_duplicates("index", keep="last").set_index("index")
    out = out.reindex(items.index)
    hit = out["note_reason"].notna().to_numpy()
    if not hit.any():
        return items
    items = items.copy()
    items["agency"] = pd.Series(np.where(hit, out["note_agency"].to_numpy(dtype=object), None),
                                index=items.index, dtype=object)
    items.loc[hit, "reason"] = out.loc[hit, "note_reason"].to_numpy()
    return items


def _attended(items: pd.DataFrame) -> pd.Series:
    return items["attended_ok"]


def _attended_or_wrote(items: pd.DataFrame) -> pd.Series:
    return items["attended_ok"] | (items["absent"] & items["written"])


def _attendance(invited: Callable[[pd.DataFrame], pd.Series],
                met: Callable[[pd.DataFrame], pd.Series] = _attended):
    """Each invitation (`invited` picks them) to a meeting held in the period, met as
    `met` says, with a breakdown by agency."""
    def compute(c: Computed, period: Period, ind: Indicator) -> IndicatorResult:
        inv = c.invitations
        inv = inv[_in_period(inv["date"], period)]
        items = inv[invited(inv)]
        ok = met(items)
        res = _count(ind.id, items, ok, pd.Series(True, index=items.index), "date", None)
        breakdown = []
        margins = []
        grouped = pd.DataFrame({"agency": items["agency"], "ok": ok.astype(int)}).groupby(
            "agency")["ok"]
        for agency, (num, den) in sorted(
            zip(grouped.sum().index, zip(grouped.sum().tolist(), grouped.count().tolist()))
        ):
            breakdown.append(
                {
                    "agency": agency,
                    "numerator": int(num),
                    "denominator": int(den),
                    "percent": percent(num, den),
                    "met": target_met(num, den, ind.target),
                }
            )
            margins.append(margin(num, den, 0, ind.target))
        res.breakdown = breakdown
        if ind.each_agency:
            res.has_margin_override = True
            res.margin_override = min(margins) if margins else None
        return res
    return compute


def _written(ra: bool):
    """Each invitation of an RA (`ra`) or DTC agency to a meeting held in the period that
    it did not attend; met when it sent a written contribution."""
    def compute(c: Computed, period: Period, ind: Indicator) -> IndicatorResult:
        inv = c.invitations
        items = inv[_in_period(inv["date"], period) & inv["absent"] & (inv["is_ra"] == ra)]
        counted = items["written"] | _passed(items["deadline"], c)
        return _count(ind.id, items, items["written"], counted, "deadline", None)
    return compute


def _custody(c: Computed, period: Period, ind: Indicator) -> IndicatorResult:
    r = c.releases
    items = r[_in_period(r["release_date"], period)]
    counted = items["met"] | _passed(items["deadline"], c)
    return _count(ind.id, items, items["met"], counted, "deadline", "done")


def _minutes(c: Computed, period: Period, ind: Indicator) -> IndicatorResult:
    m = c.meetings
    items = m[_in_period(m["date"], period)]
    counted = items["minutes_done"] | _passed(items["deadline"], c)
    return _count(ind.id, items, items["minutes_on_time"], counted, "deadline",
                  "minutes_completed")


def _disclosure(c: Computed, period: Period, ind: Indicator) -> IndicatorResult:
    m = c.meetings
    items = m[_in_period(m["date"], period)]
    # A recorded no counts at once (not met); a blank waits for the deadline to pass.
    counted = items["disclosure_recorded"] | _passed(items["deadline"], c)
    return _count(ind.id, items, items["disclosure_done"], counted, "deadline", None)


# --------------------------------------------------------------------------- live view
# Each indicator's `count(c)`: what stands open today (as_of) behind it (meeting
# paperwork: within the lookback `c` was computed with).



def _today(c: Computed) -> pd.Timestamp:
    return pd.Timestamp(c.as_of)


def _recent(frame: pd.DataFrame, c: Computed) -> pd.DataFrame:
    return frame[frame["deadline"] >= _today(c) - pd.Timedelta(days=c.lookback_days)]


def _review_counts(level: int):
    def count(c: Computed) -> dict:
        ind = c.records.individuals
        open_cases = int(((ind["level"] == level) & ind["mappa_end"].isna()).sum())
        r = c.reviews[c.reviews["level"] == level]
        overdue = r[(r["status"] == "late") & ~r["restarted"].astype(bool)]
        pending = r[r["status"] == "pending"]
        soon = _today(c) + pd.Timedelta(days=DUE_SOON_DAYS)
        return {
            "open_cases": open_cases,
            "overdue": int(overdue["ref"].nunique()),
            "due_14_days": int((pending["due"] <= soon).sum()),
        }
    return count


def _no_counts(c: Computed) -> dict:
    return {}


def _minutes_counts(c: Computed) -> dict:
    m = _recent(c.meetings, c)
    open_ = m[~m["minutes_done"]]
    return {
        "minutes_pending": int((open_["deadline"] >= _today(c)).sum()),
        "minutes_overdue": int((open_["deadline"] < _today(c)).sum()),
    }


def _disclosure_counts(c: Computed) -> dict:
    m = _recent(c.meetings, c)
    return {"not_recorded": int((~m["disclosure_recorded"]).sum())}


def _written_counts(ra: bool):
    def count(c: Computed) -> dict:
        inv = _recent(c.invitations, c)
        missing = inv[inv["absent"] & ~inv["written"] & (inv["is_ra"] == ra)]
        return {
            "contributions_missing": int((missing["deadline"] >= _today(c)).sum()),
            "contributions_overdue": int((missing["deadline"] < _today(c)).sum()),
        }
    return count


def _release_counts(c: Computed) -> dict:
    r = c.releases
    upcoming = r[(r["release_date"] > _today(c)) & ~r["met"]]
    soon = _today(c) + pd.Timedelta(days=DUE_SOON_DAYS)
    return {
        "releases_without_initial_meeting": len(upcoming),
        "deadline_within_14_days": int((upcoming["deadline"] <= soon).sum()),
    }


# --------------------------------------------------------------------------- the ten
# SPEC section 3, in its order (the order of every answer). Each is declared here once.

_declare(Indicator(
    "l3-reviews", "Level 3 cases reviewed at least every 6 weeks", 95, Topic.LEVEL3,
    reads=frozenset({"reviews"}), compute=_reviews(3), count=_review_counts(3), urgent=True,
    short="Level 3 reviews",
))
_declare(Indicator(
    "l2-reviews", "Level 2 cases reviewed at least every 12 weeks", 95, Topic.LEVEL2,
    reads=frozenset({"reviews"}), compute=_reviews(2), count=_review_counts(2),
    short="Level 2 reviews",
))
_declare(Indicator(
    "dtc-attendance", "Attendance by each Duty to Co-operate agency, where invited", 90,
    Topic.ATTENDANCE, reads=frozenset({"invitations"}),
    compute=_attendance(lambda inv: ~inv["is_ra"], _attended_or_wrote), count=_no_counts,
    each_agency=True, data_quality=("seniority_unknown",), driver=Driver.AGENCY,
    short="DTC attendance",
))
_declare(Indicator(
    "police-attendance", "Attendance by Police Scotland", 90, Topic.ATTENDANCE,
    reads=frozenset({"invitations"}), compute=_attendance(lambda inv: inv["role"] == "police"),
    count=_no_counts, data_quality=("seniority_unknown",),
    short="Police attendance",
))
_declare(Indicator(
    "cbsw-attendance", "Attendance by Community Based Social Work", 90, Topic.ATTENDANCE,
    reads=frozenset({"invitations"}),
    compute=_attendance(lambda inv: inv["role"] == "social_work"), count=_no_counts,
    data_quality=("seniority_unknown",),
    short="Social work attendance",
))
_declare(Indicator(
    "ra-written", "Written contributions from Responsible Authorities that did not attend", 100,
    Topic.CONTRIBUTIONS, reads=frozenset({"invitations"}), compute=_written(True),
    count=_written_counts(True), driver=Driver.AGENCY,
    short="RA written contributions",
))
_declare(Indicator(
    "dtc-written", "Written contributions from Duty to Co-operate agencies that did not attend",
    100, Topic.CONTRIBUTIONS, reads=frozenset({"invitations"}), compute=_written(False),
    count=_written_counts(False), driver=Driver.AGENCY,
    short="DTC written contributions",
))
_declare(Indicator(
    "custody-initial-l3",
    "Initial Level 3 meeting held in the community at least 4 weeks before release", 100,
    Topic.CUSTODY, reads=frozenset({"releases"}), compute=_custody, count=_release_counts,
    urgent=True,
    short="Pre-release Level 3 meetings",
))
_declare(Indicator(
    "minutes-10wd", "Minutes issued and RMP updated and ratified within 10 working days", 90,
    Topic.MINUTES, reads=frozenset({"meetings"}), compute=_minutes, count=_minutes_counts,
    short="Minutes and RMP in 10 working days",
))
_declare(Indicator(
    "disclosure", "Disclosure considered and decision recorded", 100, Topic.DISCLOSURE,
    reads=frozenset({"meetings"}), compute=_disclosure, count=_disclosure_counts,
    short="Disclosure recorded",
))

# Each topic's indicators, from the declarations ("all" is every one).
TOPICS: dict[str, tuple[str, ...]] = {
    topic.value: tuple(i for i, ind in INDICATORS.items()
                       if topic is Topic.ALL or ind.topic is topic)
    for topic in Topic
}


def compute_indicators(
    computed: Computed, period: Period, ids: tuple[str, ...] | None = None
) -> list[IndicatorResult]:
    """The indicators named in `ids` (default all ten) for `period`, as of `computed.as_of`."""
    chosen = [INDICATORS[i] for i in (TOPICS["all"] if ids is None else ids)]
    results = [ind.compute(computed, period, ind) for ind in chosen]
    for res in results:
        res.counts = operational_counts(computed, res.id)
    return results


def operational_counts(c: Computed, ind_id: str) -> dict:
    """What stands open today (as_of) behind one indicator (paperwork: within the lookback)."""
    return INDICATORS[ind_id].count(c)


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


# --------------------------------------------------------------------------- why

WHY_NAMED = 3  # the agencies or chairs a `why` names; the rest are counted


def contributors(res: IndicatorResult) -> list[dict]:
    """Who is behind a result's exceptions, as its indicator's `driver` says, the largest
    first: each {"by" (agency or chair), "key" (its id), "count" (its exceptions)}.

    Agencies: where a breakdown has several, those below target, the lowest first, each
    with its "percent", "numerator" and "denominator"; otherwise those the exceptions name.
    Chairs: those the exceptions name (an exception with none recorded is left out)."""
    by = res.indicator.driver
    column = "agency" if by is Driver.AGENCY else "chair_id"
    counts = Counter(e[column] for e in res.exceptions if e.get(column))
    if by is Driver.AGENCY and res.breakdown and len(res.breakdown) > 1:
        below = sorted((b for b in res.breakdown if b["met"] is False),
                       key=lambda b: (b["percent"], b["agency"]))
        return [{"by": by.value, "key": b["agency"], "count": counts.get(b["agency"], 0),
                 "percent": b["percent"], "numerator": b["numerator"],
                 "denominator": b["denominator"]} for b in below]
    return [{"by": by.value, "key": key, "count": n}
            for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def reasons_given(res: IndicatorResult) -> tuple[list[tuple[str, int]], int]:
    """The reasons recorded against a result's exceptions, the commonest first, and how
    many exceptions have none."""
    given = Counter(e["reason"] for e in res.exceptions if e.get("reason"))
    return (sorted(given.items(), key=lambda kv: (-kv[1], kv[0])),
            sum(1 for e in res.exceptions if not e.get("reason")))


def _listed(shown: list[str], total: int, others: tuple[str, str]) -> str:
    """`shown` joined, with how many more there are (`others`: singular and plural)."""
    more = total - len(shown)
    tail = f" and {more} other {others[more != 1]}" if more > 0 else ""
    return ", ".join(shown) + tail


def why(res: IndicatorResult, agency_names: dict | None = None,
        chair_names: dict | None = None) -> str | None:
    """What drives a result below target, in words built only from its exceptions: the
    agencies below target (or missing the contributions), or the chairs with most misses
    (`contributors`, named by `agency_names` / `chair_names`, their ids otherwise), then the
    reasons recorded. None unless the result is below target."""
    if res.met is not False:
        return None
    names = {"agency": agency_names or {}, "chair": chair_names or {}}

    def name(c: dict) -> str:
        found = names[c["by"]].get(c["key"])
        return found if isinstance(found, str) and found.strip() else c["key"]

    top = contributors(res)
    total = len(res.exceptions)
    agency = res.indicator.driver is Driver.AGENCY
    who = ("agency", "agencies") if agency else ("chair", "chairs")
    parts = []
    if top and "percent" in top[0]:
        parts.append("Below target: " + _listed(
            [f"{name(c)} {c['percent']:.1f}% ({c['numerator']}/{c['denominator']})"
             for c in top[:WHY_NAMED]], len(top), who))
    elif len(top) == 1 and top[0]["count"] == total:
        verb = "missing from" if agency else "chaired by"
        parts.append(f"{verb.capitalize()} {name(top[0])}" if total == 1
                     else f"All {total} {verb} {name(top[0])}")
    elif len(top) > 1 and top[0]["count"] == 1:
        parts.append(f"Spread over {len(top)} {who[1]}, one each")
    elif top:
        lead = "Missing from" if agency else "Chairs with most misses:" if len(top) > 1 \
            else "Chaired by"
        parts.append(f"{lead} " + _listed(
            [f"{name(top[0])} {top[0]['count']} of {total}",
             *(f"{name(c)} {c['count']}" for c in top[1:WHY_NAMED])], len(top), who))
    unnamed = total - sum(c["count"] for c in top) if top and "percent" not in top[0] else 0
    if unnamed > 0:
        parts.append(f"{unnamed} with no {who[0]} recorded")
    if total:
        given, unrecorded = reasons_given(res)
        if not given:
            parts.append("no reason recorded")
        else:
            words = ", ".join(f"{_lower_first(reason_label(code))} {n}" for code, n in given[:2])
            parts.append(f"reason given for {total - unrecorded} of {total}: {words}")
    if not parts:
        return None
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def names_of(records: Records) -> tuple[dict[str, str], dict[str, str]]:
    """The agencies' and the people's display names by id, as the records hold them (for
    `why`); empty where a load left them out."""
    def pairs(frame: pd.DataFrame, key: str) -> dict[str, str]:
        if frame is None or frame.empty or not {key, "name"} <= set(frame.columns):
            return {}
        return {k: v for k, v in zip(frame[key], frame["name"]) if isinstance(v, str)}
    return pairs(records.agencies, "agency"), pairs(records.people, "person_id")
