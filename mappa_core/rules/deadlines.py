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
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .calendar import add_working_days_by_area
from .records import Records
from .schema import ATTENDED

REVIEW_INTERVAL = {"2": 84, "3": 42}  # outcome level -> days to the next review (SPEC 3)
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
    """The records as they stood on `as_of`: later meetings, minutes and RMP dates,
    archives, `level_from` dates and custody periods are unseen (SPEC section 3)."""
    cutoff = np.datetime64(as_of, "s")
    # New frames over the same data: pandas copies a column only when it is written
    # (copy-on-write), and only columns with a date after as_of are.
    meetings = records.meetings[records.meetings["date"] <= cutoff]
    for col in ("minutes_issued", "rmp_ratified"):
        later = meetings[col] > cutoff
        if later.any():
            meetings.loc[later, col] = pd.NaT
    individuals = records.individuals.copy(deep=False)
    for col in ("mappa_end", "level_from"):
        if col in individuals:
            later = individuals[col] > cutoff
            if later.any():
                individuals.loc[later, col] = pd.NaT
    # A current custody period that begins after as_of had not happened yet: its release
    # (planned within it) is unseen with it.
    later = individuals["custody_from"] > cutoff
    if later.any():
        individuals.loc[later, ["custody_from", "release_date"]] = pd.NaT
        individuals["release_level"] = individuals["release_level"].where(~later, None)
    custody = records.custody
    if len(custody):
        custody = custody[custody["custody_from"] <= cutoff]
    invitations = records.invitations[
        records.invitations["meeting_id"].isin(meetings["meeting_id"])
    ]
    return Records(
        individuals, meetings, invitations, records.agencies, records.people,
        records.events, records.local_holidays, records.area, custody, records.review_notes,
    )


def _custody_periods(records: Records) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every custody period of every case as arrays (ref, custody_from day, release day or
    NEVER for none yet): the past ones (custody.csv and those the importer kept) and the
    current one of individuals.csv."""
    ind = records.individuals
    cur = ind["custody_from"].notna().to_numpy()
    refs = [ind["ref"].to_numpy(dtype=object)[cur]]
    start = [_days(ind["custody_from"].to_numpy()[cur], NEVER)]
    release = [_days(ind["release_date"].to_numpy()[cur], NEVER)]
    past = records.custody
    if past is not None and len(past):
        refs.append(past["ref"].to_numpy(dtype=object))
        start.append(_days(past["custody_from"], NEVER))
        release.append(_days(past["release_date"], NEVER))
    return np.concatenate(refs), np.concatenate(start), np.concatenate(release)


# --------------------------------------------------------------------------- reviews

REVIEW_COLUMNS = [
    "ref", "area", "level", "due", "status", "meeting_id", "done", "reason", "chair_id",
    "restarted",
]


def _chain_starts(records: Records) -> dict[str, np.ndarray]:
    """Every point where a review chain (re)starts, as arrays sorted by case and date: each
    Level 2/3 meeting, and each entry point (`level_from` of a case now at Level 2/3,
    unless a meeting is held that day). `entry` marks the entry points; `case` numbers
    the cases (equal refs, equal numbers)."""
    m = records.meetings
    ind = records.individuals
    refs = m["ref"].to_numpy(dtype=object)
    day = _days(m["date"], 0)
    mid = m["meeting_id"].to_numpy(dtype=object)
    outcome = m["outcome_level"].fillna(m["level"].astype(str)).astype(str).to_numpy(dtype=object)
    reason = m["reason"].to_numpy(dtype=object)
    entry = np.zeros(len(m), dtype=bool)
    if "level_from" in ind:
        e = (ind["level_from"].notna() & ind["level"].isin([2, 3])).to_numpy()
        if e.any():
            e_ref = ind["ref"].to_numpy(dtype=object)[e]
            e_day = _days(ind["level_from"].to_numpy()[e], 0)
            codes, _ = pd.factorize(np.concatenate([refs, e_ref]))
            # (case, day) as one number: a meeting held on the entry day replaces it.
            key = codes.astype(np.int64) * (1 << 24) + np.concatenate([day, e_day])
            keep = ~np.isin(key[len(refs):], key[:len(refs)])
            n_e = int(keep.sum())
            refs = np.concatenate([refs, e_ref[keep]])
            day = np.concatenate([day, e_day[keep]])
            mid = np.concatenate([mid, np.full(n_e, "", dtype=object)])
            outcome = np.concatenate([outcome, ind["level"].to_numpy()[e][keep].astype(int)
                                      .astype(str).astype(object)])
            reason = np.concatenate([reason, np.full(n_e, None, dtype=object)])
            entry = np.concatenate([entry, np.ones(n_e, dtype=bool)])
    case, _ = pd.factorize(refs)
    # Grouped by case (any order of cases: the items are sorted at the end), then by date
    # and meeting id.
    order = np.lexsort((mid.astype(str), day, case)) if len(refs) else np.zeros(0, dtype=int)
    return {"ref": refs[order], "case": case[order], "day": day[order], "meeting_id": mid[order],
            "outcome": outcome[order], "reason": reason[order], "entry": entry[order]}


def review_items(records: Records, as_of: dt.date) -> pd.DataFrame:
    """Every review due date of every chain, up to each chain's first pending one.

    Columns: ref, area, level (2 or 3: the chain), due, status (`met`, `late` or
    `pending`), meeting_id / done (the meeting that met it or that came late, if any),
    reason (that meeting's recorded reason), chair_id (the case's chair), restarted (a
    later meeting or entry point restarted the chain after this due date: a late one is
    no longer open).
    Expects records as they stood on `as_of` (see `as_stood`).

    In three steps: the chains (one per meeting or entry point, with what ends it), the
    walk along each chain's due dates through custody pauses, and the frame of due dates.
    """
    chains = _Chains.of(records, _chain_starts(records))
    if chains is None:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    parts = _walk_chains(chains, _custody_pairs(records, chains.refs), np.int64(day_number(as_of)))
    if not parts:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    return _review_frame(chains, parts)


@dataclass(frozen=True)
class _Chains:
    """The review chains, one per row of `_chain_starts`, as arrays over those rows: the
    chain's interval (0: a level with no review chain), the next start of the same case
    (which meets or restarts the chain), the case's end of MAPPA, area and chair."""

    refs: np.ndarray
    interval: np.ndarray      # days between reviews (0: no chain)
    iv: np.ndarray            # the interval, 1 where there is none (safe to divide by)
    start: np.ndarray         # the day the chain starts (a meeting's or an entry point's)
    nxt: np.ndarray           # the next start of the same case (NEVER: none)
    next_pos: np.ndarray      # that start's row (-1: none)
    next_is_entry: np.ndarray  # that start is an entry point, not a meeting
    end: np.ndarray           # the case's end of MAPPA (NEVER: open)
    area: np.ndarray
    chair: np.ndarray
    meeting_id: np.ndarray
    reason: np.ndarray

    @classmethod
    def of(cls, records: Records, m: dict) -> _Chains | None:
        n = len(m["ref"])
        if not n:
            return None
        refs, outcome, case = m["ref"], m["outcome"], m["case"]
        interval = np.select([outcome == level for level in REVIEW_INTERVAL],
                             list(REVIEW_INTERVAL.values()), 0).astype(np.int64)
        same_next = np.r_[case[1:] == case[:-1], False]
        info = records.individuals.set_index("ref").reindex(refs)
        return cls(
            refs=refs, interval=interval, iv=np.where(interval > 0, interval, 1),
            start=m["day"],
            nxt=np.where(same_next, np.r_[m["day"][1:], NEVER], NEVER),
            next_pos=np.where(same_next, np.arange(n) + 1, -1),
            next_is_entry=np.r_[m["entry"][1:], False] & same_next,
            end=_days(info["mappa_end"], NEVER), area=info["area"].to_numpy(),
            chair=info["chair_id"].to_numpy(), meeting_id=m["meeting_id"], reason=m["reason"])


def _custody_pairs(records: Records, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Custody periods as (chain start row, period) pairs: each row meets the periods of
    its own case only (a few per case), so the pairs stay about as many as the rows.
    Returns each pair's row, and its period's first day and release."""
    n = len(refs)
    p_ref, p_from, p_rel = _custody_periods(records)
    if not len(p_ref):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    codes, uniq = pd.factorize(np.concatenate([refs, p_ref]))
    row_code, per_code = codes[:n], codes[n:]
    by_code = np.argsort(per_code, kind="stable")
    count = np.bincount(per_code, minlength=len(uniq))
    p_first = np.cumsum(count) - count
    cnt = count[row_code]
    pair_row = np.repeat(np.arange(n), cnt)
    offset = np.arange(len(pair_row)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    pair_p = by_code[np.repeat(p_first[row_code], cnt) + offset]
    return pair_row, p_from[pair_p], p_rel[pair_p]


def _first_k_at_or_after(limit: np.ndarray, first: np.ndarray, step: np.ndarray) -> np.ndarray:
    k = _ceil_div(limit - first, step).clip(min=0)
    return np.where(limit >= NEVER, NEVER, k)


def _walk_chains(c: _Chains, pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
                 a: np.int64) -> list[tuple]:
    """The due dates of every chain, as parts (rows, due days, status, row of the meeting
    that met or followed them, -1: none).

    The chain of each start, phase by phase: due dates d + k*I until the first that meets
    a limit. Priority when two limits fall on one due date follows the rule order:
    archive, custody, meeting, as_of. A custody pause starts the next phase at that
    period's release + I; a period with no release date stops the chain. Each phase is
    vectorised over every chain still running (as many phases as periods in one case).
    """
    pair_row = pairs[0]
    iv, nxt = c.iv, c.nxt
    parts: list[tuple] = []

    def emit(idx, due, status, with_next: bool):
        if not len(idx):
            return
        nidx = c.next_pos[idx]
        has = (nidx >= 0) & ~c.next_is_entry[idx] if with_next else np.zeros(len(idx), dtype=bool)
        # Arrays, not a frame per part: one frame is made at the end.
        parts.append((idx, due, np.full(len(idx), status, dtype=object),
                      np.where(has, nidx, -1)))

    def emit_late(idx, first_due, counts):
        """`counts[j]` late due dates for start `idx[j]`: first_due[j] + i*I, i < counts[j]."""
        rows = np.repeat(idx, counts)
        offsets = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        emit(rows, np.repeat(first_due, counts) + offsets * iv[rows], "late", True)

    active = np.flatnonzero(c.interval > 0)
    d = c.start + iv
    released = np.full(len(c.refs), -1, dtype=np.int64)  # release that began this phase (-1: none)
    pair_active = np.isin(pair_row, active)
    while len(active):
        da, ia = d[active], iv[active]
        k_end = _first_k_at_or_after(c.end[active], da, ia)
        k_next = _first_k_at_or_after(nxt[active], da, ia)
        k_asof = _first_k_at_or_after(np.full(len(active), a), da, ia)
        k_cust, rel_at = _first_in_custody(active, d, iv, pairs, pair_active)
        k = np.minimum.reduce([k_end, k_cust, k_next, k_asof])
        stop = np.select([k == k_end, k == k_cust, k == k_next], [0, 1, 2], 3)
        emit_late(active, da, k)
        rel_before = released[active]
        met = (stop == 2) & (k == 0) & ~c.next_is_entry[active] & (
            (rel_before < 0) | (nxt[active] >= rel_before))
        emit(active[met], da[met], "met", True)
        pend = stop == 3
        emit(active[pend], (da + k * ia)[pend], "pending", False)
        paused = (stop == 1) & (rel_at < NEVER)
        nxt_active = active[paused]
        d[nxt_active] = rel_at[paused] + iv[nxt_active]
        released[nxt_active] = rel_at[paused]
        active = nxt_active
        pair_active = np.isin(pair_row, active)
    return parts


def _first_in_custody(active: np.ndarray, d: np.ndarray, iv: np.ndarray,
                      pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
                      pair_active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each running chain (`active`, its phase's first due date in `d`): the k of its
    first due date inside any custody period of the case (NEVER: none), and the release of
    the period that holds it."""
    pair_row, pair_from, pair_rel = pairs
    k_cust = np.full(len(active), NEVER)
    rel_at = np.full(len(active), NEVER)
    if len(pair_row):
        sel = np.flatnonzero(pair_active)
        rows = pair_row[sel]
        slot = np.searchsorted(active, rows)
        kp = _ceil_div(pair_from[sel] - d[rows], iv[rows]).clip(min=0)
        inside = d[rows] + kp * iv[rows] < pair_rel[sel]
        kp = np.where(inside, kp, NEVER)
        np.minimum.at(k_cust, slot, kp)
        # The release of the period that holds that due date.
        hit = inside & (kp == k_cust[slot])
        rel_at[slot[hit]] = pair_rel[sel][hit]
    return k_cust, rel_at


def _review_frame(c: _Chains, parts: list[tuple]) -> pd.DataFrame:
    """The walked parts as review_items' frame, sorted by due date and case."""
    idx, due, status, by = (np.concatenate(col) for col in zip(*parts))
    has = by >= 0
    safe = np.maximum(by, 0)
    out = pd.DataFrame({
        "ref": c.refs[idx],
        "area": c.area[idx],
        "level": np.where(c.interval[idx] == REVIEW_INTERVAL["3"], 3, 2),
        "due": _to_dates(due.astype(np.int64)),
        "status": status,
        "meeting_id": np.where(has, c.meeting_id[safe], None),
        "done": _to_dates(np.where(has, c.nxt[idx], NEVER)),
        "reason": np.where(has, c.reason[safe], None),
        "chair_id": c.chair[idx],
        "restarted": c.next_pos[idx] >= 0,
    })
    return _sorted(out, ["due", "ref"]).reset_index(drop=True)


# --------------------------------------------------------------------------- meetings


def meeting_items(records: Records, as_of: dt.date) -> pd.DataFrame:
    """One row per meeting held by `as_of`: its 10-working-day deadline and what was done.

    Columns: meeting_id, ref, area, date, level, chair_id, reason, deadline,
    minutes_issued, rmp_ratified, minutes_done (both dates recorded), minutes_on_time,
    disclosure_done (a recorded yes), disclosure_recorded (yes or no: a recorded no counts
    at once, as not met; a blank is pending until the deadline has passed).
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
    out["disclosure_recorded"] = m["disclosure_considered"].notna().to_numpy(dtype=bool)
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
    """Every release at Level 3 (the current custody period's and every past one's): the
    initial L3 community meeting must be held on or after that period's custody_from and on
    or before release_date - 28 days.

    Columns: ref, area, chair_id, custody_from, release_date, deadline, met, meeting_id /
    done (the qualifying meeting, else the first initial L3 community one held after the
    deadline), reason (that meeting's reason).
    """
    ind = records.individuals
    rel = ind[ind["release_date"].notna() & ind["release_level"].eq(3)]
    parts = [pd.DataFrame({
        "ref": rel["ref"].to_numpy(),
        "custody_from": rel["custody_from"].to_numpy(dtype="datetime64[s]"),
        "release_date": rel["release_date"].to_numpy(dtype="datetime64[s]"),
    })]
    past = records.custody
    if past is not None and len(past):
        past = past[past["release_level"].eq(3)]
        parts.append(pd.DataFrame({
            "ref": past["ref"].to_numpy(),
            "custody_from": past["custody_from"].to_numpy(dtype="datetime64[s]"),
            "release_date": past["release_date"].to_numpy(dtype="datetime64[s]"),
        }))
        parts = [p for p in parts if len(p)] or parts[:1]
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    who = ind.set_index("ref")
    out.insert(1, "area", who["area"].reindex(out["ref"]).to_numpy())
    out.insert(2, "chair_id", who["chair_id"].reindex(out["ref"]).to_numpy())
    out["deadline"] = out["release_date"] - pd.Timedelta(days=PRE_RELEASE_DAYS)
    out["release_id"] = np.arange(len(out))
    m = records.meetings
    initial = m[(m["kind"] == "initial") & (m["level"] == 3) & (m["setting"] == "community")]
    initial = initial[["ref", "meeting_id", "date", "reason"]].merge(
        out[["ref", "release_id", "deadline", "custody_from", "release_date"]], on="ref"
    )
    # Only a meeting within the release's own custody period counts for it: one from
    # before it began belongs to an earlier sentence.
    initial = initial[initial["custody_from"].isna() | (initial["date"] >= initial["custody_from"])]
    initial = initial.sort_values(["release_id", "date"], kind="stable")
    on_time = initial[initial["date"] <= initial["deadline"]].drop_duplicates("release_id")
    late = initial[initial["date"] > initial["deadline"]].drop_duplicates("release_id")
    chosen = pd.concat([on_time, late[~late["release_id"].isin(on_time["release_id"])]])
    chosen = chosen.set_index("release_id")
    out["met"] = out["release_id"].isin(on_time["release_id"]).to_numpy()
    out["meeting_id"] = chosen["meeting_id"].reindex(out["release_id"]).to_numpy()
    out["done"] = chosen["date"].reindex(out["release_id"]).to_numpy()
    out["reason"] = chosen["reason"].reindex(out["release_id"]).to_numpy()
    return out.drop(columns=["release_id"]).reset_index(drop=True)
