"""Messages that could not be delivered, told to the area's co-ordinators in their digest."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from ..vocabulary import Rule, Stage
from .directory import coordinators
from .outbox_rows import Notice, frame, notice

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
    `outbox_ids` are the rows the line covers. They travel in the co-ordinator's digest.
    """
    if problems is None or problems.empty:
        return frame([])
    coords = coordinators(people)
    out: list[Notice] = []
    problems = problems.assign(last_error=problems["last_error"].fillna("").astype(str).str[:300],
                               area=problems["area"].where(problems["area"].notna(), None))
    grouped = problems.groupby(["recipient_id", "channel", "last_error"], dropna=False, sort=True)
    for (recipient, channel, error), group in grouped:
        key = delivery_problem_key(recipient, channel, error)
        if key in told:
            continue
        areas = set(group["area"])
        payload = {"kind": "delivery_problem", "rule": ", ".join(sorted(set(group["rule"]))),
                   "recipient": recipient, "channel": channel, "error": error,
                   "outbox_ids": sorted(int(i) for i in group["id"])}
        for coord in coords.itertuples(index=False):
            if coord.area is not None and coord.area not in areas:
                continue
            out.append(notice(Rule.DELIVERY_PROBLEM, coord, key, Stage.FAILED,
                              coord.area or group["area"].iloc[0], payload, today.isoformat(),
                              today, grouped_with=Rule.DIGEST))
    return frame(out)
