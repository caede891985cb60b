"""The `mappa` command line: import, status, due, reports, jobs, the outbox, audits,
the bot itself, demo data and database upgrades.

One module per group of commands, each with `register(sub)` adding its subcommands to
the parser (in the order of GROUPS, which is the order of `mappa --help`):
config, data (db, import), status (status, due, exceptions), serve, outbox, jobs,
reports, oversight (audit, scr) and demo (demo-day, demo-data). What they share (the
settings, the database, today, the errors below and the one text-table renderer) is in
common.py.

Every command first loads the settings (bot/settings.py: the environment and `.env`); a bad
one stops it with exit 2 and one line naming the variable, before anything is read or written.
"""

from __future__ import annotations

import argparse
import signal
import sys

from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from bot.cli import config, data, demo, jobs, outbox, oversight, reports, serve, status
from bot.cli.common import EmptyDatabase, UsageError
from bot.cli.jobs import print_messages
from mappa_core.rules.periods import PeriodError
from mappa_core.rules.status import TopicError
from mappa_core.storage import db

GROUPS = (config, data, status, serve, outbox, jobs, reports, oversight, demo)

__all__ = ["EmptyDatabase", "UsageError", "build_parser", "main", "print_messages"]


DISTRIBUTION = "mappa-bot"  # [project] name in pyproject.toml


def installed_version() -> str:
    """The version of the installed distribution (what `pip install` put in its metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mappa", description="MAPPA performance indicators and deadlines (Scotland)."
    )
    p.add_argument("--env-file", dest="env_file",
                   help="settings file (default .env in the working directory, if there is one)")
    p.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):
        # `mappa due | head` should stop quietly, not with a traceback.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    from bot.cli import common
    from bot.settings import SettingsError, hide_password

    try:
        loaded = common.load(getattr(args, "serve_env_file", None) or args.env_file)
    except SettingsError as exc:
        parser.exit(2, f"mappa: {exc}\n")
    for warning in loaded.warnings:
        print(f"mappa: warning: {warning}", file=sys.stderr)
    try:
        return args.func(args)
    except (UsageError, PeriodError, TopicError) as exc:
        parser.exit(2, f"mappa: error: {exc}\n")
    except EmptyDatabase as exc:
        parser.exit(1, f"mappa: {exc}\n")
    except db.SchemaError as exc:
        parser.exit(2, f"mappa: {exc}\n")
    except (DBAPIError, ArgumentError, NoSuchModuleError) as exc:
        safe = hide_password(loaded.settings.database_url)
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        reason = db.redact(reason, loaded.settings.database_url)
        if any(x in reason for x in ("no such table", "no such column", "does not exist")):
            reason = f"it is not a mappa-bot database, or not of this version ({reason})"
        parser.exit(2, f"mappa: cannot use the database {safe} (MAPPA_DATABASE_URL): {reason}\n")
    return 0
