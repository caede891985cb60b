"""`mappa report quarterly|stats|annual|compare`: the SOG's reports.

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.cli.common import Col, UsageError, date_arg, records_engine, table, today
from bot.commands.checks import period_asked, period_named
from mappa_core.rules.periods import quarter_of, reporting_year

STATS_BY = ("category", "level", "gender", "ethnicity", "age_band", "rosh")

# Names a person gives a file, not a directory: `--out q2.csv` for a report of several files
# would otherwise make a directory called q2.csv.
FILE_SUFFIXES = (".csv", ".html", ".htm")


def out_directory(args, default: str, files: str) -> Path:
    """--out of a report that writes several files (`files` says which): a directory. One
    named like a file is refused (exit 2) before anything is read or written."""
    out = Path(args.out or default)
    if out.suffix.lower() in FILE_SUFFIXES:
        raise UsageError(
            f"--out {args.out} names a {out.suffix} file, but this report writes {files}: "
            f"pass a directory to write them in, such as --out {out.with_suffix('')}")
    return out


def report_arguments(r) -> None:
    rsub = r.add_subparsers(dest="report", required=True)
    rq = rsub.add_parser("quarterly", help="the SOG's quarterly pack (self-contained HTML, or CSV)")
    rq.add_argument("--period", help="2026-27-Q3 (default: the quarter containing --as-of)")
    rq.add_argument("--area")
    rq.add_argument("--as-of", type=date_arg)
    rq.add_argument("--out", help="file (html) or directory (csv: one file per table)")
    rq.add_argument("--format", choices=["html", "csv"], default="html")
    rq.set_defaults(func=cmd_report)
    rs = rsub.add_parser("stats", help="ViSOR-style statistics (guidance 19.14)")
    rs.add_argument("--from", dest="from_", type=date_arg, required=True)
    rs.add_argument("--to", type=date_arg, required=True)
    rs.add_argument("--area")
    rs.add_argument("--by", help="comma list: " + ",".join(STATS_BY))
    rs.add_argument("--out", help="write CSV files (one per table) to this directory")
    rs.set_defaults(func=cmd_report)
    ra = rsub.add_parser("annual", help="annual report Annex 3 Tables 1 and 2")
    ra.add_argument("--year", required=True, help="reporting year, e.g. 2026-27")
    ra.add_argument("--area")
    ra.add_argument("--as-of", type=date_arg,
                    help="count to this date in a year not yet ended (default today)")
    ra.add_argument("--out", help="directory (default annual-YEAR)")
    ra.set_defaults(func=cmd_report)
    rc = rsub.add_parser("compare", help="every area side by side on each indicator")
    rc.add_argument("--period")
    rc.add_argument("--as-of", type=date_arg)
    rc.add_argument("--csv", action="store_true")
    rc.set_defaults(func=cmd_report)


ARGUMENTS = {"report": report_arguments}


def cmd_report(args) -> int:
    try:
        return REPORTS[args.report](args)
    except OSError as exc:  # --out names a missing directory, a file in the way, ...
        where = Path(exc.filename) if exc.filename else Path(args.out or ".")
        hint = ""
        if not where.parent.is_dir():
            hint = f" (the directory {where.parent} does not exist)"
        raise UsageError(f"cannot write {where}: {exc.strerror or exc}{hint}") from None


def _quarterly(args) -> int:
    from bot.exports import quarterly_csv, quarterly_html, write_private_text
    from mappa_core.rules import reports
    from mappa_core.storage.queries import load_records

    as_of = args.as_of or today()
    period = period_named(args.period) if args.period else quarter_of(as_of)
    if args.format == "csv":
        out = out_directory(args, f"pack-{period.label}", "a CSV file for each table")
    else:
        out = Path(args.out or f"pack-{period.label}.html")
        if out.suffix.lower() == ".csv":
            raise UsageError(f"--out {args.out} names a .csv file, but --format is html: name an "
                             ".html file, or add --format csv and name a directory")
    engine = records_engine(args)
    records = load_records(engine, args.area, since=reports.pack_since(period, as_of))
    pack = reports.quarterly_pack(records, period, as_of, args.area)
    if pack.in_progress:
        prog = pack.in_progress
        print(f"{period.label} is in progress: figures to {as_of} ({prog['done']} of {prog['total']} "
              "working days); the pack says so, and compares cases managed to the same day")
    if args.format == "csv":
        paths = quarterly_csv(pack, out)
        print(f"wrote {len(paths)} CSV files to {out}")
        return 0
    names = dict(zip(records.agencies["agency"], records.agencies["name"]))
    write_private_text(out, quarterly_html(pack, names))
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return 0


def _compare(args) -> int:
    from bot.exports import write_csv
    from mappa_core.rules import reports
    from mappa_core.rules.records import window_start
    from mappa_core.storage.queries import load_records

    engine = records_engine(args)
    as_of = args.as_of or today()
    period = period_asked(args.period, as_of)  # as `/mappa status compare` checks it
    records = load_records(engine, since=window_start(as_of, period.start))
    compared = reports.compare_areas(records, period, as_of)
    if args.csv:
        write_csv(compared, sys.stdout)
        return 0
    ids = [c.removesuffix("_percent") for c in compared.columns if c.endswith("_percent")]
    print(f"Areas side by side, {period.start} to {period.end}, as of {as_of}")
    for _, row in compared.iterrows():
        print(f"\n{row['area']} (Level 2 cases {row['level2_cases']}, Level 3 cases {row['level3_cases']})")
        rows = []
        for i in ids:
            pct = row[f"{i}_percent"]
            shown = "   -  " if pct is None or pct != pct else f"{pct:5.1f}%"
            rows.append((i, shown, f"({row[f'{i}_n']})"))
        print(table([Col(width=20), Col(), Col()], rows, header=False, indent="  "))
    return 0


def _stats(args) -> int:
    from bot.exports import private_dir, text_table, write_csv
    from mappa_core.rules import reports
    from mappa_core.storage.queries import load_records

    if args.to < args.from_:
        raise UsageError("--to is before --from")
    out = out_directory(args, "", "a CSV file for each table") if args.out else None
    engine = records_engine(args)
    records = load_records(engine, args.area, with_events=True)
    by = tuple(b.strip() for b in (args.by or "").split(",") if b.strip())
    unknown = set(by) - set(STATS_BY)
    if unknown:
        raise UsageError(f"--by takes {', '.join(STATS_BY)}; not {', '.join(sorted(unknown))}")
    tables = reports.statistics(records, args.from_, args.to, by)
    if out:
        private_dir(out)
        for name, df in tables.items():
            write_csv(df, out / f"{name}.csv")
        print(f"wrote {len(tables)} CSV files to {out}")
        return 0
    for name, df in tables.items():
        print(f"\n{name.replace('_', ' ')}")
        print(text_table(df) if not df.empty else "  (none)")
    return 0


def _annual(args) -> int:
    from bot.exports import private_dir, text_table, write_csv, write_private_text
    from mappa_core.rules import reports
    from mappa_core.storage.queries import area_populations, load_records

    year = period_named(args.year)
    if year.label != args.year or "-Q" in args.year or ".." in args.year:
        raise UsageError("--year is a reporting year such as 2026-27")
    out = out_directory(args, f"annual-{year.label}", "table1.csv, table2.csv and annual.html")
    year = reporting_year(year.start.year)
    end = reports.annual_end(year, args.as_of or today())
    engine = records_engine(args)
    records = load_records(engine, args.area, with_events=True)
    tables = reports.annual_tables(records, year, area_populations(engine), end)
    private_dir(out)
    for name, df in tables.items():
        write_csv(df, out / f"{name}.csv")
    write_private_text(out / "annual.html",
                       render_annual(tables, year.label, end if end < year.end else None))
    if end < year.end:
        print(f"year in progress: figures to {end} (counts 'on 31 March' are on {end})")
    for name, df in tables.items():
        print(f"\nAnnex 3 {name.replace('table', 'Table ')}")
        print(text_table(df))
    print(f"\nwrote {out}/table1.csv, table2.csv and annual.html")
    return 0


def render_annual(tables, label: str, to=None) -> str:
    """The annual tables as HTML; `to`: the day a year in progress is counted to."""
    from bot.templates import render_text

    return render_text("report/annual.html.j2", label=label, to=to,
                       table1=tables["table1"].to_dict("records"),
                       table2=tables["table2"].to_dict("records"))


REPORTS = {"quarterly": _quarterly, "stats": _stats, "annual": _annual, "compare": _compare}
