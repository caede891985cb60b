"""The `mappa` command line: import, status, due, reports, jobs, the outbox, audits,
the bot itself, demo data and database upgrades.

COMMANDS names every command, the module of bot/cli that defines it and its line in
`mappa --help` (in the order shown): config, data (db, import, recorded), status (status,
due, exceptions), serve, outbox, jobs, reports (report), audits_and_scrs (audit, scr) and
demo (demo-day, demo-data). Each module's ARGUMENTS maps its commands to the function that
adds their arguments and the function that runs them; what they share (the settings, the
database, today, the errors and the one text-table renderer) is in common.py.

A command pays only for what it uses: only the chosen command's module is imported, so
`mappa --version` and `mappa <command> --help` load no database library, pandas or
pydantic, and `mappa status` loads neither the scheduler nor Slack nor the report
templates. Each module imports its heavy libraries inside the command that needs them.

Every command first loads the settings (bot/settings.py: the environment and `.env`); a bad
one stops it with exit 2 and one line naming the variable, before anything is read or written.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from bot.cli.common import EmptyDatabase, UsageError

__all__ = ["COMMANDS", "EmptyDatabase", "UsageError", "build_parser", "main"]

# command -> (its module in bot/cli, its line in `mappa --help`), in the order of the help.
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("config", "the settings in force and where each came from"),
    "db": ("data", "database schema"),
    "import": ("data", "import the CSV files of a directory, or the sheets of an Excel workbook"),
    "recorded": ("data", "values people recorded through the bot, and those an import "
                         "replaced"),
    "status": ("status", "the indicators for a period and area"),
    "due": ("status", "what is overdue and what falls due soon"),
    "exceptions": ("status", "exceptions grouped by reason, agency, case and chair"),
    "serve": ("serve", "run the Slack bot (HTTP mode, or Socket Mode)"),
    "outbox": ("outbox", "see and replay notifications that failed"),
    "jobs": ("jobs", "the scheduled jobs"),
    "report": ("reports", "SOG reports: quarterly pack, statistics, annual tables, comparison"),
    "audit": ("audits_and_scrs", "case and meeting audits"),
    "scr": ("audits_and_scrs", "Significant Case Reviews: recommendations and actions"),
    "demo-day": ("demo", "simulate a working day of jobs (console Slack, local SMTP)"),
    "demo-data": ("demo", "write a synthetic Scotland's CSV files (ten MAPPA areas)"),
}

DISTRIBUTION = "mappa-bot"  # [project] name in pyproject.toml


def installed_version() -> str:
    """The version of the installed distribution (what `pip install` put in its metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "(not installed)"


class _Version(argparse.Action):
    """--version, reading the installed metadata only when asked (as argparse's own
    `version` action prints it, then exits)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show program's version number and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {installed_version()}")
        parser.exit()


def build_parser(command: str | None = None, *, probe: bool = False) -> argparse.ArgumentParser:
    """The `mappa` parser. Every command is listed, as `mappa --help` shows them; the
    arguments are those of `command` only, or of every command when it is None (the tests
    and the deployment checks parse any command line with it). A `probe` parser has none and
    lets a command's own -h through: main() uses it to learn which command was chosen."""
    p = argparse.ArgumentParser(
        prog="mappa", description="MAPPA performance indicators and deadlines (Scotland)."
    )
    p.add_argument("--env-file", dest="env_file",
                   help="settings file (default .env in the working directory, if there is one)")
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True)
    for name, (module, line) in COMMANDS.items():
        parser = sub.add_parser(name, help=line, add_help=not probe)
        if not probe and command in (None, name):
            importlib.import_module(f"bot.cli.{module}").ARGUMENTS[name](parser)
    return p


def main(argv: list[str] | None = None) -> int:
    # pydantic looks through every installed distribution's entry points for plugins the
    # first time a model is built (the settings, the tables); mappa uses none, so skip the
    # look unless the operator has said otherwise.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if argv is None and hasattr(signal, "SIGPIPE"):
        # `mappa due | head` should stop quietly, not with a traceback.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    command = build_parser(probe=True).parse_known_args(argv)[0].command
    parser = build_parser(command)
    args = parser.parse_args(argv)
    # pydantic (the settings) only once a command runs: --help and --version never pay for it.
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
    except UsageError as exc:
        parser.exit(2, f"mappa: error: {exc}\n")
    except EmptyDatabase as exc:
        parser.exit(1, f"mappa: {exc}\n")
    except Exception as exc:
        # Which errors are the user's (a period or topic), and which say the database cannot
        # be used, is the core's and storage's to know; both are loaded by now if they can
        # have raised.
        from bot.commands.checks import Mistake
        from mappa_core.rules.periods import PeriodError
        from mappa_core.rules.status import TopicError
        from mappa_core.storage import db

        if isinstance(exc, Mistake | PeriodError | TopicError):  # a person's mistake
            parser.exit(2, f"mappa: error: {exc}\n")
        if isinstance(exc, db.SchemaError):
            parser.exit(2, f"mappa: {exc}\n")
        if isinstance(exc, db.UNUSABLE):
            safe = hide_password(loaded.settings.database_url)
            parser.exit(2, f"mappa: cannot use the database {safe} (MAPPA_DATABASE_URL): "
                           f"{db.why_unusable(exc, loaded.settings.database_url)}\n")
        raise
    return 0
