"""What every `mappa` command shares: its errors, the settings in force, the database,
today's date, the argument types, and the one renderer of text tables.

Light to import (no database library, pandas or pydantic): every command's module imports
it, `mappa <command> --help` included; the heavy imports are inside the functions below."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.commands.checks import Mistake, area_named, date_named


class UsageError(Exception):
    """Bad arguments from the user: printed as `mappa: error: ...`, exit status 2."""


class EmptyDatabase(Exception):
    """A command that answers from the records found none: exit 1, not an answer of zeros."""


_loaded = None  # bot.settings.Loaded, set by load() (main() calls it before any command runs)


def load(env_file: str | None = None):
    """Read the settings (the environment and the settings file) for this run."""
    global _loaded
    from bot.settings import load as load_settings  # pydantic: once a command runs

    _loaded = load_settings(env_file)
    return _loaded


def loaded():
    """The settings in force and where each came from (bot.settings.Loaded)."""
    return _loaded if _loaded is not None else load()


def settings():
    """The settings in force (loaded once, by main(), from the environment and .env)."""
    return loaded().settings


def today() -> dt.date:
    """Today in the configured time zone (MAPPA_TIMEZONE, default Europe/London); the edges
    pass it to the core, which never reads the clock."""
    return dt.datetime.now(settings().tz).date()


def date_arg(text: str) -> dt.date:
    """An argparse type: a date as the whole product reads one (YYYY-MM-DD or DD/MM/YYYY)."""
    try:
        return date_named(text)
    except Mistake as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def engine():
    """The configured database, its schema checked (and created when there is none)."""
    from mappa_core.storage import db  # SQLAlchemy: only for a command that opens the database

    found = db.make_engine(settings().database_url)
    db.ensure_schema(found)
    return found


def records_engine(args):
    """The engine for a command that answers from the records: refuses an empty database
    and an unknown --area or --chair (which would otherwise give an answer of zeros)."""
    # pandas and SQLAlchemy: only for a command that answers from the records
    from mappa_core.storage.queries import count_individuals, known_areas, known_chairs
    from mappa_core.storage.urls import describe

    found = engine()
    if not count_individuals(found):
        raise EmptyDatabase(
            f"the database {describe(found)} is empty (no "
            "individuals): import the CSV files with `mappa import DIR`, or set "
            "MAPPA_DATABASE_URL to the database that holds them"
        )
    if getattr(args, "area", None):
        # As `/mappa due AREA` reads it (bot/commands/checks.py): the same match and words.
        args.area = area_named(args.area, known_areas(found))
    if getattr(args, "chair", None):
        chairs = known_chairs(found)
        if args.chair not in chairs:
            raise UsageError(f"unknown chair {args.chair!r}: the known chairs are {', '.join(chairs)}")
    return found


# --------------------------------------------------------------------------- text tables


@dataclass(frozen=True)
class Col:
    """A column of a text table: its heading, its width (None: as wide as its widest
    cell), its alignment ("<" left, ">" right, "^" centred) and what stands before it."""

    title: str = ""
    width: int | None = 0
    align: str = "<"
    gap: str = " "


def table(columns: Sequence[Col], rows: Iterable[Sequence | str], *, header: bool = True,
          indent: str = "") -> str:
    """Rows under their column headings, each cell padded to its column's width. A row
    that is a string stands as it is (a note under the row above); a row shorter than the
    columns ends at its last cell, and no line ends in the padding of its last cell."""
    rows = list(rows)
    if header:
        rows.insert(0, [c.title for c in columns])
    widths = [c.width if c.width is not None else
              max((len(str(r[i])) for r in rows if not isinstance(r, str) and len(r) > i),
                  default=0)
              for i, c in enumerate(columns)]
    lines = []
    for row in rows:
        if isinstance(row, str):
            lines.append(row)
            continue
        cells = [format(str(value), f"{c.align}{width}")
                 for c, width, value in zip(columns, widths, row)]
        if cells and columns[len(cells) - 1].align != ">":
            cells[-1] = cells[-1].rstrip(" ")
        cells = [(c.gap if i else "") + cell for i, (c, cell) in enumerate(zip(columns, cells))]
        lines.append(indent + "".join(cells))
    return "\n".join(lines)
