"""How a person writes a date and a yes or no: read the same way everywhere (the CSV
import, `mappa` arguments, the settings, Slack), so that a value accepted in one place is
accepted in all, with the same message when it is not."""

from __future__ import annotations

import datetime as dt
import re

# The years any record can hold (the importer refuses dates outside them); a period or an
# as-of date outside them has nothing to answer and would overflow the date arithmetic.
FIRST_YEAR, LAST_YEAR = 1900, 2100
YES = frozenset({"yes", "y", "true", "1", "on"})
NO = frozenset({"no", "n", "false", "0", "off"})
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_UK = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def shown(text: str, limit: int = 40) -> str:
    """A value quoted for a message, cut short if it is long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_date(text: str) -> dt.date:
    """An ISO date (YYYY-MM-DD) or a UK one (DD/MM/YYYY, never US order), in the years
    records hold; ValueError says why not."""
    text = text.strip()
    iso, uk = _ISO.fullmatch(text), _UK.fullmatch(text)
    if not (iso or uk):
        raise ValueError(f"{shown(text)} is not a date (use YYYY-MM-DD or DD/MM/YYYY)")
    try:
        day = dt.date.fromisoformat(text) if iso else dt.date(int(uk[3]), int(uk[2]), int(uk[1]))
    except ValueError as exc:  # 2026-02-30, or 07/31/2026 written in US order
        raise ValueError(f"{shown(text)} is not a real date ({exc})") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"{shown(text)} is outside the years {FIRST_YEAR}-{LAST_YEAR}")
    return day


def parse_yes_no(text: str) -> bool:
    """yes/no, y/n, true/false, 1/0 or on/off, in any case; ValueError says why not."""
    low = text.strip().lower()
    if low in YES:
        return True
    if low in NO:
        return False
    raise ValueError(f"{shown(text)} is not yes or no")
