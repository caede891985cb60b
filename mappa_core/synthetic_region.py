"""Synthetic MAPPA data in the CSV formats of SPEC section 5 (no real people).

Scottish proportions (SPEC section 2): most registered sex offenders at Level 1, a few
percent at Level 2, a handful at Level 3; restricted patients mostly Level 1 with some at
Level 2/3; Category 3 only at Level 2/3. Meetings follow the review cadence with
realistic lateness, absences, missing contributions and late minutes; custody releases
get pre-release meetings. The output depends only on the arguments (seed and `until`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from .rules.deadlines import REVIEW_INTERVAL
from .rules.schema import REASON_CODES

REGIONS = (
    "Ayrshire", "Fife", "Forth Valley", "Glasgow", "Grampian", "Highland and Islands",
    "Lanarkshire", "Lothian and Borders", "North Strathclyde", "Tayside",
)
DTC_ROLES = ("housing", "health", "electronic_monitoring", "scra", "social_security")


def _slug(area: str) -> str:
    return area.lower().replace(" and ", "-").replace(" ", "-")


def _areas_for(individuals: int) -> tuple[str, ...]:
    # One region up to a regional caseload; past that, spread over all ten.
    return REGIONS[4:5] if individuals <= 20000 else REGIONS


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


def _people(areas, chairs_per_area: int) -> pd.DataFrame:
    rows = []
    for area in areas:
        s = _slug(area)
        for i in range(1, chairs_per_area + 1):
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


def _fmt(days: np.ndarray) -> np.ndarray:
    """Day numbers (NaN for blank) as ISO strings."""
    out = np.full(len(days), "", dtype=object)
    ok = ~np.isnan(days)
    out[ok] = (np.datetime64("1970-01-01") + days[ok].astype(np.int64)).astype(str)
    return out


def generate(
    individuals: int = 7000, years: int = 5, seed: int = 1, until: dt.date | None = None
) -> dict[str, pd.DataFrame]:
    """The CSV tables of a synthetic region (or all ten regions past 20,000 people)."""
    rng = np.random.default_rng(seed)
    until = until or dt.date(2026, 11, 26)
    end = (np.datetime64(until, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64)
    window = end - 365 * years
    n = individuals
    areas = _areas_for(n)
    chairs_per_area = max(2, n // len(areas) // 600)

    category = rng.choice([1, 2, 3], size=n, p=[0.92, 0.045, 0.035])
    u = rng.random(n)
    level = np.where(
        category == 1, np.select([u < 0.972, u < 0.9985], [1, 2], 3),
        np.where(category == 2, np.select([u < 0.70, u < 0.94], [1, 2], 3),
                 np.where(u < 0.82, 2, 3)),
    )
    area = np.array(areas, dtype=object)[rng.integers(0, len(areas), n)]
    start = end - rng.integers(30, 365 * 15, n)
    archived = rng.random(n) < 0.08
    mappa_end = np.where(archived, end - rng.integers(1, 365 * years, n), np.nan)
    mappa_end = np.where(mappa_end <= start, np.nan, mappa_end)

    status_u = rng.random(n)
    in_custody = (status_u < 0.27) & (category != 2) & np.isnan(mappa_end)
    hospital = category == 2
    custody_from = np.where(in_custody, end - rng.integers(60, 365 * 6, n), np.nan)
    release = np.where(in_custody, end + rng.integers(-20, 365 * 2, n), np.nan)
    # Some community cases had a custody spell inside the window that has ended.
    # (Most Level 3 ones, so that the release indicator, custody-initial-l3, has
    # releases to count in every quarter of the window: Level 3 cases are few.)
    past = (~in_custody) & (~hospital) & (rng.random(n) < np.where(level == 3, 0.9, 0.04))
    past_from = end - rng.integers(200, 365 * years, n)
    custody_from = np.where(past, past_from, custody_from)
    release = np.where(past, past_from + rng.integers(60, 180, n), release)
    release = np.where(release > end, release, np.where(in_custody, end + rng.integers(5, 200, n), release))
    release_level = np.where(~np.isnan(release), np.where(level >= 2, level, 1), np.nan)
    status = np.where(in_custody, "custody", np.where(hospital, "hospital", "community"))
    start = np.minimum(start, np.where(np.isnan(custody_from), start, custody_from))

    # Entry to Level 2/3 (level_from): the day the current level was decided, at the first
    # meeting in the window. About one case in ten that entered within the window waited
    # too long for that first meeting (a review interval and up to four months more), and
    # the most recent of them have had none yet. Drawn from their own stream, so the rest
    # of the data is the same as without them.
    entry_rng = np.random.default_rng([seed, 14])
    managed = level >= 2
    level_from = np.where(managed, np.maximum(start, window), np.nan)
    waited = managed & (start >= window) & (entry_rng.random(n) < 0.1)
    first_interval = np.where(level == 3, REVIEW_INTERVAL["3"], REVIEW_INTERVAL["2"])
    first_meeting = np.where(
        waited, level_from + first_interval + entry_rng.integers(7, 120, n), level_from)

    chair_idx = rng.integers(1, chairs_per_area + 1, n)
    chair = np.array([f"{_slug(a)}-chair-{i}" for a, i in zip(area, chair_idx)], dtype=object)
    chair = np.where(level >= 2, chair, "")
    rosh = rng.choice(["low", "medium", "high", "very_high"], n, p=[0.35, 0.4, 0.2, 0.05])
    rosh = np.where(level == 3, "very_high", np.where(level == 2, np.where(rosh == "low", "high", rosh), rosh))
    refs = np.array([f"SYN-{i:07d}" for i in range(1, n + 1)], dtype=object)

    ind = pd.DataFrame({
        "ref": refs, "area": area, "category": category, "level": level, "status": status,
        "mappa_start": _fmt(start.astype(float)), "mappa_end": _fmt(mappa_end),
        "level_from": _fmt(level_from.astype(float)),
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
    to_history = past & (entry_rng.random(n) < 0.5)
    custody = ind.loc[to_history, ["ref", "custody_from", "release_date", "release_level"]].copy()
    ind.loc[to_history, ["custody_from", "release_date", "release_level"]] = ""

    meetings = _meetings(rng, refs, level, area, chair, first_meeting, mappa_end, custody_from,
                         release, release_level, window, end)
    invitations = _invitations(rng, meetings, category_of=dict(zip(refs, category)))
    events = _events(rng, refs, category, start, window, end)
    return {
        "agencies.csv": _agencies(areas),
        "people.csv": _people(areas, chairs_per_area),
        "individuals.csv": ind,
        "custody.csv": custody.reset_index(drop=True),
        "meetings.csv": meetings,
        "invitations.csv": invitations,
        "events.csv": events,
    }


def _meetings(rng, refs, level, area, chair, first_meeting, mappa_end, custody_from, release,
              release_level, window, end) -> pd.DataFrame:
    managed = np.flatnonzero(level >= 2)
    cols: dict[str, list] = {k: [] for k in ("ref", "area", "date", "level", "kind", "setting",
                                             "chair_id", "outcome_level")}
    jitter = rng.integers(-14, 1, size=(len(managed), 200))
    late = rng.random((len(managed), 200)) < 0.05
    late_by = rng.integers(1, 21, size=(len(managed), 200))
    for row, i in enumerate(managed):
        interval = REVIEW_INTERVAL["3"] if level[i] == 3 else REVIEW_INTERVAL["2"]
        day = int(first_meeting[i])
        stop = int(min(end, mappa_end[i])) if not np.isnan(mappa_end[i]) else int(end)
        cf = custody_from[i]
        rel = release[i]
        kind = "initial"
        pre_release = False
        j = 0
        while day <= stop and j < 200:
            in_custody = not np.isnan(cf) and cf <= day < (rel if not np.isnan(rel) else 1e12)
            cols["ref"].append(refs[i])
            cols["area"].append(area[i])
            cols["date"].append(day)
            cols["level"].append(int(level[i]))
            cols["kind"].append(kind)
            # The initial Level 3 meeting before a release is a community meeting (SPEC
            # section 3, custody-initial-l3), though the person is still in custody.
            cols["setting"].append("custody" if in_custody and not pre_release else "community")
            pre_release = False
            cols["chair_id"].append(chair[i])
            cols["outcome_level"].append(str(level[i]))
            kind = "review"
            nxt = day + interval + int(jitter[row, j])
            if late[row, j]:
                nxt = day + interval + int(late_by[row, j])
            if in_custody and not np.isnan(rel) and nxt < rel:
                # In custody, the next meeting is the pre-release one (L3 four weeks before).
                lead = 28 + int(rng.integers(0, 30)) if release_level[i] == 3 else 60
                if rng.random() < 0.1:
                    lead = int(rng.integers(5, 28))
                nxt = max(nxt, int(rel) - lead)
                if nxt > end:
                    break
                if release_level[i] == 3:
                    kind, pre_release = "initial", True
            day = nxt
            j += 1
    m = pd.DataFrame(cols)
    k = len(m)
    m.insert(0, "meeting_id", [f"M{i:08d}" for i in range(1, k + 1)])
    date = m["date"].to_numpy().astype(float)
    minutes = date + rng.integers(2, 13, k) + np.where(rng.random(k) < 0.07, rng.integers(5, 20, k), 0)
    rmp = minutes + rng.integers(0, 3, k)
    minutes = np.where((minutes > end) | (rng.random(k) < 0.01), np.nan, minutes)
    rmp = np.where((rmp > end) | (rng.random(k) < 0.02), np.nan, rmp)
    disclosure = rng.choice(["yes", "no", ""], k, p=[0.95, 0.02, 0.03])
    reason = np.where(rng.random(k) < 0.06, rng.choice(REASON_CODES, k), "")
    m["date"] = _fmt(date)
    m["minutes_issued"] = _fmt(minutes)
    m["rmp_ratified"] = _fmt(rmp)
    m["disclosure_considered"] = disclosure
    m["reason"] = reason
    return m[["meeting_id", "ref", "area", "date", "level", "kind", "setting", "chair_id", "outcome_level",
              "minutes_issued", "rmp_ratified", "disclosure_considered", "reason"]]


def _invitations(rng, meetings: pd.DataFrame, category_of: dict) -> pd.DataFrame:
    k = len(meetings)
    if k == 0:
        return pd.DataFrame(columns=["meeting_id", "agency", "attendance", "seniority_ok",
                                     "written_contribution", "reason"])
    mid = meetings["meeting_id"].to_numpy()
    custody = meetings["setting"].to_numpy() == "custody"
    area_slug = np.array([_slug(a) for a in meetings["area"]], dtype=object)
    ids = [mid, mid]
    agencies = [np.full(k, "police", dtype=object), "cbsw-" + area_slug]
    ids.append(mid[custody])
    agencies.append(np.full(int(custody.sum()), "sps", dtype=object))
    extra = rng.integers(0, 3, k)
    for slot in range(2):
        pick = extra > slot
        role = rng.choice(len(DTC_ROLES), k)
        role = (role + slot) % len(DTC_ROLES)
        names = np.select(
            [role == 0, role == 1, role == 2, role == 3],
            ["housing-" + area_slug, "nhs-" + area_slug, np.full(k, "em-provider", dtype=object),
             np.full(k, "scra", dtype=object)],
            np.full(k, "social-security", dtype=object),
        )
        ids.append(mid[pick])
        agencies.append(names[pick])
    inv = pd.DataFrame({"meeting_id": np.concatenate(ids), "agency": np.concatenate(agencies)})
    inv = inv.drop_duplicates(["meeting_id", "agency"]).reset_index(drop=True)
    n = len(inv)
    attendance = rng.choice(["in_person", "video", "phone", "absent"], n, p=[0.58, 0.22, 0.08, 0.12])
    absent = attendance == "absent"
    inv["attendance"] = attendance
    inv["seniority_ok"] = np.where(absent, "", rng.choice(["yes", "no", ""], n, p=[0.94, 0.04, 0.02]))
    inv["written_contribution"] = np.where(absent, rng.choice(["yes", "no", ""], n, p=[0.78, 0.18, 0.04]), "")
    inv["reason"] = np.where(absent & (rng.random(n) < 0.6), rng.choice(REASON_CODES, n), "")
    return inv


def _events(rng, refs, category, start, window, end) -> pd.DataFrame:
    n = len(refs)
    years = (end - window) / 365
    rows = []
    kinds = [
        ("notification_breach", 0.02, category == 1),
        ("wanted", 0.004, np.ones(n, bool)),
        ("missing", 0.006, np.ones(n, bool)),
        ("further_sexual_offence", 0.004, np.ones(n, bool)),
        ("further_violent_offence", 0.004, np.ones(n, bool)),
        ("order_applied", 0.01, category == 1),
        ("licence_recall", 0.01, np.ones(n, bool)),
        ("order_breach", 0.004, category == 1),
    ]
    for event, rate, eligible in kinds:
        hit = eligible & (rng.random(n) < rate * years)
        idx = np.flatnonzero(hit)
        lo = np.maximum(start[idx], window)
        days = lo + (rng.random(len(idx)) * (end - lo)).astype(np.int64)
        for i, d in zip(idx, days):
            rows.append((refs[i], d, event, ""))
            if event == "missing" and rng.random() < 0.85:
                rows.append((refs[i], min(d + int(rng.integers(1, 30)), end), "located", ""))
            if event == "order_applied":
                outcome = rng.choice(["order_granted", "order_refused"], p=[0.85, 0.15])
                otype = str(rng.choice(["SHPO", "SRO", "FTO"], p=[0.7, 0.2, 0.1]))
                rows[-1] = (refs[i], d, event, otype)
                rows.append((refs[i], min(d + int(rng.integers(7, 60)), end), str(outcome), otype))
    ev = pd.DataFrame(rows, columns=["ref", "date", "event", "order_type"])
    ev = ev.drop_duplicates(["ref", "date", "event"])
    ev["date"] = _fmt(ev["date"].to_numpy().astype(float))
    return ev.sort_values(["date", "ref", "event"]).reset_index(drop=True)


def write_demo_data(
    directory: Path, individuals: int = 7000, years: int = 5, seed: int = 1,
    until: dt.date | None = None,
) -> dict[str, int]:
    directory.mkdir(parents=True, exist_ok=True)
    tables = generate(individuals, years, seed, until)
    tables["meetings.csv"] = tables["meetings.csv"].drop(columns=["area"])
    for name, df in tables.items():
        df.to_csv(directory / name, index=False)
    return {name.removesuffix(".csv"): len(df) for name, df in tables.items()}
