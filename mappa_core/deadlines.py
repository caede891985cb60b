"""What is due when: the one implementation of every deadline rule of SPEC section 3.

The indicators, the nudge planner and `mappa due` all read these frames; no other
module computes a due date. Every function is pure: records and an `as_of` date in,
frames out. `as_of` means "as the records stood on that date": meetings, minutes and
RMP dates and archive dates after it are treated as not having happened yet.

Dates inside are int64 day numbers (days since 1970-01-01) so that whole regions are
handled with numpy arithmetic, never a Python loop per case.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .calendar import add_working_days_by_area
from .queries import Records
from .schema import ATTENDED

REVIEW_INTERVAL = {"2": 84, "3": 42}  # outcome level -> days to the next review
PRE_RELEASE_DAYS = 28
MINUTES_WORKING_DAYS = 10
NEVER = np.int64(10**9)  # a day number later than any real date
EPOCH = np.datetime64("1970-01-01", "D")


def day_number(day: dt.date) -> int:
    return int((np.datetime64(day, "D") - EPOCH).astype(np.int64))


def _days(values, missing: int) -> np.ndarray:
    arr = np.asarray(values, dtype="datetime64[D]")
    out = arr.astype(np.int64)
    out[np.isnat(arr)] = missing
    return out


def _to_dates(days: np.ndarray) -> np.ndarray:
    """Day numbers back to datetime64[s]; NEVER (or beyond) becomes NaT."""
    days = np.asarray(days, dtype=np.int64)
    out = (EPOCH + days.clip(max=NEVER - 1)).astype("datetime64[s]")
    out[days >= NEVER] = np.datetime64("NaT")
    return out


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`frame.sort_values(keys, kind="stable")` for key columns without nulls (text and
    dates), by numpy's lexsort: pandas' multi-key sort of text columns costs twice as much."""
    cols = [frame[k].to_numpy() for k in reversed(keys)]
    cols = [c.astype(np.int64) if c.dtype.kind == "M" else c.astype(str) for c in cols]
    return frame.iloc[np.lexsort(cols)] if len(frame) else frame


def _yes(values: pd.Series) -> np.ndarray:
    """A recorded yes; no and blank (unknown) are both not yes."""
    return values.fillna(False).to_numpy(dtype=bool)


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -((-a) // b)


def as_stood(records: Records, as_of: dt.date) -> Records:
    """The records as they stood on `as_of` (later meetings, minutes, archives unseen)."""
    cutoff = np.datetime64(as_of, "s")
    # New frames over the same data: pandas copies a column only when it is written
    # (copy-on-write), and only columns with a date after as_of are.
    meetings = records.meetings[records.meetings["date"] <= cutoff]
    for col in ("minutes_issued", "rmp_ratified"):
        later = meetings[col] > cutoff
        if later.any():
            meetings.loc[later, col] = pd.NaT
    individuals = records.individuals.copy(deep=False)
    later = individuals["mappa_end"] > cutoff
    if later.any():
        individuals.loc[later, "mappa_end"] = pd.NaT
    invitations = records.invitations[
        records.invitations["meeting_id"].isin(meetings["meeting_id"])
    ]
    return Records(
        individuals, meetings, invitations, records.agencies, records.people,
        records.events, records.local_holidays, records.area,
    )


# --------------------------------------------------------------------------- reviews

REVIEW_COLUMNS = [
    "ref", "area", "level", "due", "status", "meeting_id", "done", "reason", "chair_id",
]


def review_items(records: Records, as_of: dt.date) -> pd.DataFrame:
    """Every review due date of every chain, up to each chain's first pending one.

    Columns: ref, area, level (2 or 3: the chain), due, status (`met`, `late` or
    `pending`), meeting_id / done (the meeting that met it or that came late, if any),
    reason (that meeting's recorded reason), chair_id (the case's chair).
    Expects records as they stood on `as_of` (see `as_stood`).
    """
    m = _sorted(records.meetings, ["ref", "date", "meeting_id"])
    if m.empty:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    ind = records.individuals.set_index("ref")
    refs = m["ref"].to_numpy()
    outcome = m["outcome_level"].fillna(m["level"].astype(str)).astype(str).to_numpy()
    interval = np.select([outcome == "2", outcome == "3"], [84, 42], 0).astype(np.int64)

    same_next = np.r_[refs[1:] == refs[:-1], False]
    start = _days(m["date"], 0)
    nxt = np.r_[start[1:], NEVER]
    nxt = np.where(same_next, nxt, NEVER)
    next_pos = np.where(same_next, np.arange(len(m)) + 1, -1)

    info = ind.reindex(refs)
    end = _days(info["mappa_end"], NEVER)
    cust = _days(info["custody_from"], NEVER)
    release = _days(info["release_date"], NEVER)
    area = info["area"].to_numpy()
    chair = info["chair_id"].to_numpy()
    a = np.int64(day_number(as_of))

    live = interval > 0
    iv = np.where(live, interval, 1)
    d0 = start + iv

    def first_k_at_or_after(limit: np.ndarray, first: np.ndarray) -> np.ndarray:
        k = _ceil_div(limit - first, iv).clip(min=0)
        return np.where(limit >= NEVER, NEVER, k)

    # Phase 1: due dates d0 + k*I until the first that meets a limit. Priority when two
    # limits fall on one due date follows the rule order: archive, custody, meeting, as_of.
    k_end = first_k_at_or_after(end, d0)
    k_next = first_k_at_or_after(nxt, d0)
    k_asof = ((a - d0) // iv + 1).clip(min=0)
    k_c = first_k_at_or_after(cust, d0)
    k_cust = np.where((k_c < NEVER) & (d0 + k_c * iv < release), k_c, NEVER)
    k1 = np.minimum.reduce([k_end, k_cust, k_next, k_asof])
    stop1 = np.select(
        [k1 == k_end, k1 == k_cust, k1 == k_next], ["end", "custody", "meeting"], "asof"
    )

    # Phase 2: after a custody pause the next due date is release + I; a meeting held
    # after release meets it, one held while still in custody restarts the chain instead.
    paused = live & (stop1 == "custody") & (release < NEVER)
    d2 = release + iv
    k2_end = first_k_at_or_after(end, d2)
    k2_next = first_k_at_or_after(nxt, d2)
    k2_asof = ((a - d2) // iv + 1).clip(min=0)
    k2 = np.minimum.reduce([k2_end, k2_next, k2_asof])
    stop2 = np.select([k2 == k2_end, k2 == k2_next], ["end", "meeting"], "asof")

    parts = []
    mid = m["meeting_id"].to_numpy()
    mreason = m["reason"].to_numpy()

    def rows(idx, due, status, with_next: bool):
        if not len(idx):
            return
        nidx = next_pos[idx]
        has = (nidx >= 0) if with_next else np.zeros(len(idx), dtype=bool)
        safe = np.maximum(nidx, 0)
        # Arrays, not a frame per part: one frame is made at the end.
        parts.append((idx, due, np.full(len(idx), status, dtype=object),
                      np.where(has, safe, -1)))

    def emit(mask, due, status, with_next: bool):
        idx = np.flatnonzero(mask)
        rows(idx, due[idx], status, with_next)

    def emit_late(mask, first_due, count):
        counts = np.where(mask, count, 0)
        idx = np.repeat(np.arange(len(m)), counts)
        offsets = np.arange(len(idx)) - np.repeat(np.cumsum(counts) - counts, counts)
        rows(idx, first_due[idx] + offsets * iv[idx], "late", True)

    # Phase 1 items.
    emit_late(live, d0, k1)
    met1 = live & (stop1 == "meeting") & (k1 == 0)
    emit(met1, d0, "met", True)
    pend1 = live & (stop1 == "asof")
    emit(pend1, d0 + k1 * iv, "pending", False)
    # Phase 2 items.
    emit_late(paused, d2, k2)
    met2 = paused & (stop2 == "meeting") & (k2 == 0) & (nxt >= release)
    emit(met2, d2, "met", True)
    pend2 = paused & (stop2 == "asof")
    emit(pend2, d2 + k2 * iv, "pending", False)

    if not parts:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    idx, due, status, by = (np.concatenate(col) for col in zip(*parts))
    has = by >= 0
    safe = np.maximum(by, 0)
    out = pd.DataFrame({
        "ref": refs[idx],
        "area": area[idx],
        "level": np.where(interval[idx] == 42, 3, 2),
        "due": _to_dates(due.astype(np.int64)),
        "status": status,
        "meeting_id": np.where(has, mid[safe], None),
        "done": _to_dates(np.where(has, nxt[idx], NEVER)),
        "reason": np.where(has, mreason[safe], None),
        "chair_id": chair[idx],
    })
    return _sorted(out, ["due", "ref"]).reset_index(drop=True)


# --------------------------------------------------------------------------- meetings


def meeting_items(records: Records, as_of: dt.date) -> pd.DataFrame:
    """One row per meeting held by `as_of`: its 10-working-day deadline and what was done.

    Columns: meeting_id, ref, area, date, level, chair_id, reason, deadline,
    minutes_issued, rmp_ratified, minutes_done (both dates recorded), minutes_on_time,
    disclosure_done.
    """
    m = records.meetings
    ind = records.individuals.set_index("ref")
    area = ind["area"].reindex(m["ref"]).to_numpy()
    deadline = add_working_days_by_area(
        m["date"].to_numpy(), area, MINUTES_WORKING_DAYS, records.local_holidays
    )
    out = m[["meeting_id", "ref", "date", "level", "chair_id", "reason",
             "minutes_issued", "rmp_ratified"]].copy()
    out["area"] = area
    out["case_chair_id"] = ind["chair_id"].reindex(m["ref"]).to_numpy()
    out["deadline"] = deadline.astype("datetime64[s]")
    both = out["minutes_issued"].notna() & out["rmp_ratified"].notna()
    out["minutes_done"] = both
    out["minutes_completed"] = out[["minutes_issued", "rmp_ratified"]].max(axis=1).where(both)
    out["minutes_on_time"] = both & (out["minutes_completed"] <= out["deadline"])
    out["disclosure_done"] = _yes(m["disclosure_considered"])
    return out.reset_index(drop=True)


def invitation_items(records: Records, meetings: pd.DataFrame) -> pd.DataFrame:
    """One row per invitation to a meeting in `meetings` (from `meeting_items`).

    Adds: ref, area, date, deadline, agency role, `is_ra` (the Health Board is an RA only
    for a Category 2 individual), attended, attended_ok (attended with seniority_ok yes),
    written (written contribution yes).
    """
    inv = records.invitations.merge(
        meetings[["meeting_id", "ref", "area", "date", "deadline", "chair_id"]],
        on="meeting_id", how="inner",
    )
    ag = records.agencies.set_index("agency")
    inv["role"] = ag["role"].reindex(inv["agency"]).to_numpy()
    kind = ag["kind"].reindex(inv["agency"]).to_numpy()
    category = records.individuals.set_index("ref")["category"].reindex(inv["ref"]).to_numpy()
    is_health = inv["role"].to_numpy() == "health"
    inv["is_ra"] = np.where(is_health, category == 2, kind == "ra")
    inv["attended"] = inv["attendance"].isin(ATTENDED)
    inv["attended_ok"] = inv["attended"] & _yes(inv["seniority_ok"])
    inv["written"] = _yes(inv["written_contribution"])
    inv["absent"] = inv["attendance"].eq("absent")
    return inv.reset_index(drop=True)


# --------------------------------------------------------------------------- releases


def pre_release_items(records: Records, as_of: dt.date) -> pd.DataFrame:
    """Individuals with a planned release at Level 3: the initial L3 community meeting
    must be held on or before release_date - 28 days.

    Columns: ref, area, chair_id, release_date, deadline, met, meeting_id / done (the
    qualifying meeting, else the first initial L3 community one held after the deadline),
    reason (that meeting's reason).
    """
    ind = records.individuals
    rel = ind[ind["release_date"].notna() & ind["release_level"].eq(3)]
    cols = ["ref", "area", "chair_id", "release_date", "custody_from"]
    out = rel[cols].copy()
    out["deadline"] = out["release_date"] - pd.Timedelta(days=PRE_RELEASE_DAYS)
    m = records.meetings
    initial = m[(m["kind"] == "initial") & (m["level"] == 3) & (m["setting"] == "community")]
    initial = initial[["ref", "meeting_id", "date", "reason"]].merge(
        out[["ref", "deadline", "custody_from"]], on="ref"
    )
    # A meeting from before the current custody period began belongs to an earlier sentence.
    initial = initial[initial["custody_from"].isna() | (initial["date"] >= initial["custody_from"])]
    initial = initial.sort_values(["ref", "date"], kind="stable")
    on_time = initial[initial["date"] <= initial["deadline"]].drop_duplicates("ref")
    late = initial[initial["date"] > initial["deadline"]].drop_duplicates("ref")
    chosen = pd.concat([on_time, late[~late["ref"].isin(on_time["ref"])]])
    chosen = chosen.set_index("ref")
    out["met"] = out["ref"].isin(on_time["ref"]).to_numpy()
    out["meeting_id"] = chosen["meeting_id"].reindex(out["ref"]).to_numpy()
    out["done"] = chosen["date"].reindex(out["ref"]).to_numpy()
    out["reason"] = chosen["reason"].reindex(out["ref"]).to_numpy()
    return out.drop(columns=["custody_from"]).reset_index(drop=True)
