"""A planned notice, its dedupe and group keys, and the frame the outbox stores.

Rules that plan one notice at a time build `Notice` objects; the rules over whole regions
(digests, chasers, escalations) work on frames for speed and pass them through `finish`.
Both write their keys with `dedupe_key` and `group_key`, and both end as the same frame
(`NOTIFICATION_COLUMNS`, plain strings): the outbox stores exactly what it always did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Protocol
from collections.abc import Iterable

import pandas as pd

from ..details import DETAIL_COLUMNS
from ..vocabulary import Rule, Stage, Urgency

# The stages an escalation is acknowledged at (its Acknowledge button carries one).
ESCALATION_STAGES = (Stage.BREACH, Stage.FIVE_WEEKS, Stage.BELOW_TARGET, Stage.SCR_OVERDUE)


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to one recipient about one item at one stage: one outbox row."""

    rule: Rule
    item_key: str
    stage: Stage
    recipient_id: str
    channel: str
    address: str
    urgency: Urgency
    group_key: str      # the notices delivered together (one digest, one summary)
    dedupe_key: str     # the same notice is planned once, however often planning runs
    area: str | None
    payload: dict


NOTIFICATION_COLUMNS = [f.name for f in fields(Notice)]


class Recipient(Protocol):
    """A row of the recipient directory (directory.contacts and its callers)."""

    person_id: str
    channel: str
    address: str


def dedupe_key(rule, item_key, stage, recipient_id, suffix):
    """rule|item|stage|recipient|suffix, the suffix being the day or the repeat cycle; on
    strings or on columns alike."""
    return rule + "|" + item_key + "|" + stage + "|" + recipient_id + "|" + suffix


def group_key(rule, recipient_id, day: str):
    """rule|recipient|day: what one recipient gets under one rule on one day goes together."""
    return rule + "|" + recipient_id + "|" + day


def notice(rule: Rule, to: Recipient, item_key: str, stage: Stage, area: str | None,
           payload: dict, suffix: str, day: dt.date, urgency: Urgency = Urgency.NORMAL,
           grouped_with: Rule | None = None) -> Notice:
    """The notice of `rule` to `to`; `grouped_with` names another rule's group it travels
    in (a co-ordinator's delivery problems and audit reminders go in their digest)."""
    return Notice(rule=rule, item_key=item_key, stage=stage, recipient_id=to.person_id,
                  channel=to.channel, address=to.address, urgency=urgency,
                  group_key=group_key(grouped_with or rule, to.person_id, day.isoformat()),
                  dedupe_key=dedupe_key(rule, item_key, stage, to.person_id, suffix),
                  area=area, payload=payload)


def empty() -> pd.DataFrame:
    return pd.DataFrame(columns=NOTIFICATION_COLUMNS)


_WORDS = ("rule", "stage", "channel", "urgency")


def frame(notices: Iterable[Notice]) -> pd.DataFrame:
    """The notices as the outbox's rows (the vocabulary as plain strings)."""
    notices = list(notices)
    if not notices:
        return empty()
    cols = {name: [getattr(n, name) for n in notices] for name in NOTIFICATION_COLUMNS}
    for name in _WORDS:
        cols[name] = [str(v) for v in cols[name]]
    return pd.DataFrame(cols, columns=NOTIFICATION_COLUMNS)


def items_payload(df: pd.DataFrame) -> list[dict]:
    """The payload of each due item's notice: what the templates show of it."""
    cols = ["kind", "level", "ref", "meeting_id", "agency", "deadline", "overdue",
            "working_days_left", "detail", "item_key", "stage", "area"]
    cols += [col for col in DETAIL_COLUMNS if col in df]  # where the planner added them
    out = []
    for row in df[cols].itertuples(index=False):
        d = row._asdict()
        d["deadline"] = d["deadline"].date().isoformat()
        d["overdue"] = bool(d["overdue"])
        d["working_days_left"] = int(d["working_days_left"])
        d["level"] = None if pd.isna(d["level"]) else int(d["level"])
        for k in ("meeting_id", "agency", "detail"):
            if not isinstance(d[k], str):
                d[k] = None
        out.append(d)
    return out


def finish(df: pd.DataFrame, rule: Rule, day: dt.date, key_suffix: pd.Series | str) -> pd.DataFrame:
    """A frame of due items, one row per recipient (recipient_id, channel, address, stage,
    urgency), as the outbox's rows of `rule`; the dedupe key ends in `key_suffix`."""
    if df.empty:
        return empty()
    df = df.copy()
    df["rule"] = rule.value
    df["payload"] = items_payload(df)
    suffix = key_suffix if isinstance(key_suffix, str) else key_suffix.astype(str)
    df["dedupe_key"] = dedupe_key(rule.value, df["item_key"], df["stage"], df["recipient_id"], suffix)
    df["group_key"] = group_key(rule.value, df["recipient_id"], day.isoformat())
    return df[NOTIFICATION_COLUMNS].reset_index(drop=True)
