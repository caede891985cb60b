"""`mappa status`, `mappa due` and `mappa exceptions`: the indicators, the deadlines and
the exceptions, answered from the records.

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys

from bot.cli.common import Col, UsageError, date_arg, records_engine, settings, table, today
from mappa_core.rules.vocabulary import Topic
from mappa_core.rules.records import DUE_SOON_DAYS

TICK, CROSS = "\u2713", "\u2717"


def status_arguments(s) -> None:
    s.add_argument("topic", nargs="?", default="all", choices=[t.value for t in Topic])
    s.add_argument("--period", help="2026-27, 2026-27-Q3 or YYYY-MM-DD..YYYY-MM-DD")
    s.add_argument("--area")
    s.add_argument("--as-of", type=date_arg, help="date the records stood (default today)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)


def due_arguments(u) -> None:
    u.add_argument("--days", type=int, default=DUE_SOON_DAYS,
                   help=f"look this many days ahead ({DUE_SOON_DAYS})")
    u.add_argument("--chair", help="only this chair's items (person id)")
    u.add_argument("--area")
    u.add_argument("--as-of", type=date_arg)
    u.add_argument("--limit", type=int, default=0, help="show at most this many rows")
    u.set_defaults(func=cmd_due)


def exceptions_arguments(x) -> None:
    x.add_argument("--period")
    x.add_argument("--area")
    x.add_argument("--as-of", type=date_arg)
    x.add_argument("--indicator", help="one indicator id (default: all ten)")
    x.add_argument("--csv", action="store_true", help="every exception as CSV rows")
    x.set_defaults(func=cmd_exceptions)


ARGUMENTS = {"status": status_arguments, "due": due_arguments,
             "exceptions": exceptions_arguments}


# --------------------------------------------------------------------------- status


def _fmt_pct(value) -> str:
    return "  -  " if value is None else f"{value:5.1f}%"


def _fmt_met(value) -> str:
    return "-" if value is None else (TICK if value else CROSS)


STATUS_COLUMNS = (Col("indicator", 20), Col("target", 6, ">"), Col("result", 7, ">"),
                  Col("(n/d)", 11, ">"), Col("met", 3, "^", gap="  "), Col("margin", 6, ">"),
                  Col("pending", 7, ">"))


def render_status(data: dict) -> str:
    per = data["period"]
    area = data["area"] or "all areas"
    rows: list = []
    for ind in data["indicators"]:
        margin = "-" if ind["margin"] is None else ind["margin"]
        rows.append((ind["id"], f"{ind['target']}%", _fmt_pct(ind["percent"]),
                     f"({ind['numerator']}/{ind['denominator']})", _fmt_met(ind["met"]), margin,
                     ind["pending"]))
        for b in ind.get("breakdown") or []:
            rows.append((f"  {b['agency']}", "", _fmt_pct(b["percent"]),
                         f"({b['numerator']}/{b['denominator']})", _fmt_met(b["met"])))
        if ind["counts"]:
            counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ind["counts"].items())
            rows.append(f"  now: {counts}")
    # The first column widens for agency ids longer than it (ten areas' `housing-north-
    # strathclyde`), so that the figures stay in their columns.
    first = max([STATUS_COLUMNS[0].width] + [len(r[0]) for r in rows if not isinstance(r, str)])
    columns = (dataclasses.replace(STATUS_COLUMNS[0], width=first), *STATUS_COLUMNS[1:])
    lines = [
        f"MAPPA indicators - {area} - {per['start']} to {per['end']}, as of {data['as_of']}",
        "",
        table(columns, rows),
    ]
    if "data_quality" in data:
        from mappa_core.rules.indicators import data_quality_counts

        counts = data_quality_counts(data["data_quality"])
        # Seniority is checked only where the topic reads the invitations (attendance).
        if not any(i["id"].endswith("-attendance") for i in data["indicators"]):
            counts.pop("seniority_unknown")
        lines.append("")
        lines.append("data quality: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                     + " (--json lists the cases)")
    lines.append("")
    lines.append(
        "margin: further failures the period can absorb and still meet the target, "
        "counting the pending items"
    )
    return "\n".join(lines)


def cmd_status(args) -> int:
    from bot.commands.checks import period_asked
    from mappa_core.answers import status

    as_of = args.as_of or today()
    period = period_asked(args.period, as_of)  # read once, checked as every door checks it
    data = status(records_engine(args), as_of, args.topic, period, args.area,
                  settings().lookback_days)
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(render_status(data))
    return 0


# --------------------------------------------------------------------------- exceptions


EXCEPTION_GROUPS = {"by_reason": "by reason", "by_agency": "by agency",
                    "by_case": "cases with more than one exception", "by_chair": "by chair"}


def cmd_exceptions(args) -> int:
    from mappa_core.rules.indicators import (
        INDICATORS,
        compute_deadlines,
        compute_indicators,
        exceptions_frame,
        group_exceptions,
    )
    from bot.commands.checks import period_asked
    from mappa_core.rules.records import window_start
    from mappa_core.rules.status import resolve
    from mappa_core.storage.queries import load_records

    as_of = args.as_of or today()
    ids, period = resolve("all", period_asked(args.period, as_of), as_of)
    if args.indicator:
        if args.indicator not in INDICATORS:
            raise UsageError(f"unknown indicator {args.indicator!r}: use one of {', '.join(INDICATORS)}")
        ids = (args.indicator,)
    records = load_records(records_engine(args), args.area, since=window_start(as_of, period.start))
    results = compute_indicators(compute_deadlines(records, as_of), period, ids)
    if args.csv:
        from bot.exports import write_csv

        write_csv(exceptions_frame(results), sys.stdout)
        return 0
    groups = group_exceptions(results)
    total = sum(len(r.exceptions) for r in results)
    print(f"{total} exception(s), {period.start} to {period.end}, as of {as_of}")
    for key, title in EXCEPTION_GROUPS.items():
        print(f"\n{title}:")
        if not groups[key]:
            print("  (none)")
            continue
        counted = sorted(groups[key].items(), key=lambda kv: (-kv[1], kv[0]))
        print(table([Col(width=5, align=">"), Col(gap="  ")],
                    [(n, name) for name, n in counted], header=False, indent="  "))
    return 0


# --------------------------------------------------------------------------- due


def _text(value) -> str:
    """A cell for display: blank for None and NaN."""
    return "" if value is None or value != value else str(value)


DUE_COLUMNS = (Col("", 2), Col("deadline", 10), Col("wd left", 7, ">"), Col("what", 34, gap="  "),
               Col("case", 12), Col("meeting", 10), Col("agency", 16), Col("chair"))


def _chair_shown(chair_id, names: dict[str, str]) -> str:
    """A chair as a person reads them: the name, with the id `--chair` takes."""
    chair = _text(chair_id)
    name = names.get(chair)
    return f"{name} ({chair})" if name and name != chair else chair


def render_due(items, as_of: dt.date, shown: int | None = None,
               chair_names: dict[str, str] | None = None) -> str:
    """Every item's counts in the last line; only the first `shown` items listed; a chair
    by name (`chair_names`: person id -> name) where known."""
    from mappa_core.rules.kinds import ITEM_KINDS

    chair_names = chair_names or {}

    if items.empty:
        return f"Nothing overdue or due soon as of {as_of.isoformat()}."
    listed = items if shown is None else items.head(shown)
    rows: list = []
    for row in listed.itertuples(index=False):
        rows.append(("!!" if row.overdue else "", row.deadline.date().isoformat(),
                     row.working_days_left, ITEM_KINDS[row.kind].label, row.ref,
                     _text(row.meeting_id), _text(row.agency), _chair_shown(row.chair_id, chair_names)))
        if row.detail:
            rows.append(f"{'':24}{row.detail}")
    overdue = int(items["overdue"].sum())
    return "\n".join([
        table(DUE_COLUMNS, rows),
        "",
        f"{overdue} overdue (!!), {len(items) - overdue} due soon, as of {as_of.isoformat()}"
        + (f"; the first {len(listed)} listed (--limit)" if len(listed) < len(items) else ""),
    ])


def cmd_due(args) -> int:
    from mappa_core.rules.due import due_items
    from mappa_core.rules.indicators import compute_deadlines
    from mappa_core.rules.records import window_start
    from mappa_core.storage.queries import load_records

    if args.days < 0:
        raise UsageError("--days must be 0 or more")
    as_of = args.as_of or today()
    engine = records_engine(args)
    lookback = settings().lookback_days  # as the digests and /mappa due use it
    computed = compute_deadlines(load_records(engine, args.area, since=window_start(
        as_of, lookback_days=lookback)), as_of, lookback)
    items = due_items(computed, args.days, args.chair)
    people = computed.records.people
    names = ({} if people.empty else
             dict(zip(people["person_id"].astype(str), people["name"].fillna("").astype(str))))
    print(render_due(items, as_of, args.limit or None, names))
    return 0
