"""Copies of the case-free notices for channels shared by a whole area (a Teams channel)."""

from __future__ import annotations

import pandas as pd

from ..vocabulary import Rule
from .outbox_rows import NOTIFICATION_COLUMNS, dedupe_key, group_key

# The notices that carry no case reference (indicator figures, the quarterly reminder): the
# only ones a channel shared by a whole area (a Teams channel) may receive.
CASE_FREE_RULES = frozenset({Rule.WEEKLY, Rule.BELOW_TARGET, Rule.QUARTERLY})


def plan_area_channels(notes: pd.DataFrame, area_channels: dict) -> pd.DataFrame:
    """`notes` plus one copy of each case-free notice for each area channel of its area.

    `area_channels`: channel name -> the areas that have one (e.g. {"teams": {"Grampian"}}).
    A copy's recipient is "<channel>:<area>" and its address the area; it is deduplicated
    and grouped like the notice it copies. Nothing outside CASE_FREE_RULES is ever copied.
    """
    if notes.empty or not area_channels:
        return notes
    free = notes[notes["rule"].isin(CASE_FREE_RULES) & notes["area"].notna()]
    free = free.drop_duplicates(["rule", "item_key", "stage", "area"])
    copies = []
    for channel, areas in sorted(area_channels.items()):
        mine = free[free["area"].isin(set(areas))].copy()
        if mine.empty:
            continue
        mine["channel"] = str(channel)
        mine["recipient_id"] = str(channel) + ":" + mine["area"].astype(str)
        mine["address"] = mine["area"].astype(str)
        suffix = mine["dedupe_key"].str.rsplit("|", n=1).str[-1]
        day = mine["group_key"].str.rsplit("|", n=1).str[-1]
        mine["dedupe_key"] = dedupe_key(mine["rule"], mine["item_key"], mine["stage"],
                                        mine["recipient_id"], suffix)
        mine["group_key"] = group_key(mine["rule"], mine["recipient_id"], day)
        copies.append(mine)
    if not copies:
        return notes
    return pd.concat([notes, *copies], ignore_index=True)[NOTIFICATION_COLUMNS]
