"""Parse the text after `/mappa` into a command. Pure: any text ends in a Command or a
ParseError whose message is safe to show; nothing here raises anything else."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mappa_core.rules.indicators import TOPICS
from mappa_core.rules.kinds import ITEM_KINDS
from mappa_core.rules.periods import PeriodError, parse_period
from mappa_core.rules.records import DUE_SOON_DAYS

COMMANDS = ("status", "due", "overdue", "case", "escalate", "scr", "help")
MAX_ESCALATION = 3000
_PERIOD_SHAPE = re.compile(r"\d{4}-\d{2}(-Q\d|-\d{2}\.\.\d{4}-\d{2}-\d{2})?")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,63}")


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    name: str
    topic: str = "all"
    period: str | None = None
    days: int = DUE_SOON_DAYS
    ref: str | None = None
    text: str = ""
    page: int = 1  # of a list that does not fit one message (the "Next" button's)
    kind: str | None = None  # `due` / `overdue`: one kind of item only
    area: str | None = None  # `due` / `overdue`: one area only (as typed; checked on answer)


MAX_AREA = 64  # characters of an area's name (the individual table's column)


def kind_word(word: str) -> str | None:
    """The kind of item a word names (`reviews`, `minutes`, `pre-release`, ...), or None."""
    word = word.lower().replace("-", "_")
    for kind in ITEM_KINDS:
        if word in (kind, kind + "s"):
            return kind
    return None


def due_filters(name: str, words: list[str]) -> Command:
    """`due [DAYS] [KIND] [AREA]` or `overdue [KIND] [AREA]`, in any order: a number is the
    days, a kind of item narrows the list to it, and the words left name an area."""
    days, kind, rest = None, None, []
    for word in words:
        if name == "due" and days is None and re.fullmatch("[0-9]{1,3}", word):
            days = int(word)
        elif kind is None and kind_word(word):
            kind = kind_word(word)
        else:
            rest.append(word)
    if days is not None and days > 365:
        raise ParseError("`due` takes a number of days from 0 to 365, e.g. `/mappa due 7`")
    area = " ".join(rest) or None
    if area is not None and len(area) > MAX_AREA:
        raise ParseError(f"an area's name is at most {MAX_AREA} characters")
    return Command(name, days=0 if name == "overdue" else DUE_SOON_DAYS if days is None else days,
                   kind=kind, area=area)


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def parse(text: str) -> Command:
    text = (text or "").strip()
    if not text:
        return Command("help")
    parts = re.split(r"\s", text, maxsplit=1)
    head, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    name = head.lower()
    words = rest.split()
    if name == "help":
        return Command("help")
    if name == "status" and words and words[0].lower() == "compare":
        if len(words) > 2:
            raise ParseError("`status compare` takes at most a period")
        period = words[1] if len(words) == 2 else None
        if period is not None:
            try:
                parse_period(period)
            except PeriodError as exc:
                raise ParseError(str(exc)) from None
        return Command("compare", period=period)
    if name == "status":
        topic, period, topic_given = "all", None, False
        for word in words:
            if word.lower() in TOPICS and not topic_given:
                topic, topic_given = word.lower(), True
                continue
            if period is not None:
                raise ParseError(f"`status` takes a topic and a period; {_short(word)!r} is one too many")
            try:
                parse_period(word)
            except PeriodError as exc:
                if _PERIOD_SHAPE.fullmatch(word):  # a period, but not one we can answer
                    raise ParseError(str(exc)) from None
                raise ParseError(
                    f"{_short(word)!r} is neither a topic ({', '.join(TOPICS)}) nor a period "
                    "(2026-27, 2026-27-Q3 or YYYY-MM-DD..YYYY-MM-DD)"
                ) from None
            period = word
        return Command("status", topic=topic, period=period)
    if name in ("due", "overdue"):
        return due_filters(name, words)
    if name == "case":
        if len(words) != 1 or not _REF.fullmatch(words[0]):
            raise ParseError("`case` takes one case reference, e.g. `/mappa case GRA-0101`")
        return Command("case", ref=words[0])
    if name == "scr":
        if not words:
            return Command("scr")
        sub = words[0].lower()
        if sub in ("update", "done") and len(words) >= 2 and re.fullmatch("[0-9]{1,9}", words[1]):
            note = rest.strip().split(None, 2)
            text = note[2] if len(note) > 2 else ""
            if sub == "update" and not text:
                raise ParseError("`scr update ID TEXT` needs the update in words")
            if len(text) > 2000:
                raise ParseError("an update is at most 2000 characters")
            return Command("scr", ref=words[1], text=text, topic=sub)
        raise ParseError("`scr` lists open actions; `scr update ID TEXT` or `scr done ID [TEXT]` records progress")
    if name == "escalate":
        body = rest.strip()
        if not body:
            raise ParseError("`escalate` needs the issue in words, e.g. `/mappa escalate ...`")
        if len(body) > MAX_ESCALATION:
            raise ParseError(f"an escalation is at most {MAX_ESCALATION} characters")
        return Command("escalate", text=body)
    raise ParseError(f"unknown command {_short(head)!r}")
