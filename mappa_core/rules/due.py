"""What is open now: overdue and soon-due items for `mappa due`, the digests and escalations.

Built only from the frames of `deadlines` (through `indicators.Computed`), so a due date
is computed in one place. The kinds of item, their labels, urgency and item keys are
declared in `kinds`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .calendar import working_days_between_by_area
from .indicators import Computed
from .kinds import ItemKind, item_keys, urgency_ranks
from .kinds import key_part  # noqa: F401  (the item keys' spelling, read here by older callers)
from .records import DUE_SOON_DAYS

DUE_COLUMNS = [
    "kind", "level", "ref", "area", "meeting_id", "agency", "deadline", "overdue",
    "working_days_left", "chair_id", "detail", "item_key",
]


def open_items(c: Computed, lookback_days: int | None = None,
               until: pd.Timestamp | None = None) -> pd.DataFrame:
    """Every item not yet done on `c.as_of`, overdue or not, one row each; with `until`,
    only those whose deadline is on or before it (the keys and working days, the costly
    columns, are then built only for those).

    Cases archived by `as_of` have nothing open; meeting paperwork is chased for
    `lookback_days` after its deadline (by default the lookback `c` was computed with).
    """
    today = pd.Timestamp(c.as_of)
    since = today - pd.Timedelta(days=c.lookback_days if lookback_days is None else lookback_days)
    parts = [*_open_reviews(c.reviews, today), *_open_paperwork(c, since),
             *_open_pre_release(c.releases, today)]
    if not parts:
        return _no_items()
    out = pd.concat(parts, ignore_index=True)
    if until is not None:
        out = out[out["deadline"] <= until]
    for col in DUE_COLUMNS:
        if col not in out:
            out[col] = None
    ind = c.records.individuals
    archived = ind.loc[ind["mappa_end"].notna(), "ref"]
    out = out[~out["ref"].isin(archived)]
    out["item_key"] = item_keys(out)
    out["overdue"] = out["deadline"] < today
    out["working_days_left"] = working_days_between_by_area(
        np.datetime64(c.as_of, "D"), out["deadline"].to_numpy(), out["area"].to_numpy(),
        c.records.local_holidays,
    )
    return out[DUE_COLUMNS]


def _open_reviews(r: pd.DataFrame, today: pd.Timestamp) -> list[pd.DataFrame]:
    """The review chains' open items: a chain's late due dates as one item, and its
    pending one."""
    parts = []
    # A late due date stays open until a meeting or an entry point restarts the chain.
    late_open = r[(r["status"] == "late") & ~r["restarted"].astype(bool)]
    if not late_open.empty:
        first = late_open.groupby(["ref", "level"], as_index=False).agg(
            deadline=("due", "min"), missed=("due", "size"),
            area=("area", "first"), chair_id=("chair_id", "first"),
        )
        first["detail"] = (
            "Level " + first["level"].astype(str) + " review; "
            + first["missed"].astype(str) + " due date(s) missed"
        )
        parts.append(first.assign(kind=ItemKind.REVIEW.value))
    pending = r[r["status"] == "pending"]
    if not pending.empty:
        # On its due day a review is still pending (nothing is late before the next day).
        today_label = np.where(pending["due"] == today, "; due today", "")
        parts.append(
            pending.rename(columns={"due": "deadline"})
            .assign(kind=ItemKind.REVIEW.value,
                    detail="Level " + pending["level"].astype(str) + " review" + today_label)
            .drop(columns=["meeting_id", "done", "reason", "restarted"])
        )
    return parts


def _open_paperwork(c: Computed, since: pd.Timestamp) -> list[pd.DataFrame]:
    """A meeting's paperwork not done, chased back to `since`: minutes and RMP, the
    disclosure decision, and each absent agency's written contribution."""
    parts = []
    m = c.meetings[c.meetings["deadline"] >= since]
    # A recorded disclosure no is a decision (counted at once as not met): nothing to chase.
    for kind, done_col in ((ItemKind.MINUTES.value, "minutes_done"),
                          (ItemKind.DISCLOSURE.value, "disclosure_recorded")):
        open_ = m[~m[done_col]]
        if not open_.empty:
            missing = "missing: " + (
                np.where(open_["minutes_issued"].isna(), "minutes", "")
                + np.where(open_["minutes_issued"].isna() & open_["rmp_ratified"].isna(), " and ", "")
                + np.where(open_["rmp_ratified"].isna(), "RMP", "")
            ) if kind == ItemKind.MINUTES else "decision not recorded"
            parts.append(
                open_[["ref", "area", "meeting_id", "deadline", "chair_id"]].assign(
                    kind=kind, detail=missing
                )
            )
    inv = c.invitations
    missing = inv[inv["absent"] & ~inv["written"] & (inv["deadline"] >= since)]
    if not missing.empty:
        parts.append(
            missing[["ref", "area", "meeting_id", "agency", "deadline", "chair_id"]].assign(
                kind=ItemKind.CONTRIBUTION.value, detail="absent, no written contribution"
            )
        )
    return parts


def _open_pre_release(rel: pd.DataFrame, today: pd.Timestamp) -> list[pd.DataFrame]:
    """A release still to come whose initial Level 3 meeting before it is not held."""
    upcoming = rel[~rel["met"] & (rel["release_date"] >= today)]
    if upcoming.empty:
        return []
    return [upcoming[["ref", "area", "deadline", "chair_id"]].assign(
        kind=ItemKind.PRE_RELEASE.value,
        detail="release " + upcoming["release_date"].dt.strftime("%Y-%m-%d"),
    )]


def _no_items() -> pd.DataFrame:
    """No open items, with the columns' types (an untyped empty `overdue` column, used as
    a mask, would select no columns at all instead of no rows)."""
    out = pd.DataFrame({col: pd.Series(dtype=object) for col in DUE_COLUMNS})
    return out.astype({"deadline": "datetime64[s]", "overdue": bool, "working_days_left": int})


def due_items(
    c: Computed, days: int = DUE_SOON_DAYS, chair: str | None = None
) -> pd.DataFrame:
    """Overdue items and those due within `days` calendar days, most urgent first."""
    today = pd.Timestamp(c.as_of)
    horizon = today + pd.Timedelta(days=days)
    items = open_items(c, until=max(today, horizon))  # nothing later can be kept
    items = items[items["overdue"] | (items["deadline"] <= horizon)]
    if chair is not None:
        items = items[items["chair_id"] == chair]
    # Overdue first, the gravest kind first; then what falls due, soonest first.
    rank = urgency_ranks(items)
    items = items.assign(
        _upcoming=~items["overdue"], _rank=rank.where(items["overdue"], 0), _tie=rank
    )
    items = items.sort_values(["_upcoming", "_rank", "deadline", "_tie", "ref", "item_key"],
                              kind="stable")
    return items.drop(columns=["_upcoming", "_rank", "_tie"]).reset_index(drop=True)
