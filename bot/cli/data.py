"""`mappa db upgrade`, `mappa import DIR` and `mappa recorded`: the schema, the records and
the values people recorded through the bot.

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli.common import Col, engine, settings, table


def db_arguments(d) -> None:
    dsub = d.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=cmd_db)


def import_arguments(i) -> None:
    i.add_argument("dir")
    i.add_argument("--dry-run", action="store_true", help="validate and count, write nothing")
    i.set_defaults(func=cmd_import)


def recorded_arguments(r) -> None:
    r.set_defaults(func=cmd_recorded)


ARGUMENTS = {"db": db_arguments, "import": import_arguments, "recorded": recorded_arguments}


def cmd_db(args) -> int:
    from mappa_core.storage import db

    target = db.make_engine(settings().database_url)
    db.upgrade(target)
    print(f"schema is at revision {db.current_revision(target)}")
    return 0


IMPORT_COLUMNS = (Col("file", 20), Col("rows", 8, ">"), Col("created", 8, ">"),
                  Col("updated", 8, ">"), Col("unchanged", 9, ">"))


def cmd_import(args) -> int:
    from mappa_core.storage.importer import import_directory

    report = import_directory(engine(), Path(args.dir), dry_run=args.dry_run)
    for line in report.warnings:
        print(line, file=sys.stderr)
    if not report.ok:
        for line in report.errors:
            print(line, file=sys.stderr)
        print(
            f"mappa import: {report.error_count or len(report.errors)} error(s); nothing was written",
            file=sys.stderr,
        )
        return 1
    print(table(IMPORT_COLUMNS, [(f.filename, f.rows, f.created, f.updated, f.unchanged)
                                 for f in report.files]))
    print(f"values recorded through the bot: {report.kept} kept (blank in the export), "
          f"{report.replaced} replaced by the export (the old values are in the audit log)")
    if report.dry_run:
        print("dry run: nothing was written; the counts say what an import would do")
    return 0


RECORDED_COLUMNS = (Col("recorded (UTC)", 16), Col("table", 10), Col("row", None),
                    Col("column", 20), Col("value", None), Col("by", None))


def cmd_recorded(args) -> int:
    """What chairs recorded with the buttons and the reason form, which an import keeps
    where the export's cell is blank; and, from the audit log, each one an export replaced."""
    from mappa_core.storage import recorded

    standing, replaced = recorded.standing_and_replaced(engine())
    print(f"values recorded through the bot: {len(standing)}")
    if standing:
        print(table(RECORDED_COLUMNS, [
            (f"{r['recorded_at']:%Y-%m-%d %H:%M}" if r["recorded_at"] else "?", r["target_table"],
             r["row_key"], r["target_column"], r["value"], r["name"] or r["person_id"] or "?")
            for r in standing], indent="  "))
    print(f"replaced by an import (from the audit log): {len(replaced)}")
    for r in replaced:
        print(f"  {r['at']:%Y-%m-%d %H:%M} {r['detail']}")
    return 0

