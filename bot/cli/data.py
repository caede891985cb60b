"""`mappa db upgrade` and `mappa import DIR`: the schema and the records."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli.common import Col, engine, settings, table
from mappa_core.storage import db


def register(sub) -> None:
    d = sub.add_parser("db", help="database schema")
    dsub = d.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=cmd_db)

    i = sub.add_parser("import", help="import the CSV files of a directory")
    i.add_argument("dir")
    i.add_argument("--dry-run", action="store_true", help="validate and count, write nothing")
    i.set_defaults(func=cmd_import)

    r = sub.add_parser("recorded", help="values people recorded through the bot, and those "
                                         "an import replaced")
    r.set_defaults(func=cmd_recorded)


def cmd_db(args) -> int:
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

    with engine().connect() as conn:
        standing, replaced = recorded.listing(conn), recorded.replaced_by_imports(conn)
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

