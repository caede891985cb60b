"""`mappa db upgrade`, `mappa import DIR|BOOK.xlsx` and `mappa recorded`: the schema, the
records, and the values people recorded through the bot.

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli.common import Col, UsageError, engine, settings, table


def db_arguments(d) -> None:
    dsub = d.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=cmd_db)


def import_arguments(i) -> None:
    i.add_argument("dir", metavar="DIR|BOOK.xlsx")
    i.add_argument("--dry-run", action="store_true", help="validate and count, write nothing "
                   "(with --mapping: show what maps to what)")
    i.add_argument("--mapping", metavar="FILE.toml",
                   help="the unit's own file, sheet and column names and spellings "
                        "(docs/data-contract.md)")
    i.add_argument("--template", action="store_true",
                   help="write empty CSV files and a commented mapping file into DIR, and stop")
    i.set_defaults(func=cmd_import)


def recorded_arguments(r) -> None:
    r.add_argument("--pending", action="store_true",
                   help="only those the latest export does not show yet: what to key into "
                        "ViSOR, by case and meeting")
    r.add_argument("--csv", action="store_true", help="print CSV (one row a value)")
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
    from mappa_core.storage.importer import (
        MappingError, describe_mapping, import_directory, import_workbook, load_mapping,
        write_template,
    )

    path = Path(args.dir)
    if args.template:
        if args.mapping or args.dry_run:
            raise UsageError("--template writes the files to start from: no --mapping, "
                             "no --dry-run")
        try:
            written = write_template(path)
        except (FileExistsError, OSError) as exc:
            print(f"mappa import --template: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {len(written)} files into {path}: {', '.join(p.name for p in written)}")
        print(f"fill the CSV files, or edit {path / 'mapping.toml'} to read your export as it is")
        return 0
    mapping = None
    if args.mapping:
        try:
            mapping = load_mapping(args.mapping)
        except MappingError as exc:
            for line in exc.problems:
                print(line, file=sys.stderr)
            print(f"mappa import: {len(exc.problems)} problem(s) in the mapping file; nothing "
                  "was read or written", file=sys.stderr)
            return 2
    read = import_workbook if path.is_file() else import_directory
    report = read(engine(), path, dry_run=args.dry_run, mapping=mapping)
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
    if mapping is not None and report.dry_run:
        for line in describe_mapping(report):
            print(line)
        print()
    wide = max([20, *(len(f.filename) + 2 for f in report.files)])
    print(table((Col("file", wide), *IMPORT_COLUMNS[1:]),
                [(f.filename, f.rows, f.created, f.updated, f.unchanged) for f in report.files]))
    print(f"values recorded through the bot: {report.kept} kept (the export does not show "
          f"them yet), {report.caught_up} caught up (the export now agrees), "
          f"{report.replaced} replaced by the export (the old values are in the audit log)")
    if report.dry_run:
        print("dry run: nothing was written; the counts say what an import would do")
    return 0


RECORDED_COLUMNS = (Col("recorded (UTC)", 16), Col("table", 10), Col("row", None),
                    Col("column", 20), Col("value", None), Col("in the export", None),
                    Col("by", None))
# What each recordable column is, in words, for the co-ordinator keying it into ViSOR.
WHAT = {"minutes_issued": "minutes issued", "rmp_ratified": "RMP ratified",
        "written_contribution": "written contribution received", "reason": "reason"}
PENDING_CSV = ("ref", "meeting_id", "meeting_date", "agency", "column", "value", "export_value",
               "recorded_by", "recorded_at")


def cmd_recorded(args) -> int:
    """What chairs recorded with the buttons and the reason form, which an import keeps
    until the export changes; and, from the audit log, each one an export replaced. With
    --pending, what the latest export does not show yet: what to key into ViSOR."""
    from mappa_core.storage import recorded

    if args.pending:
        return _pending(recorded.pending_in(engine()), args.csv)
    standing, replaced = recorded.standing_and_replaced(engine())
    if args.csv:
        _csv(("recorded_at", "table", "row", "column", "value", "export_value", "recorded_by"),
             [(_utc(r["recorded_at"]), r["target_table"], r["row_key"], r["target_column"],
               r["value"], r["base"] or "", r["name"] or r["person_id"] or "")
              for r in standing])
        return 0
    waiting = sum(r["base"] != r["value"] for r in standing)
    print(f"values recorded through the bot: {len(standing)}")
    if waiting:
        print(f"  {waiting} not in the latest export yet: `mappa recorded --pending` lists "
              "what to key into ViSOR")
    if standing:
        print(table(RECORDED_COLUMNS, [
            (f"{r['recorded_at']:%Y-%m-%d %H:%M}" if r["recorded_at"] else "?", r["target_table"],
             r["row_key"], r["target_column"], r["value"],
             "(same)" if r["base"] == r["value"] else (r["base"] or "(blank)"),
             r["name"] or r["person_id"] or "?")
            for r in standing], indent="  "))
    print(f"replaced by an import (from the audit log): {len(replaced)}")
    for r in replaced:
        print(f"  {r['at']:%Y-%m-%d %H:%M} {r['detail']}")
    return 0


def _utc(at) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else ""


def _csv(header, rows) -> None:
    import csv

    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(header)
    out.writerows(rows)


def _pending(rows: list[dict], as_csv: bool) -> int:
    """The values to key into ViSOR, grouped as a co-ordinator keys them: by case, then
    meeting; each with what the export says now and who recorded it when."""
    if as_csv:
        _csv(PENDING_CSV, [
            (r["ref"] or "", r["meeting_id"], r["meeting_date"] or "", r["agency"] or "",
             r["target_column"], r["value"], r["base"] or "", r["name"] or r["person_id"] or "",
             _utc(r["recorded_at"])) for r in rows])
        return 0
    cases = len({r["ref"] for r in rows})
    meetings = len({r["meeting_id"] for r in rows})
    if not rows:
        print("to key into ViSOR: nothing (every value recorded through the bot is in the "
              "latest export)")
        return 0
    print(f"to key into ViSOR: {len(rows)} value(s) recorded through the bot that the latest "
          f"export does not show yet ({cases} case(s), {meetings} meeting(s))")
    case = meeting = object()
    for r in rows:
        if r["ref"] != case:
            case, meeting = r["ref"], object()
            print(f"\n{case or '(meeting no longer in the records)'}")
        if r["meeting_id"] != meeting:
            meeting = r["meeting_id"]
            print(f"  meeting {meeting}" + (f" on {r['meeting_date']}" if r["meeting_date"] else ""))
        what = WHAT.get(r["target_column"], r["target_column"])
        if r["agency"]:
            what += f" ({r['agency_name'] or r['agency']})"
        print(f"    {what}: {r['value']} (the export says {r['base'] or 'nothing'}); recorded by "
              f"{r['name'] or r['person_id'] or '?'} at {_utc(r['recorded_at'])} UTC")
    return 0
