"""The kinds of open item (`due.open_items`), each declared once in ITEM_KINDS: what it is
called, how urgent it is, which buttons a nudge about it carries, and how its item key is
written and read back. `due`, the planner, `mappa due` and `/mappa due`, the button
actions (bot/commands/actions.py), the Slack buttons and the digest lines
(templates/_items.j2) all read these declarations; none keeps a table of kinds of its own.

To add a kind of item: add a member to `ItemKind` and a `_declare(KindSpec(...))` below
(labels, urgency rank, buttons, key fields); make `due.open_items` produce its rows;
give the planner a nudge rule for it (NudgeRules); a button that does something new needs
its action in bot/commands/actions.py and its id in bot/slack_app.ACTION_IDS.
tests/rules/test_registry.py checks every declaration: labels, urgency, key round-trip, buttons.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

import numpy as np
import pandas as pd


class ItemKind(StrEnum):
    REVIEW = "review"
    MINUTES = "minutes"
    CONTRIBUTION = "contribution"
    DISCLOSURE = "disclosure"
    PRE_RELEASE = "pre_release"


# --------------------------------------------------------------------------- buttons


@dataclass(frozen=True)
class Button:
    """An action a nudge offers on its item (data only: bot/channels/slack draws it)."""
    action_id: str
    label: str
    picks_date: bool = False  # a date picker, with the label as its placeholder


# What a nudge offers on any item, after its kind's own buttons.
EVERY_ITEM_BUTTONS = (
    Button("snooze_1wd", "Snooze 1 day"),
    Button("snooze_3wd", "Snooze 3 days"),
    Button("record_reason", "Record reason"),
    Button("snooze_until", "Snooze until", picks_date=True),
)


# --------------------------------------------------------------------------- item keys

# An item key joins its parts with ":" (and a button value adds "|stage"), so each part
# that comes from a file has "%", ":" and "|" percent-encoded: any id round-trips, and an
# id such as "T1:9" can never be read as "T1". Ordinary ids are unchanged by it.
KEY_PART_ESCAPES = (("%", "%25"), (":", "%3A"), ("|", "%7C"))
MAX_ITEM_KEY = 200  # the item_key columns' length


def key_part(text: str) -> str:
    for raw, escaped in KEY_PART_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def key_parts(key: str) -> list[str]:
    """The decoded parts of an item key (the inverse of joining key_part()s with ":")."""
    return [unquote(part) for part in key.split(":")]


def _escaped(values: pd.Series) -> pd.Series:
    values = values.fillna("").astype(str)
    for raw, escaped in KEY_PART_ESCAPES:
        values = values.str.replace(raw, escaped, regex=False)
    return values


def _level(values: pd.Series) -> pd.Series:
    return "L" + pd.to_numeric(values, errors="coerce").fillna(0).astype(int).astype(str)


def _day(values: pd.Series) -> pd.Series:
    return values.dt.strftime("%Y-%m-%d")


def _is_day(part: str) -> bool:
    """A day as _day writes it (`2026-12-01`; not `20261201` nor `2026-W49-2`, which
    fromisoformat also reads)."""
    try:
        return dt.date.fromisoformat(part).isoformat() == part
    except ValueError:
        return False


@dataclass(frozen=True)
class KeyField:
    """One part of an item key after the kind: the open item's column it is written from,
    how (a column of text, key-safe), and whether a part read back is one we could write."""
    column: str
    write: Callable[[pd.Series], pd.Series]
    valid: Callable[[str], bool] = lambda part: True


REF = KeyField("ref", _escaped)
MEETING = KeyField("meeting_id", _escaped)
AGENCY = KeyField("agency", _escaped)
LEVEL = KeyField("level", _level, lambda part: part in ("L2", "L3"))
DEADLINE = KeyField("deadline", _day, _is_day)


# --------------------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class KindSpec:
    """One kind of open item.

    `label` names it in a list (`mappa due`, `/mappa due`, a case's open items); `noun` in
    a button's reply and the reason form ("Snoozed review, case X"); `line` opens its
    digest line (templates/_items.j2), formatted with the item's `level` and `agency`;
    `plural` counts them in an escalation's summary, by level where urgency is.
    `urgency` ranks it among overdue items (0 is the most urgent), by level where a
    mapping. `key` lists the parts of its item key after the kind: a key with a
    meeting_id reads back to that meeting (with an agency, to that agency's absence from
    it), any other to the case. `buttons` come before EVERY_ITEM_BUTTONS on a nudge.
    """
    kind: ItemKind
    label: str
    noun: str
    line: str
    plural: str  # counted in an escalation's summary ("Level {level} reviews")
    urgency: int | Mapping[int, int]
    key: tuple[KeyField, ...]
    buttons: tuple[Button, ...] = ()
    line_detail: bool = True  # the digest line ends with the item's detail

    @property
    def all_buttons(self) -> tuple[Button, ...]:
        return self.buttons + EVERY_ITEM_BUTTONS

    def line_for(self, level, agency) -> str:
        return self.line.format(level=level, agency=agency or "an agency")

    def names_meeting(self) -> bool:
        return MEETING in self.key


ITEM_KINDS: dict[str, KindSpec] = {}


def _declare(spec: KindSpec) -> KindSpec:
    if spec.kind in ITEM_KINDS:
        raise ValueError(f"item kind {spec.kind!r} declared twice")
    ITEM_KINDS[spec.kind.value] = spec
    return spec


# Most urgent first: missed reviews and pre-release meetings are about the public's safety.
_declare(KindSpec(
    ItemKind.REVIEW, label="review due", noun="review", line="Level {level} review",
    plural="Level {level} reviews",
    urgency={3: 0, 2: 2}, key=(REF, LEVEL, DEADLINE),
    line_detail=False,  # a review's line ends with its deadline, without the detail
))
_declare(KindSpec(
    ItemKind.MINUTES, label="minutes and RMP", noun="minutes and RMP",
    line="Minutes and RMP", plural="Minutes and RMP", urgency=3, key=(MEETING,),
    buttons=(Button("minutes_issued", "Minutes issued"), Button("rmp_ratified", "RMP ratified")),
))
_declare(KindSpec(
    ItemKind.CONTRIBUTION, label="written contribution", noun="written contribution",
    line="Written contribution from {agency}", plural="Written contributions", urgency=4, key=(MEETING, AGENCY),
    buttons=(Button("contribution_received", "Contribution received"),),
))
_declare(KindSpec(
    ItemKind.DISCLOSURE, label="disclosure decision", noun="disclosure decision",
    line="Disclosure decision", plural="Disclosure decisions", urgency=5, key=(MEETING,),
))
_declare(KindSpec(
    ItemKind.PRE_RELEASE, label="initial L3 meeting before release", noun="pre-release meeting",
    line="Initial Level 3 meeting before release",
    plural="Initial Level 3 meetings before release", urgency=1, key=(REF, DEADLINE),
))


def item_keys(items: pd.DataFrame) -> pd.Series:
    """A stable name for each open item: what snoozes, notes and nudge dedupe keys use.
    `<kind>:<part>:<part>...`, the parts as the kind's `key` declares them."""
    unknown = set(items["kind"]) - set(ITEM_KINDS)
    if unknown:
        raise ValueError(f"undeclared item kind(s): {sorted(unknown)}")
    written: dict[str, pd.Series] = {}
    conds, keys = [], []
    for name, spec in ITEM_KINDS.items():
        key = pd.Series(name, index=items.index)
        for field in spec.key:
            if field.column not in written:
                written[field.column] = field.write(items[field.column])
            key = key + ":" + written[field.column]
        conds.append(items["kind"] == name)
        keys.append(key)
    return pd.Series(np.select(conds, keys, ""), index=items.index)


def read_key(key: str) -> tuple[KindSpec, dict[str, str]] | None:
    """The kind and the decoded parts (by column) of an item key exactly as item_keys
    writes it; None for any other text, an alias included: a part percent-encoded where
    item_keys writes it plain (`M0000142%34` for `M00001424`), or with another case of
    hex digit, reads back to the same record but is not the key snoozes and notes are
    kept under, so acting on it would record what silences nothing."""
    raw = key.split(":")
    parts = key_parts(key)
    spec = ITEM_KINDS.get(parts[0])
    if spec is None or raw[0] != spec.kind.value or len(parts) != 1 + len(spec.key):
        return None
    if any(key_part(part) != written for part, written in zip(parts[1:], raw[1:])):
        return None
    if not all(field.valid(part) for field, part in zip(spec.key, parts[1:])):
        return None
    return spec, {field.column: part for field, part in zip(spec.key, parts[1:])}


def summary_names() -> list[tuple[str, str]]:
    """(kind, or kind and level for a kind ranked by level, e.g. `review3`; its plural),
    most urgent first: how an escalation's summary counts the items."""
    named = []
    for name, spec in ITEM_KINDS.items():
        if isinstance(spec.urgency, Mapping):
            named += [(rank, f"{name}{lvl}", spec.plural.format(level=lvl))
                      for lvl, rank in spec.urgency.items()]
        else:
            named.append((spec.urgency, name, spec.plural))
    return [(key, plural) for _, key, plural in sorted(named)]


def urgency_ranks(items: pd.DataFrame) -> pd.Series:
    """Each item's declared urgency rank (0 is the most urgent)."""
    kind = items["kind"].to_numpy()
    level = pd.to_numeric(items["level"], errors="coerce").to_numpy()
    conds, ranks = [], []
    for name, spec in ITEM_KINDS.items():
        if isinstance(spec.urgency, Mapping):
            for lvl, rank in spec.urgency.items():
                conds.append((kind == name) & (level == lvl))
                ranks.append(rank)
        else:
            conds.append(kind == name)
            ranks.append(spec.urgency)
    return pd.Series(np.select(conds, ranks, np.nan), index=items.index)
