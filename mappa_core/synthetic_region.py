"""Synthetic MAPPA data in the CSV formats of SPEC section 5 (no real people).

The default (7,000 individuals) is about Scotland's national caseload, spread over the ten
MAPPA areas in proportion to their populations (`AREAS`, written to areas.csv); `areas`
keeps a smaller set. Categories and levels follow the Scottish Government's national
overview reports (2022-23 and 2023-24): most registered sex offenders at Level 1 (about
a quarter in custody), Level 2 in the low hundreds nationally, Level 3 a handful;
restricted patients mostly Level 1; Category 3 only at Levels 2 and 3.

Cases enter and leave Level 2/3 (stays of about two years): a review can step a case up
(2 to 3), down (3 to 2) or out (to 1, or `exit` for Category 3), so the review chains'
level changes are exercised. Meetings fall on the area's working days (Scottish bank
holidays and local_holidays.csv avoided; a very few urgent Level 3 meetings excepted);
lateness, absences, missing contributions and late minutes differ by agency and area
and drift over the years. Custody spells, releases and pre-release meetings, wanted and
missing persons (most located) and orders (applied, granted, on conviction) occur at
about their real rates. Everything is vectorised over cases (a loop over meeting slots,
not over people) and depends only on the arguments.
"""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .rules.calendar import scottish_bank_holidays
from .rules.deadlines import REVIEW_INTERVAL
from .rules.schema import REASON_CODES

# The ten MAPPA areas and their populations: National Records of Scotland mid-2022
# population estimates (published March 2024) by council area, summed per MAPPA area and
# rounded to the nearest thousand (Scotland: 5,447,700).
#   Ayrshire: East, North and South Ayrshire and Dumfries and Galloway (the South West
#     Scotland MAPPA area)
#   Fife: Fife                          Forth Valley: Clackmannanshire, Falkirk, Stirling
#   Glasgow: Glasgow City               Grampian: Aberdeen City, Aberdeenshire, Moray
#   Highland and Islands: Highland, Orkney, Shetland, Na h-Eileanan Siar
#   Lanarkshire: North and South Lanarkshire
#   Lothian and Borders: City of Edinburgh, East Lothian, Midlothian, West Lothian,
#     Scottish Borders
#   North Strathclyde: Argyll and Bute, East Dunbartonshire, East Renfrewshire,
#     Inverclyde, Renfrewshire, West Dunbartonshire
#   Tayside: Angus, Dundee City, Perth and Kinross
AREAS: dict[str, int] = {
    "Ayrshire": 511_000,
    "Fife": 372_000,
    "Forth Valley": 303_000,
    "Glasgow": 623_000,
    "Grampian": 582_000,
    "Highland and Islands": 306_000,
    "Lanarkshire": 669_000,
    "Lothian and Borders": 1_023_000,
    "North Strathclyde": 643_000,
    "Tayside": 417_000,
}
REGIONS = tuple(AREAS)
DTC_ROLES = ("housing", "health", "electronic_monitoring", "scra", "social_security")

# Shares of the caseload (SPEC section 2; national overview 2023-24: 6,878 registered sex
# offenders, 4,948 in the community of whom 95 at Level 2 and 0 at Level 3; about 320
# restricted patients; Category 3 a few hundred, all at Level 2 or 3).
CATEGORY_SHARE = (0.925, 0.045, 0.03)
LEVEL_SHARE = {            # category -> (Level 2, Level 3) shares of the open cases
    1: (0.022, 0.0002),
    2: (0.14, 0.012),
    3: (0.97, 0.03),
}
MEAN_STAY_DAYS = 670       # a Level 2/3 spell: two intervals plus about 18 months
MEAN_L3_STAY_DAYS = 300    # at Level 3
CASES_PER_CHAIR = 30       # open Level 2/3 cases per meeting chair

# Local holidays in the pattern Scottish councils keep (a spring and an autumn Monday; the
# Glasgow Fair in the west): illustrative dates for the demo, not any council's calendar.
# (name, month, weekday 0 = Monday, which one: 1 first, 3 third, -1 last)
LOCAL_HOLIDAYS: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "Ayrshire": (("Spring holiday", 4, 0, 3), ("September holiday", 9, 0, -1)),
    "Fife": (("Spring holiday", 4, 0, 1), ("Autumn holiday", 10, 0, 2)),
    "Forth Valley": (("Victoria Day", 5, 0, -2), ("September holiday", 9, 0, 2)),
    "Glasgow": (("Glasgow Fair", 7, 0, 3), ("September weekend", 9, 0, -1)),
    "Grampian": (("Spring holiday", 4, 0, 3), ("Autumn holiday", 9, 0, -1)),
    "Highland and Islands": (("Spring holiday", 3, 0, 1), ("Autumn holiday", 10, 0, 1)),
    "Lanarkshire": (("Glasgow Fair", 7, 0, 3), ("September weekend", 9, 0, -1)),
    "Lothian and Borders": (("Victoria Day", 5, 0, -2), ("Autumn holiday", 9, 0, 3)),
    "North Strathclyde": (("Glasgow Fair", 7, 0, 3), ("September weekend", 9, 0, -1)),
    "Tayside": (("Spring holiday", 4, 0, 1), ("October holiday", 10, 0, 1)),
}

# Agencies' habits. Absence (any meeting), a written report missing when absent, and an
# attendee not senior enough, each a base rate that an area and its agencies scale.
ABSENT = {"police": 0.04, "social_work": 0.05, "sps": 0.08, "health": 0.14, "housing": 0.18,
          "scra": 0.22, "electronic_monitoring": 0.26, "social_security": 0.3}
NO_REPORT = {"police": 0.1, "social_work": 0.1, "sps": 0.15, "health": 0.2, "housing": 0.2,
             "scra": 0.2, "electronic_monitoring": 0.25, "social_security": 0.3}
NOT_SENIOR = {"police": 0.025, "social_work": 0.03, "sps": 0.04, "health": 0.05, "housing": 0.05,
              "scra": 0.04, "electronic_monitoring": 0.06, "social_security": 0.06}
REVIEW_LATE = 0.05         # a review held after its due date
MINUTES_LATE = 0.08        # minutes issued after the 10th working day
EPOCH = np.datetime64("1970-01-01", "D")
NO_DAY = np.int64(10**9)   # "never" as a day number


def _slug(area: str) -> str:
    return area.lower().replace(" and ", "-").replace(" ", "-")


def select_areas(names=None) -> tuple[str, ...]:
    """The areas named (any case, a unique prefix will do), in the usual order; all ten
    when `names` is empty. An unknown or ambiguous name is a ValueError saying which."""
    if not names:
        return REGIONS
    chosen = set()
    for name in names:
        key = name.strip().lower()
        exact = [a for a in REGIONS if a.lower() == key]
        found = exact or [a for a in REGIONS if a.lower().startswith(key)] if key else []
        if len(found) > 1:
            raise ValueError(f"area {name.strip()!r} could be {', '.join(found[:-1])} or "
                             f"{found[-1]}: name one")
        if not found:
            raise ValueError(f"unknown area {name.strip()!r}: the ten areas are "
                             + ", ".join(REGIONS))
        chosen.add(found[0])
    return tuple(a for a in REGIONS if a in chosen)


def _apportion(total: int, weights) -> np.ndarray:
    """`total` split in proportion to `weights` (largest remainders), summing exactly."""
    w = np.asarray(weights, dtype=float)
    share = total * w / w.sum()
    out = np.floor(share).astype(np.int64)
    out[np.argsort(-(share - out), kind="stable")[: total - out.sum()]] += 1
    return out


def _nth_weekday(year: int, month: int, weekday: int, which: int) -> dt.date:
    if which > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (which - 1))
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7 + 7 * (-which - 1))


def _local_holidays(areas, first_year: int, last_year: int) -> pd.DataFrame:
    rows = [(area, _nth_weekday(year, month, weekday, which).isoformat(), name)
            for area in areas for year in range(first_year, last_year + 1)
            for name, month, weekday, which in LOCAL_HOLIDAYS[area]]
    return pd.DataFrame(rows, columns=["area", "date", "name"])


def _calendars(holidays: pd.DataFrame, areas) -> list[np.busdaycalendar]:
    bank = np.array(scottish_bank_holidays(), dtype="datetime64[D]")
    return [np.busdaycalendar(weekmask="1111100", holidays=np.concatenate(
        [bank, holidays.loc[holidays["area"] == a, "date"].to_numpy(dtype="datetime64[D]")]))
        for a in areas]


def _by_area(fn, area: np.ndarray, days: np.ndarray, cals, *args) -> np.ndarray:
    """fn(datetime64 days, busdaycalendar, *args restricted to the rows) per area, as day
    numbers; `args` are arrays aligned with `days`."""
    out = np.empty(len(days), dtype=np.int64)
    for k, cal in enumerate(cals):
        rows = area == k
        if rows.any():
            out[rows] = (fn((days[rows]).astype("datetime64[D]"), cal,
                            *(a[rows] for a in args)) - EPOCH).astype(np.int64)
    return out


def _roll_back(days, cal):
    return np.busday_offset(days, 0, roll="backward", busdaycal=cal)


def _roll_forward(days, cal):
    return np.busday_offset(days, 0, roll="forward", busdaycal=cal)


def _add_working(days, cal, n):
    return np.busday_offset(days, n, roll="forward", busdaycal=cal)


class _Habits:
    """Each area's and each of its agencies' habits: a factor on the base rates and a drift
    per year (negative: improving), drawn from the seed and the area's name, so an area
    keeps its character whichever other areas are generated with it."""

    ROLES = tuple(ABSENT)

    def __init__(self, areas, seed: int, end: int):
        self.end = end
        k = len(areas)
        self.level = {}    # (what, role or "") -> array over areas: log factor
        self.drift = {}    # the same: log change per year
        for what in ("absent", "no_report", "not_senior", "review_late", "minutes_late",
                     "no_disclosure"):
            self.level[what] = np.zeros((k, len(self.ROLES)))
            self.drift[what] = np.zeros((k, len(self.ROLES)))
        for i, area in enumerate(areas):
            g = np.random.default_rng([seed, 7, zlib.crc32(area.encode())])
            for what in self.level:
                area_level, area_drift = g.normal(0, 0.25), g.normal(-0.08, 0.1)
                self.level[what][i] = area_level + g.normal(0, 0.2, len(self.ROLES))
                self.drift[what][i] = area_drift + g.normal(0, 0.08, len(self.ROLES))

    def p(self, what: str, base, area: np.ndarray, day: np.ndarray, role=None) -> np.ndarray:
        """The probability of `what` for each row (its area, day and agency role)."""
        r = np.zeros(len(area), dtype=np.int64) if role is None else role
        years_ago = (self.end - day) / 365.0
        logf = self.level[what][area, r] - self.drift[what][area, r] * years_ago
        return np.clip(np.asarray(base) * np.exp(logf), 0.002, 0.75)


def _ids(prefix: str, count: int, width: int) -> np.ndarray:
    """prefix + 1..count, zero-padded to `width` digits."""
    if count == 0:
        return np.zeros(0, dtype=object)
    return np.char.add(prefix, np.char.zfill(np.arange(1, count + 1).astype(str), width)).astype(object)


def _fmt(days: np.ndarray) -> np.ndarray:
    """Day numbers (NaN for blank) as ISO strings."""
    days = np.asarray(days, dtype=float)
    out = np.full(len(days), "", dtype=object)
    ok = ~np.isnan(days)
    out[ok] = (EPOCH + days[ok].astype(np.int64)).astype(str)
    return out


def generate(
    individuals: int = 7000, years: int = 5, seed: int = 1, until: dt.date | None = None,
    areas=None,
) -> dict[str, pd.DataFrame]:
    """The CSV tables of a synthetic Scotland (or of the `areas` named)."""
    rng = np.random.default_rng(seed)
    until = until or dt.date(2026, 11, 26)
    end = np.int64((np.datetime64(until, "D") - EPOCH).astype(np.int64))
    window = end - 365 * years
    n = individuals
    areas = select_areas(areas)
    area_names = np.array(areas, dtype=object)
    holidays = _local_holidays(areas, (until.year - years) - 1, until.year + 2)
    cals = _calendars(holidays, areas)
    habits = _Habits(areas, seed, int(end))

    # Who: areas by population (exactly), categories, levels.
    area = rng.permutation(np.repeat(np.arange(len(areas)), _apportion(n, [AREAS[a] for a in areas])))
    category = rng.choice([1, 2, 3], size=n, p=CATEGORY_SHARE)
    u = rng.random(n)
    l2 = np.select([category == c for c in (1, 2, 3)], [LEVEL_SHARE[c][0] for c in (1, 2, 3)])
    l3 = np.select([category == c for c in (1, 2, 3)], [LEVEL_SHARE[c][1] for c in (1, 2, 3)])
    level = np.where(u < l3, 3, np.where(u < l3 + l2, 2, 1))
    level = np.where(category == 3, np.maximum(level, 2), level)
    start = end - rng.integers(30, 365 * 15, n)
    # Some Category 3 cases have ended within the window (the last meeting's outcome
    # `exit`); some Level 1 registrations have ended (no meeting).
    cat3_closed = (category == 3) & (rng.random(n) < 0.4)
    archived = (level == 1) & (rng.random(n) < 0.06)
    mappa_end = np.where(archived, end - rng.integers(1, 365 * years, n), np.nan)
    mappa_end = np.where(mappa_end <= start, np.nan, mappa_end)
    open_ = np.isnan(mappa_end) & ~cat3_closed

    # Restricted patients are in hospital, a fifth conditionally discharged.
    g = np.random.default_rng([seed, 21])
    hospital = (category == 2) & (g.random(n) < 0.8)

    # Level 2/3 spells: one for each open case at Level 2/3 (entered about MEAN_STAY_DAYS
    # ago on average, some of them through a change of level), and the ended spells of
    # cases now at Level 1 or closed, as many as keep the caseload steady over the window.
    spells = _spells(np.random.default_rng([seed, 14]), category, level, open_, cat3_closed,
                     ~hospital & (category != 2), start, window, end)

    # Custody: about a quarter of registered sex offenders are in prison on any day (fewer
    # Category 3). A spell that begins at a pre-release meeting has its prison term end four
    # to eight weeks after it (now and then sooner: the meeting was late).
    pre = spells.release_entry
    by_release = spells.individual[pre]
    lead = np.where(g.random(len(by_release)) < 0.08, g.integers(5, 28, len(by_release)),
                    g.integers(28, 59, len(by_release)))
    released_at = np.full(n, np.nan)
    released_at[by_release] = spells.entry[pre] + lead
    went_in = np.full(n, np.nan)
    went_in[by_release] = spells.entry[pre] - g.integers(180, 2200, len(by_release))
    free = np.isnan(released_at)
    in_custody = (open_ & ~hospital & (category != 2) & free & (
        g.random(n) < np.where(category == 1, 0.26, 0.1))) | (released_at > end)
    custody_from = np.where(free & in_custody, end - g.integers(60, 365 * 6, n), went_in)
    release = np.where(free & in_custody, end + g.integers(5, 365 * 2, n), released_at)
    # Spells that ended within the window (more among Level 3 cases: the critical few are
    # often long-sentence prisoners just released).
    past = open_ & free & ~in_custody & ~hospital & (g.random(n) < np.select(
        [level == 3, level == 2], [0.3, 0.08], 0.03))
    past_from = g.integers(window - 300, end - 120, n)
    custody_from = np.where(past, past_from, custody_from)
    release = np.where(past, np.minimum(past_from + g.integers(60, 500, n), end - 14), release)
    past |= ~free & ~in_custody
    release_level = np.where(~free, 3, np.where(~np.isnan(release), np.where(level >= 2, level, 1), np.nan))
    status = np.where(in_custody, "custody", np.where(hospital, "hospital", "community"))

    # A case came under MAPPA before its first spell and its first custody period.
    first_entry = np.full(n, NO_DAY)
    np.minimum.at(first_entry, spells.individual, spells.entry)
    start = np.minimum(start, first_entry)
    start = np.where(np.isnan(custody_from), start, np.minimum(start, custody_from)).astype(np.int64)

    meetings, outcome = _meetings(np.random.default_rng([seed, 15]), spells, area,
                                  custody_from, release, release_level, mappa_end, window, end,
                                  cals, habits)
    # The case's level and level_from as its meetings left them; a closed Category 3
    # case is archived on the day of its `exit` meeting (one that has not reached it
    # within the window stays open).
    level = np.where(outcome["level"] > 0, outcome["level"], level)
    level_from = np.where(outcome["level"] > 0, outcome["level_from"], np.nan)
    mappa_end = np.where(cat3_closed, outcome["exit_day"], mappa_end)
    release_level = np.where(~np.isnan(release_level) & (release_level != 3) & (level >= 2),
                             level, release_level)

    # Chairs: each area's in proportion to its open Level 2/3 caseload; every case that
    # has had a meeting keeps the chair of its meetings.
    caseload = np.bincount(area[np.isnan(mappa_end) & (level >= 2)], minlength=len(areas))
    chairs = np.maximum(2, np.ceil(caseload / CASES_PER_CHAIR)).astype(np.int64)
    chair_idx = (rng.random(n) * chairs[area]).astype(np.int64) + 1
    slugs = np.array([_slug(a) for a in areas], dtype=object)
    chair = slugs[area] + "-chair-" + chair_idx.astype(str).astype(object)
    meetings["chair_id"] = chair[meetings["individual"].to_numpy()]
    chair = np.where(outcome["level"] > 0, chair, "")

    rosh = rng.choice(["low", "medium", "high", "very_high"], n, p=[0.35, 0.4, 0.2, 0.05])
    rosh = np.where(level == 3, "very_high", np.where(level == 2, np.where(rosh == "low", "high", rosh), rosh))
    refs = _ids("SYN-", n, 7)
    ind = pd.DataFrame({
        "ref": refs, "area": area_names[area], "category": category, "level": level,
        "status": status, "mappa_start": _fmt(start), "mappa_end": _fmt(mappa_end),
        "level_from": _fmt(level_from),
        "custody_from": _fmt(custody_from), "release_date": _fmt(release),
        "release_level": np.where(
            np.isnan(release_level), "", np.nan_to_num(release_level).astype("int64").astype(str)
        ),
        "chair_id": chair,
        "birth_year": rng.integers(1945, 2006, n),
        "gender": rng.choice(["male", "female"], n, p=[0.96, 0.04]),
        "ethnicity": rng.choice(["White Scottish", "White Other British", "White Other", "Asian Scottish",
                                 "Black Scottish", "Mixed", "Not known"], n,
                                p=[0.78, 0.08, 0.05, 0.03, 0.02, 0.02, 0.02]),
        "rosh": rosh,
    })

    # Half the ended custody spells travel as custody.csv history (as an export that
    # carries only the current period would leave them), the other half as the record's
    # own last period: the chains pause in them the same way.
    to_history = past & (g.random(n) < 0.5)
    custody = ind.loc[to_history, ["ref", "custody_from", "release_date", "release_level"]].copy()
    ind.loc[to_history, ["custody_from", "release_date", "release_level"]] = ""

    invitations = _invitations(np.random.default_rng([seed, 16]), meetings, category, slugs,
                               habits)
    meetings.insert(1, "ref", refs[meetings.pop("individual").to_numpy()])
    meetings["area"] = area_names[meetings["area"].to_numpy()]
    meetings = meetings.drop(columns=["day"])
    events = _events(np.random.default_rng([seed, 17]), refs, category, start, mappa_end,
                     hospital, window, end)
    return {
        "agencies.csv": _agencies(areas),
        "people.csv": _people(areas, chairs),
        "individuals.csv": ind,
        "custody.csv": custody.reset_index(drop=True),
        "meetings.csv": meetings,
        "invitations.csv": invitations,
        "events.csv": events,
        "local_holidays.csv": holidays,
        "areas.csv": pd.DataFrame({"area": list(areas), "population": [AREAS[a] for a in areas]}),
    }


class _Spells:
    """Level 2/3 spells, one row each: the individual; the day it began (`entry`); the level
    at the start and, from the first meeting on or after `change`, the level after it
    (`after`, 0: no change); for an ended spell, the day from which its next meeting is its
    last (`last`) and that meeting's outcome (`outcome_end`: '1' or 'exit'); whether its
    first meeting is the initial Level 3 meeting before a release (`release_entry`)."""

    def __init__(self, **cols):
        self.__dict__.update(cols)


def _spells(g, category, level, open_, cat3_closed, prison, start, window, end) -> _Spells:
    l2 = REVIEW_INTERVAL["2"]
    # Open cases at Level 2/3: their spell began about MEAN_STAY_DAYS ago (memoryless;
    # Level 3, the critical few, for shorter).
    cur = np.flatnonzero(open_ & (level >= 2))
    stay = np.where(level[cur] == 3, MEAN_L3_STAY_DAYS, MEAN_STAY_DAYS) - 30
    age = 30 + g.exponential(stay).astype(np.int64)
    entry = np.maximum(end - age, start[cur])
    # About one new entry in twelve waits too long for its first meeting.
    waited = (entry >= window) & (g.random(len(cur)) < 0.08)
    # Some came to their level at a review: up from Level 2 (half the Level 3 cases) or
    # down from Level 3 (1 in 25 Level 2 cases).
    changed = (g.random(len(cur)) < np.where(level[cur] == 3, 0.5, 0.04)) & ~waited
    changed &= entry + 150 < end
    change = np.where(changed, entry + 60 + (g.random(len(cur)) * np.maximum(
        0, end - entry - 150)).astype(np.int64), NO_DAY)
    # Ended spells: cases now at Level 1 (registered sex offenders and restricted
    # patients), about as many as enter in the window, and the closed Category 3 cases.
    flow = len(cur) / MEAN_STAY_DAYS * (end - window)
    level1 = np.flatnonzero(open_ & (level == 1) & (category != 3))
    ended_l1 = level1[g.random(len(level1)) < min(1.0, 0.85 * flow / max(1, len(level1)))]
    ended = np.concatenate([ended_l1, np.flatnonzero(cat3_closed)])
    last = g.integers(window + 30, end - 20, len(ended)) if len(ended) else np.zeros(0, np.int64)
    length = 2 * l2 + g.exponential(MEAN_STAY_DAYS - 2 * l2, len(ended)).astype(np.int64)
    ended_entry = np.maximum(last - length, start[ended])
    ended_waited = (ended_entry >= window) & (g.random(len(ended)) < 0.04)
    ended_first = np.where(level[ended] == 3, 3, np.where(g.random(len(ended)) < 0.15, 3, 2))
    # Most ended Level 3 spells of a now lower case stepped down to 2 halfway.
    ended_change = np.where((ended_first == 3) & (level[ended] != 3) & (g.random(len(ended)) < 0.75),
                            ended_entry + (last - ended_entry) // 2, NO_DAY)
    individual = np.concatenate([cur, ended])
    entry = np.concatenate([entry, ended_entry])
    first_level = np.concatenate([np.where(changed, 5 - level[cur], level[cur]), ended_first])
    waited = np.concatenate([waited, ended_waited])
    # Most who enter Level 3 directly (not stepped up at a review) do so at their initial
    # meeting before a release from prison: the release follows it.
    release_entry = ((first_level == 3) & (entry >= window) & ~waited & prison[individual]
                     & (g.random(len(individual)) < 0.6))
    release_entry[: len(cur)] &= ~changed
    return _Spells(
        individual=individual, entry=entry, first_level=first_level,
        release_entry=release_entry,
        after=np.concatenate([np.where(changed, level[cur], 0), np.where(ended_change < NO_DAY, 2, 0)]),
        change=np.concatenate([change, ended_change]),
        last=np.concatenate([np.full(len(cur), NO_DAY), last]),
        outcome_end=np.concatenate([np.full(len(cur), "", dtype=object),
                                    np.where(category[ended] == 3, "exit", "1").astype(object)]),
        # A spell begun before the window: its meetings before the window are not exported.
        old=entry < window,
        waited=waited,
    )


def _meetings(g, sp: _Spells, area, custody_from, release, release_level, mappa_end,
              window, end, cals, habits) -> tuple[pd.DataFrame, dict]:
    """The meetings of every spell, one vectorised step per meeting slot (each spell's next
    meeting), and each individual's level, level_from and exit day as they leave them."""
    n, m = len(area), len(sp.individual)
    who = sp.individual
    a = area[who]
    # A change of level before the window happened before the history: the spell is at
    # its later level all through the window.
    early = sp.change < window
    lvl = np.where(early, sp.after, sp.first_level).astype(np.int64)
    after = np.where(early, 0, sp.after)
    change = np.where(early, NO_DAY, sp.change)
    interval = np.where(lvl == 3, REVIEW_INTERVAL["3"], REVIEW_INTERVAL["2"])
    # First meeting: the entry day (a working day), or much later for an entry that waited;
    # an old spell's chain runs from its last meeting before the window (p0, not exported:
    # its level_from) to a first review in the window.
    entry = _by_area(_roll_forward, a, sp.entry, cals)
    p0 = _by_area(_roll_back, a, window - g.integers(0, interval - 14, m), cals)
    first = np.where(sp.old, p0 + interval - g.integers(0, 15, m),
                     np.where(sp.waited, entry + interval + g.integers(7, 120, m), entry))
    day = _by_area(_roll_back, a, first, cals)
    level_from = np.where(sp.old, p0, entry).astype(np.int64)
    kind0 = np.where(sp.old, "review", "initial")
    cf = np.nan_to_num(custody_from[who], nan=float(NO_DAY)).astype(np.int64)
    rel = np.nan_to_num(release[who], nan=float(NO_DAY)).astype(np.int64)
    rel_level = np.nan_to_num(release_level[who], nan=1).astype(np.int64)
    stop = np.minimum(np.nan_to_num(mappa_end[who], nan=float(end)).astype(np.int64), end)
    finite = sp.last < NO_DAY

    changed = np.zeros(m, dtype=bool)
    pre_next = sp.release_entry.copy()   # the spell's next meeting is its pre-release one
    late_next = np.zeros(m, dtype=bool)  # the spell's next meeting is a late review
    exit_day = np.full(m, np.nan)
    active = day <= stop
    rows: list[tuple] = []
    for j in range(int((end - window) // 14) + 64):
        s = np.flatnonzero(active)
        if not s.size:
            break
        k = len(s)
        d, level_now, rel_s = day[s], lvl[s], rel[s]
        in_custody = (cf[s] <= d) & (d < rel_s)
        pre = pre_next[s]
        l3_pre = pre & (rel_level[s] == 3)
        # The initial Level 3 meeting before a release is a community meeting (SPEC 3,
        # custody-initial-l3), though the person is still in custody.
        kind = np.where(j == 0, kind0[s], np.where(l3_pre, "initial", "review"))
        setting = np.where(in_custody & ~l3_pre, "custody", "community")
        change_now = (after[s] > 0) & ~changed[s] & (d >= change[s])
        decided = np.where(change_now, after[s], level_now)
        iv = np.where(decided == 3, REVIEW_INTERVAL["3"], REVIEW_INTERVAL["2"])
        late = g.random(k) < habits.p("review_late", REVIEW_LATE, a[s], d)
        nxt = d + iv + np.where(late, g.integers(1, 26, k), g.integers(-14, 1, k))
        # Custody: a meeting in prison every six months or so, then the pre-release meeting
        # (Level 3: four to eight weeks before; now and then later than four weeks), then
        # the first meeting after release.
        lead = np.where(rel_level[s] == 3, g.integers(28, 59, k), g.integers(30, 71, k))
        lead = np.where(g.random(k) < 0.08, g.integers(5, 28, k), lead)
        pre_day = rel_s - lead
        cadence = d + g.integers(150, 211, k)
        released = rel_s + g.integers(0, 8, k)
        to_pre = in_custody & ~pre & (nxt < rel_s)
        pre_soon = pre_day <= d + 14
        next_is_pre = to_pre & ~pre_soon & (cadence >= pre_day)
        goes_in = (cf[s] > d) & (cf[s] <= nxt)
        nxt = np.select(
            [pre & in_custody & (nxt < rel_s), to_pre & pre_soon, to_pre, goes_in],
            [released, released, np.minimum(cadence, pre_day), cf[s] + g.integers(30, 121, k)],
            nxt)
        late &= ~(in_custody | goes_in)
        # On a working day of the area; a very few urgent Level 3 meetings keep their day.
        nxt = np.maximum(nxt, d + 10)
        rolled = _by_area(_roll_back, a[s], nxt, cals)
        nxt = np.where((decided == 3) & (g.random(k) < 0.04), nxt, rolled)
        # An ended spell's last meeting decides its outcome ('1' or 'exit'), also when the
        # window ends before its planned end.
        is_last = finite[s] & ((d >= sp.last[s]) | (nxt > stop[s]))
        outcome = np.where(is_last, sp.outcome_end[s], decided.astype(str).astype(object))
        rows.append((s, d, level_now, kind, setting, outcome, late_next[s]))
        ch = change_now & ~is_last
        changed[s] |= ch
        level_from[s] = np.where(ch, d, level_from[s])
        lvl[s] = np.where(is_last, level_now, decided)
        exit_day[s] = np.where(is_last & (outcome == "exit"), d, np.nan)
        pre_next[s] = next_is_pre
        late_next[s] = late
        day[s] = nxt
        active[s] = ~is_last & (nxt <= stop[s])

    cols = [np.concatenate(c) if rows else np.zeros(0) for c in zip(*rows)] or [np.zeros(0)] * 7
    spell, date, mlevel, kind, setting, outcome, late_review = cols
    spell = spell.astype(np.int64)
    order = np.lexsort((who[spell], date))
    spell, date = spell[order], date[order].astype(np.int64)
    ind = who[spell]
    mt = pd.DataFrame({
        "meeting_id": _ids("M", len(order), 8),
        "individual": ind, "area": area[ind], "date": date,
        "level": mlevel[order].astype(np.int64), "kind": kind[order], "setting": setting[order],
        "chair_id": "", "outcome_level": outcome[order],
    })
    late_review = late_review[order].astype(bool)
    _paperwork(g, mt, late_review, end, cals, habits)

    current = ~finite | (sp.outcome_end == "exit")
    out = {"level": np.zeros(n, dtype=np.int64), "level_from": np.full(n, np.nan),
           "exit_day": np.full(n, np.nan)}
    out["level"][who[current]] = lvl[current]
    out["level_from"][who[current]] = level_from[current]
    out["exit_day"][who[current]] = exit_day[current]
    return mt, out


def _paperwork(g, mt: pd.DataFrame, late_review, end, cals, habits) -> None:
    """Minutes, RMP, disclosure and reason of each meeting, in working days of its area."""
    k = len(mt)
    a, date = mt["area"].to_numpy(), mt["date"].to_numpy()
    late = g.random(k) < habits.p("minutes_late", MINUTES_LATE, a, date)
    wd = np.where(late, g.integers(11, 30, k), g.integers(1, 10, k))
    minutes = _by_area(_add_working, a, date, cals, wd).astype(float)
    rmp = _by_area(_add_working, a, minutes.astype(np.int64), cals,
                   np.where(g.random(k) < 0.7, 0, g.integers(1, 4, k))).astype(float)
    minutes = np.where((minutes > end) | (g.random(k) < 0.004), np.nan, minutes)
    rmp = np.where((rmp > end) | (g.random(k) < 0.008), np.nan, rmp)
    blank = g.random(k) < habits.p("no_disclosure", 0.02, a, date)
    disclosure = np.where(blank, "", np.where(g.random(k) < 0.015, "no", "yes"))
    reason = np.where(((late | late_review) & (g.random(k) < 0.5)) | (g.random(k) < 0.01),
                      g.choice(np.array(REASON_CODES, dtype=object), k), "")
    mt["day"] = date
    mt["date"] = _fmt(date)
    mt["minutes_issued"] = _fmt(minutes)
    mt["rmp_ratified"] = _fmt(rmp)
    mt["disclosure_considered"] = disclosure
    mt["reason"] = reason


def _agencies(areas) -> pd.DataFrame:
    rows = [
        ("police", "Police Scotland", "ra", "police", "mappa@police.example"),
        ("sps", "Scottish Prison Service", "ra", "sps", "rmt@sps.example"),
        ("scra", "Scottish Children's Reporter Administration", "dtc", "scra", "reporter@scra.example"),
        ("em-provider", "Electronic Monitoring Scotland", "dtc", "electronic_monitoring", "ops@em.example"),
        ("social-security", "Social Security Scotland", "dtc", "social_security", "mappa@socialsecurity.example"),
    ]
    for area in areas:
        s = _slug(area)
        rows += [
            (f"cbsw-{s}", f"{area} Community Based Social Work", "ra", "social_work", f"cjsw@{s}.example"),
            (f"nhs-{s}", f"NHS {area}", "dtc", "health", f"forensic@nhs-{s}.example"),
            (f"housing-{s}", f"{area} Housing Association", "dtc", "housing", f"mappa@housing-{s}.example"),
        ]
    return pd.DataFrame(rows, columns=["agency", "name", "kind", "role", "email"])


def _people(areas, chairs) -> pd.DataFrame:
    rows = []
    for area, count in zip(areas, chairs):
        s = _slug(area)
        for i in range(1, int(count) + 1):
            rows.append((f"{s}-chair-{i}", f"Chair {i} {area}", f"chair{i}@{s}.example",
                         f"U{s[:3].upper()}CH{i:03d}", "chair", area, ""))
        rows += [
            (f"{s}-sog", f"SOG Chair {area}", f"sog@{s}.example", f"U{s[:3].upper()}SOG", "sog_chair", area, ""),
            (f"{s}-coord", f"Co-ordinator {area}", f"coord@{s}.example", f"U{s[:3].upper()}CRD", "coordinator", area, ""),
            (f"{s}-staff", f"Staff {area}", f"staff@{s}.example", f"U{s[:3].upper()}STF", "staff", area, ""),
            (f"{s}-housing-contact", f"Housing Contact {area}", f"contact@housing-{s}.example", "",
             "agency_contact", area, f"housing-{s}"),
        ]
    return pd.DataFrame(
        rows, columns=["person_id", "name", "email", "slack_user_id", "roles", "area", "agency"]
    )


def _invitations(g, meetings: pd.DataFrame, category, slugs, habits) -> pd.DataFrame:
    """Police and the area's social work at every meeting, the prison service at those in
    custody, the Health Board at every restricted patient's (it is their RA) and up to two
    Duty to Co-operate agencies; attendance and reports by each agency's habits."""
    cols = ["meeting_id", "agency", "attendance", "seniority_ok", "written_contribution", "reason"]
    k = len(meetings)
    if k == 0:
        return pd.DataFrame(columns=cols)
    roles = _Habits.ROLES
    row = np.arange(k)
    cat = category[meetings["individual"].to_numpy()]
    a = meetings["area"].to_numpy().astype(np.int64)
    slug = slugs[a]
    custody = meetings["setting"].to_numpy() == "custody"
    # (meeting row, agency id, role index) of each invitation
    picks = [(row, np.full(k, "police", dtype=object), roles.index("police")),
             (row, "cbsw-" + slug, roles.index("social_work")),
             (row[custody], np.full(int(custody.sum()), "sps", dtype=object), roles.index("sps")),
             (row[cat == 2], "nhs-" + slug[cat == 2], roles.index("health"))]
    extra = g.integers(0, 3, k)
    dtc = {"housing": "housing-", "health": "nhs-", "electronic_monitoring": "em-provider",
           "scra": "scra", "social_security": "social-security"}
    first = g.integers(0, len(DTC_ROLES), k)
    for slot in range(2):
        pick = extra > slot
        which = (first + slot) % len(DTC_ROLES)
        for r, role in enumerate(DTC_ROLES):
            rows = pick & (which == r)
            prefix = dtc[role]
            ids = prefix + slug[rows] if prefix.endswith("-") else np.full(int(rows.sum()), prefix, dtype=object)
            picks.append((row[rows], ids, roles.index(role)))
    mrow = np.concatenate([p[0] for p in picks])
    inv = pd.DataFrame({"row": mrow, "agency": np.concatenate([p[1] for p in picks]),
                        "role": np.concatenate([np.full(len(p[0]), p[2]) for p in picks])})
    inv = inv.drop_duplicates(["row", "agency"]).sort_values(["row", "role", "agency"], kind="stable")
    mrow, role = inv["row"].to_numpy(), inv["role"].to_numpy()
    n = len(inv)
    date = meetings["day"].to_numpy()[mrow]
    ia = a[mrow]
    base = np.array([ABSENT[r] for r in roles])[role]
    absent = g.random(n) < habits.p("absent", base, ia, date, role)
    how = g.choice(np.array(["in_person", "video", "phone"], dtype=object), n, p=[0.6, 0.3, 0.1])
    attendance = np.where(absent, "absent", how)
    not_senior = g.random(n) < habits.p("not_senior", np.array([NOT_SENIOR[r] for r in roles])[role],
                                        ia, date, role)
    senior = np.where(g.random(n) < 0.015, "", np.where(not_senior, "no", "yes"))
    no_report = g.random(n) < habits.p("no_report", np.array([NO_REPORT[r] for r in roles])[role],
                                       ia, date, role)
    written = np.where(g.random(n) < 0.03, "", np.where(no_report, "no", "yes"))
    return pd.DataFrame({
        "meeting_id": meetings["meeting_id"].to_numpy()[mrow],
        "agency": inv["agency"].to_numpy(),
        "attendance": attendance,
        "seniority_ok": np.where(absent, "", senior),
        "written_contribution": np.where(absent, written, ""),
        "reason": np.where(absent & (g.random(n) < 0.6),
                           g.choice(np.array(REASON_CODES, dtype=object), n), ""),
    })


# Events per person per year at risk (national overview 2023-24: about 390 notification
# breaches and 254 further group 1 or 2 crimes among 6,878 registered sex offenders; a
# dozen wanted on 31 March), with the categories each applies to.
EVENT_RATES = (
    ("notification_breach", 0.06, (1,)),
    ("wanted", 0.005, (1, 3)),
    ("missing", 0.002, (1, 2, 3)),
    ("further_sexual_offence", 0.01, (1, 3)),
    ("further_violent_offence", 0.008, (1, 2, 3)),
    ("order_applied", 0.006, (1,)),
    ("order_on_conviction", 0.012, (1,)),
    ("order_breach", 0.004, (1,)),
    ("licence_recall", 0.008, (1, 3)),
)


def _events(g, refs, category, start, mappa_end, hospital, window, end) -> pd.DataFrame:
    lo = np.maximum(start, window)
    hi = np.minimum(np.nan_to_num(mappa_end, nan=float(end)), end).astype(np.int64)
    exposure = np.maximum(hi - lo, 0) / 365.0
    parts = []
    for event, rate, cats in EVENT_RATES:
        eligible = np.isin(category, cats) & ~(hospital & (event != "missing"))
        count = g.poisson(rate * exposure * eligible)
        idx = np.repeat(np.arange(len(refs)), count)
        day = lo[idx] + (g.random(len(idx)) * (hi[idx] - lo[idx])).astype(np.int64)
        otype = np.full(len(idx), "", dtype=object)
        if event == "order_applied":
            otype = g.choice(np.array(["SHPO", "SRO", "FTO"], dtype=object), len(idx), p=[0.7, 0.2, 0.1])
            # Decided a week to two months later: mostly granted.
            decided = day + g.integers(7, 60, len(idx))
            done = decided <= hi[idx]
            parts.append((idx[done], decided[done], np.where(
                g.random(len(idx)) < 0.85, "order_granted", "order_refused")[done], otype[done]))
        elif event in ("order_on_conviction", "order_breach"):
            otype = np.full(len(idx), "SHPO", dtype=object)
        elif event in ("wanted", "missing"):
            # Most are located: the missing within days, the wanted within months.
            found = g.random(len(idx)) < (0.95 if event == "missing" else 0.88)
            lag = g.integers(1, 22, len(idx)) if event == "missing" else g.integers(1, 240, len(idx))
            at = day + lag
            ok = found & (at <= end)
            parts.append((idx[ok], at[ok], np.full(int(ok.sum()), "located", dtype=object),
                          np.full(int(ok.sum()), "", dtype=object)))
        parts.append((idx, day, np.full(len(idx), event, dtype=object), otype))
    idx, day, event, otype = (np.concatenate(c) for c in zip(*parts))
    ev = pd.DataFrame({"ref": refs[idx], "date": day, "event": event, "order_type": otype})
    ev = ev.drop_duplicates(["ref", "date", "event"])
    ev = ev.sort_values(["date", "ref", "event"], kind="stable").reset_index(drop=True)
    ev["date"] = _fmt(ev["date"].to_numpy())
    return ev


def write_demo_data(
    directory: Path, individuals: int = 7000, years: int = 5, seed: int = 1,
    until: dt.date | None = None, areas=None,
) -> dict[str, int]:
    directory.mkdir(parents=True, exist_ok=True)
    tables = generate(individuals, years, seed, until, areas)
    tables["meetings.csv"] = tables["meetings.csv"].drop(columns=["area"])
    for name, df in tables.items():
        df.to_csv(directory / name, index=False)
    return {name.removesuffix(".csv"): len(df) for name, df in tables.items()}
