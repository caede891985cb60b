"""Parse the text after `/mappa` into a command. Pure: any text ends in a Command or a
ParseError (a checks.Mistake) whose message is safe to show; nothing here raises anything
else. A period is read here, once, into a `Period` the rules compute with; given the day
the answer is as of, one that has not started is refused here too (checks.period_asked,
the check every door shares)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bot.commands.checks import Mistake, period_asked, period_named
from mappa_core.rules.indicators import TOPICS
from mappa_core.rules.kinds import ITEM_KINDS
from mappa_core.rules.periods import Period
from mappa_core.rules.records import DUE_SOON_DAYS

COMMANDS = ("status", "due", "overdue", "case", "escalate", "scr", "help")
_PERIOD_SHAPE = re.compile(r"\d{4}-\d{2}(-Q\d|-\d{2}\.\.\d{4}-\d{2}-\d{2})?")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,63}")


class ParseError(Mistake):
    pass


@dataclass(frozen=True)
class Command:
    name: str
    topic: str = "all"
    period: Period | None = None  # as typed (the label says how); None: the quarter to date
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


def _period(word: str, as_of: dt.date | None) -> Period:
    """The period `word` names; with `as_of`, refused if it has not started by then."""
    try:
        return period_named(word) if as_of is None else period_asked(word, as_of)
    except Mistake as exc:
        raise ParseError(str(exc)) from None


def parse(text: str, as_of: dt.date | None = None) -> Command:
    """The command `text` asks for; `as_of`: the day its answer is as of (today), when the
    door knows it, so that a period that has not started is refused at once."""
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
        period = _period(words[1], as_of) if len(words) == 2 else None
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
                period = _period(word, as_of)
            except ParseError:
                if _PERIOD_SHAPE.fullmatch(word):  # a period, but not one we can answer
                    raise
                raise ParseError(
                    f"{_short(word)!r} is neither a topic ({', '.join(TOPICS)}) nor a period "
                    "(2026-27, 2026-27-Q3 or YYYY-MM-DD..YYYY-MM-DD)"
                ) from None
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
        # Any length (it is sent whole); none asks what the issue is (bot/commands/escalate).
        return Command("escalate", text=rest.strip())
    raise ParseError(f"unknown command {_short(head)!r}")
