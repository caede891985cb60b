"""The one check of what a person typed, for every door (a Slack command, a page button, a
`mappa` CLI argument; a Teams card next): a period, an area, a date. Each either gives the
value the rules compute with or raises `Mistake`, whose message says in words what is wrong
and is safe to show whoever typed it. A door answers a Mistake as one (Slack: the help with
the problem above it; the CLI: `mappa: error: ...`, exit 2), never as "something went
wrong": that is for the product's own faults, which keep their error id.

The words come from here (and from mappa_core.rules.periods for a period), so every door
says the same thing about the same mistake."""

from __future__ import annotations

import datetime as dt

from mappa_core.rules.periods import Period, PeriodError, asked, parse_period
from mappa_core.rules.values import parse_date


class Mistake(ValueError):
    """A person's mistake in what they asked for: the message says it in words."""


def period_named(text: str) -> Period:
    """The period `text` names (2026-27, 2026-27-Q3, YYYY-MM-DD..YYYY-MM-DD), read once."""
    try:
        return parse_period(text)
    except PeriodError as exc:
        raise Mistake(str(exc)) from None


def period_asked(period: Period | str | None, as_of: dt.date) -> Period:
    """The period a question as of `as_of` is about: the one named (text is read first),
    else the quarter to date; refused when it has not started by `as_of`."""
    if isinstance(period, str):
        period = period_named(period)
    try:
        return asked(period, as_of)
    except PeriodError as exc:
        raise Mistake(str(exc)) from None


def date_named(text: str) -> dt.date:
    """A date as the whole product reads one (YYYY-MM-DD or DD/MM/YYYY)."""
    try:
        return parse_date(text)
    except ValueError as exc:
        raise Mistake(str(exc)) from None


def areas_matching(typed: str, known: list[str]) -> list[str]:
    """The known areas `typed` may name: the one with the same name in any case, else each
    whose name starts with it (`lothian`: Lothian and Borders)."""
    typed = " ".join(typed.split()).casefold()
    exact = [a for a in known if a.casefold() == typed]
    return exact or [a for a in known if a.casefold().startswith(typed)]


def area_named(typed: str, known: list[str]) -> str:
    """The one known area `typed` names, or a Mistake listing the areas it could mean (or
    all of them)."""
    named = areas_matching(typed, known)
    if len(named) == 1:
        return named[0]
    some = f"Several areas start with '{typed}'" if named else f"No area is called '{typed}'"
    raise Mistake(f"{some}. Areas: {', '.join(named or known)}.")
