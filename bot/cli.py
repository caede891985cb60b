"""The `mappa` command line: import, status, due, demo data and database upgrades.

Every command first loads the settings (bot/settings.py: the environment and `.env`); a bad
one stops it with exit 2 and one line naming the variable, before anything is read or written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
from pathlib import Path

from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from mappa_core.storage import db
from mappa_core.rules.indicators import TOPICS
from mappa_core.rules.periods import PeriodError, parse_date
from mappa_core.rules.status import TopicError

TICK, CROSS = "\u2713", "\u2717"


class UsageError(Exception):
    """Bad arguments from the user: printed as `mappa: error: ...`, exit status 2."""


def _date_arg(text: str) -> dt.date:
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class EmptyDatabase(Exception):
    """A command that answers from the records found none: exit 1, not an answer of zeros."""


_loaded = None  # bot.settings.Loaded, set by main() before any command runs


def settings():
    """The settings in force (loaded once, by main(), from the environment and .env)."""
    global _loaded
    if _loaded is None:
        from bot.settings import load

        _loaded = load()
    return _loaded.settings


def _engine():
    engine = db.make_engine(settings().database_url)
    db.ensure_schema(engine)
    return engine


def _records_engine(args):
    """The engine for a command that answers from the records: refuses an empty database
    and an unknown --area or --chair (which would otherwise give an answer of zeros)."""
    from sqlalchemy import func, select
    from sqlmodel import SQLModel

    engine = _engine()
    ind = SQLModel.metadata.tables["individual"]
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(ind)).scalar()
    if not n:
        where = engine.url.render_as_string(hide_password=True)
        if engine.url.get_backend_name() == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            path = Path(engine.url.database)
            where += "" if path.is_absolute() else f" ({path.resolve()})"
        raise EmptyDatabase(
            f"the database {where} is empty (no "
            "individuals): import the CSV files with `mappa import DIR`, or set "
            "MAPPA_DATABASE_URL to the database that holds them"
        )
    if getattr(args, "area", None):
        from mappa_core.storage.queries import known_areas

        areas = known_areas(engine)
        match = [a for a in areas if a.casefold() == args.area.strip().casefold()]
        if not match:
            raise UsageError(f"unknown area {args.area!r}: the known areas are {', '.join(areas)}")
        args.area = match[0]
    if getattr(args, "chair", None):
        chairs = _known_chairs(engine)
        if args.chair not in chairs:
            raise UsageError(f"unknown chair {args.chair!r}: the known chairs are {', '.join(chairs)}")
    return engine


def _known_chairs(engine) -> list[str]:
    """Person ids with the chair role, and every chair named on a meeting or a case."""
    from sqlalchemy import select, union
    from sqlmodel import SQLModel

    t = SQLModel.metadata.tables
    with engine.connect() as conn:
        named = set(conn.execute(union(select(t["meeting"].c.chair_id),
                                       select(t["individual"].c.chair_id))).scalars())
        people = conn.execute(select(t["person"].c.person_id, t["person"].c.roles)).all()
    named |= {pid for pid, roles in people if "chair" in (roles or "").split(";")}
    return sorted(x for x in named if x)


def today() -> dt.date:
    """Today in the configured time zone (MAPPA_TIMEZONE, default Europe/London); the edges
    pass it to the core, which never reads the clock."""
    return dt.datetime.now(settings().tz).date()


# --------------------------------------------------------------------------- commands


def cmd_db(args) -> int:
    engine = db.make_engine(settings().database_url)
    db.upgrade(engine)
    print(f"schema is at revision {db.current_revision(engine)}")
    return 0


def cmd_import(args) -> int:
    from mappa_core.storage.importer import import_directory

    engine = _engine()
    report = import_directory(engine, Path(args.dir), dry_run=args.dry_run)
    if not report.ok:
        for line in report.errors:
            print(line, file=sys.stderr)
        print(
            f"mappa import: {report.error_count or len(report.errors)} error(s); nothing was written",
            file=sys.stderr,
        )
        return 1
    print(f"{'file':20} {'rows':>8} {'created':>8} {'updated':>8} {'unchanged':>9}")
    for f in report.files:
        print(f"{f.filename:20} {f.rows:8d} {f.created:8d} {f.updated:8d} {f.unchanged:9d}")
    print(f"values recorded through the bot: {report.kept} kept (blank in the export), "
          f"{report.replaced} replaced by the export (the old values are in the audit log)")
    if report.dry_run:
        print("dry run: nothing was written; the counts say what an import would do")
    return 0


def _fmt_pct(value) -> str:
    return "  -  " if value is None else f"{value:5.1f}%"


def _fmt_met(value) -> str:
    return "-" if value is None else (TICK if value else CROSS)


def render_status(data: dict) -> str:
    per = data["period"]
    area = data["area"] or "all areas"
    lines = [
        f"MAPPA indicators - {area} - {per['start']} to {per['end']}, as of {data['as_of']}",
        "",
        f"{'indicator':20} {'target':>6} {'result':>7} {'(n/d)':>11}  met {'margin':>6} {'pending':>7}",
    ]
    for ind in data["indicators"]:
        nd = f"({ind['numerator']}/{ind['denominator']})"
        margin = "-" if ind["margin"] is None else str(ind["margin"])
        lines.append(
            f"{ind['id']:20} {ind['target']:5d}% {_fmt_pct(ind['percent']):>7} {nd:>11}"
            f"   {_fmt_met(ind['met'])}  {margin:>6} {ind['pending']:>7}"
        )
        for b in ind.get("breakdown") or []:
            nd = f"({b['numerator']}/{b['denominator']})"
            lines.append(
                f"  {b['agency']:18} {'':6} {_fmt_pct(b['percent']):>7} {nd:>11}   {_fmt_met(b['met'])}"
            )
        if ind["counts"]:
            counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in ind["counts"].items())
            lines.append(f"  now: {counts}")
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
    from mappa_core.answers import status

    as_of = args.as_of or today()
    data = status(_records_engine(args), as_of, args.topic, args.period, args.area)
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print(render_status(data))
    return 0


def cmd_exceptions(args) -> int:
    from mappa_core.rules.indicators import (
        INDICATORS,
        compute_deadlines,
        compute_indicators,
        exceptions_frame,
        group_exceptions,
    )
    from mappa_core.rules.records import window_start
    from mappa_core.storage.queries import load_records
    from mappa_core.rules.status import resolve

    as_of = args.as_of or today()
    ids, period = resolve("all", args.period, as_of)
    if args.indicator:
        if args.indicator not in INDICATORS:
            raise UsageError(f"unknown indicator {args.indicator!r}: use one of {', '.join(INDICATORS)}")
        ids = (args.indicator,)
    records = load_records(_records_engine(args), args.area, since=window_start(as_of, period.start))
    results = compute_indicators(compute_deadlines(records, as_of), period, ids)
    if args.csv:
        from bot.exports import write_csv

        write_csv(exceptions_frame(results), sys.stdout)
        return 0
    groups = group_exceptions(results)
    total = sum(len(r.exceptions) for r in results)
    print(f"{total} exception(s), {period.start} to {period.end}, as of {as_of}")
    titles = {"by_reason": "by reason", "by_agency": "by agency",
              "by_case": "cases with more than one exception", "by_chair": "by chair"}
    for key, title in titles.items():
        print(f"\n{title}:")
        if not groups[key]:
            print("  (none)")
        for name, n in sorted(groups[key].items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {n:5d}  {name}")
    return 0


def _text(value) -> str:
    """A cell for display: blank for None and NaN."""
    return "" if value is None or value != value else str(value)


def render_due(items, as_of: dt.date, shown: int | None = None) -> str:
    """Every item's counts in the last line; only the first `shown` items listed."""
    from mappa_core.rules.due import KIND_LABELS

    if items.empty:
        return f"Nothing overdue or due soon as of {as_of.isoformat()}."
    lines = [
        f"{'':3}{'deadline':10} {'wd left':>7}  {'what':34} {'case':12} {'meeting':10} "
        f"{'agency':16} chair"
    ]
    listed = items if shown is None else items.head(shown)
    for row in listed.itertuples(index=False):
        flag = "!! " if row.overdue else "   "
        lines.append(
            f"{flag}{row.deadline.date().isoformat():10} {row.working_days_left:>7}  "
            f"{KIND_LABELS[row.kind]:34} {row.ref:12} {_text(row.meeting_id):10} "
            f"{_text(row.agency):16} {_text(row.chair_id)}"
        )
        if row.detail:
            lines.append(f"{'':24}{row.detail}")
    overdue = int(items["overdue"].sum())
    lines.append("")
    lines.append(f"{overdue} overdue (!!), {len(items) - overdue} due soon, as of {as_of.isoformat()}"
                 + (f"; the first {len(listed)} listed (--limit)" if len(listed) < len(items) else ""))
    return "\n".join(lines)


def cmd_due(args) -> int:
    from mappa_core.rules.due import due_items
    from mappa_core.rules.indicators import compute_deadlines
    from mappa_core.rules.records import window_start
    from mappa_core.storage.queries import load_records

    if args.days < 0:
        raise UsageError("--days must be 0 or more")
    as_of = args.as_of or today()
    engine = _records_engine(args)
    computed = compute_deadlines(load_records(engine, args.area, since=window_start(as_of)), as_of)
    items = due_items(computed, args.days, args.chair)
    print(render_due(items, as_of, args.limit or None))
    return 0


def cmd_serve(args) -> int:
    from bot.logs import configure_logging
    from bot.server import serve
    from bot.settings import SettingsError, require

    try:
        require(settings(), "socket" if args.socket_mode else "http")
    except SettingsError as exc:
        raise UsageError(f"cannot start: {exc}") from None
    configure_logging(settings().log_format)
    serve(settings(), args.host, args.port, args.socket_mode, settings().nudge_rules(),
          args.health_port)
    return 0


def cmd_outbox(args) -> int:
    from mappa_core.storage import outbox

    engine = _engine()
    if args.outbox_command == "retry":
        reset = outbox.retry(engine, args.id, dt.datetime.now(settings().tz))
        if reset is None:
            raise UsageError(f"there is no outbox row {args.id}")
        if not reset:
            print(f"outbox row {args.id} is already sent or being sent; nothing to retry")
            return 1
        print(f"outbox row {args.id}: {reset} row(s) of its message will be sent at the next "
              "delivery (`mappa jobs run deliver`, or within a minute under `mappa serve`)")
        return 0
    state = "dead" if args.state == "failed" else args.state
    rows = outbox.list_rows(engine, state, args.limit)
    if not rows:
        print("no outbox rows" + (f" in state {state}" if state else ""))
        return 0
    print(f"{'id':>7} {'state':8} {'channel':7} {'rule':16} {'attempts':>8} {'planned (UTC)':16} "
          "recipient / last error")
    for r in rows:
        planned = r["planned_at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if r["planned_at"] else ""
        error = " ".join((r["last_error"] or "").split())
        print(f"{r['id']:>7} {r['status']:8} {r['channel']:7} {r['rule']:16} {r['attempts']:>8} "
              f"{planned:16} {r['recipient_id']}" + (f"  {error}" if error else ""))
    return 0


def cmd_jobs(args) -> int:
    import asyncio
    import datetime as dt

    from bot.jobs.schedule import next_runs
    from bot.jobs.ticks import JOB_NAMES, parse_when, run_planning_job

    rules, tz = settings().nudge_rules(), settings().tz
    try:
        now = parse_when(args.as_of, tz) if getattr(args, "as_of", None) else dt.datetime.now(tz)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.jobs_command == "list":
        print(f"{'job':18} next run ({settings().timezone})")
        for name, when in next_runs(rules, now, tz).items():
            print(f"{name:18} {when:%a %Y-%m-%d %H:%M}" if when else f"{name:18} -")
        return 0
    if args.name not in JOB_NAMES:
        raise UsageError(f"unknown job {args.name!r}: use one of {', '.join(JOB_NAMES)}")
    engine = _engine()
    if args.name == "deliver":
        report = asyncio.run(_deliver(engine, now, args.console, args.dry_run))
        if report is not None:
            print(f"delivered {report.rows_sent} item(s) in {sum(report.sent.values())} message(s) "
                  f"{report.sent}; {report.retrying} to retry; {report.failed} given up")
            if report.failed:
                print("given up: see `mappa outbox list --state failed`", file=sys.stderr)
                return 1
        return 0
    from bot.channels import area_channels

    result = run_planning_job(engine, args.name, now, rules, dry_run=args.dry_run,
                              area_channels=area_channels(settings()))
    if result.skipped:
        print(f"{args.name} at {now:%Y-%m-%d %H:%M %Z}: nothing planned ({result.skipped})")
        return 0
    planned = result.planned
    if args.json:
        print(planned.to_json(orient="records", indent=1, force_ascii=False))
        return 0
    verb = "would plan" if args.dry_run else "planned"
    print(f"{args.name} at {now:%Y-%m-%d %H:%M %Z}: {verb} {len(planned)} notification(s)"
          + ("" if args.dry_run else f", {result.inserted} new in the outbox"))
    if not planned.empty:
        summary = planned.groupby(["rule", "channel", "recipient_id"]).size()
        for (rule, channel, who), n in summary.items():
            print(f"  {rule:16} {channel:6} {who:40} {n:5d} item(s)")
        if args.dry_run:  # what each person would read, to check a change before it goes out
            print()
            print_messages({key: group.to_dict("records")
                            for key, group in planned.groupby("group_key", sort=False)})
    return 0


def print_messages(groups: dict[str, list[dict]]) -> None:
    """Each message (a group of outbox rows: one recipient, one rule) as its reader would
    read it, in plain text: the whole message, a Slack one's included."""
    from bot.channels import render

    for rows in groups.values():
        first = rows[0]
        message = render([{**r, "channel": "email"} for r in rows])
        print(f"--- {first['channel']} to {first['recipient_id']} ({first['rule']}, "
              f"{len(rows)} item(s))")
        print(message.text)


async def _deliver(engine, now, console: bool, dry_run: bool):
    from bot.channels.slack import SlackTransport
    from bot.delivery.worker import deliver_pending

    if dry_run:
        from mappa_core.storage.outbox import counts

        print(f"outbox: {counts(engine)}; --dry-run sends nothing")
        return None
    config = settings()
    if console:
        # A preview: every message a run would send now, as text, and nothing claimed or
        # marked, so the real delivery still sends them all.
        from mappa_core.storage.outbox import due_groups

        groups = due_groups(engine, now)
        print_messages(groups)
        print(f"{len(groups)} message(s) would be sent; --console sends and marks nothing")
        return None
    if not config.slack_bot_token:
        raise UsageError("SLACK_BOT_TOKEN is not set: set it, or use --console to see "
                         "what would be sent")
    from slack_sdk.web.async_client import AsyncWebClient

    transport = SlackTransport(AsyncWebClient(token=config.slack_bot_token,
                                              base_url=config.slack_api_url))
    return await deliver_pending(engine, config, transport, now)


def cmd_report(args) -> int:
    try:
        return _report(args)
    except OSError as exc:  # --out names a missing directory, a file in the way, ...
        where = Path(exc.filename) if exc.filename else Path(args.out or ".")
        hint = ""
        if not where.parent.is_dir():
            hint = f" (the directory {where.parent} does not exist)"
        raise UsageError(f"cannot write {where}: {exc.strerror or exc}{hint}") from None


def _report(args) -> int:
    from bot.exports import quarterly_csv, quarterly_html, text_table, write_csv
    from mappa_core.rules import reports
    from mappa_core.rules.periods import parse_period, previous_quarters, reporting_year
    from mappa_core.rules.records import window_start
    from mappa_core.storage.queries import load_records

    engine = _records_engine(args)
    as_of = getattr(args, "as_of", None) or today()
    if args.report == "quarterly":
        from mappa_core.rules.periods import quarter_of

        period = parse_period(args.period) if args.period else quarter_of(as_of)
        first = previous_quarters(period, 8)[0]
        records = load_records(engine, args.area, since=window_start(as_of, first.start))
        pack = reports.quarterly_pack(records, period, as_of, args.area)
        if args.format == "csv":
            out = Path(args.out or f"pack-{period.label}")
            paths = quarterly_csv(pack, out)
            print(f"wrote {len(paths)} CSV files to {out}")
            return 0
        names = dict(zip(records.agencies["agency"], records.agencies["name"]))
        out = Path(args.out or f"pack-{period.label}.html")
        out.write_text(quarterly_html(pack, names), encoding="utf-8")
        print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
        return 0
    if args.report == "compare":
        period = parse_period(args.period) if args.period else None
        from mappa_core.rules.periods import quarter_of

        period = period or quarter_of(as_of)
        records = load_records(engine, since=window_start(as_of, period.start))
        table = reports.compare_areas(records, period, as_of)
        if args.csv:
            write_csv(table, sys.stdout)
            return 0
        ids = [c.removesuffix("_percent") for c in table.columns if c.endswith("_percent")]
        print(f"Areas side by side, {period.start} to {period.end}, as of {as_of}")
        for _, row in table.iterrows():
            print(f"\n{row['area']} (Level 2 cases {row['level2_cases']}, Level 3 cases {row['level3_cases']})")
            for i in ids:
                pct = row[f"{i}_percent"]
                shown = "   -  " if pct is None or pct != pct else f"{pct:5.1f}%"
                print(f"  {i:20} {shown} ({row[f'{i}_n']})")
        return 0
    if args.report == "stats":
        if args.to < args.from_:
            raise UsageError("--to is before --from")
        records = load_records(engine, args.area, with_events=True)
        by = tuple(b.strip() for b in (args.by or "").split(",") if b.strip())
        unknown = set(by) - {"category", "level", "gender", "ethnicity", "age_band", "rosh"}
        if unknown:
            raise UsageError(f"--by takes category, level, gender, ethnicity, age_band, rosh; not {', '.join(sorted(unknown))}")
        tables = reports.statistics(records, args.from_, args.to, by)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            for name, df in tables.items():
                write_csv(df, out / f"{name}.csv")
            print(f"wrote {len(tables)} CSV files to {out}")
            return 0
        for name, df in tables.items():
            print(f"\n{name.replace('_', ' ')}")
            print(text_table(df) if not df.empty else "  (none)")
        return 0
    if args.report == "annual":
        year = parse_period(args.year)
        if year.label != args.year or "-Q" in args.year or ".." in args.year:
            raise UsageError("--year is a reporting year such as 2026-27")
        records = load_records(engine, args.area, with_events=True)
        population = reports_population(engine)
        tables = reports.annual_tables(records, reporting_year(year.start.year), population)
        out = Path(args.out or f"annual-{year.label}")
        out.mkdir(parents=True, exist_ok=True)
        for name, df in tables.items():
            write_csv(df, out / f"{name}.csv")
        html = render_annual(tables, year.label)
        (out / "annual.html").write_text(html, encoding="utf-8")
        for name, df in tables.items():
            print(f"\nAnnex 3 {name.replace('table', 'Table ')}")
            print(text_table(df))
        print(f"\nwrote {out}/table1.csv, table2.csv and annual.html")
        return 0
    raise UsageError(f"unknown report {args.report}")


def reports_population(engine) -> dict[str, int]:
    from sqlalchemy import select
    from sqlmodel import SQLModel

    area = SQLModel.metadata.tables["area"]
    with engine.connect() as conn:
        return {a: p for a, p in conn.execute(select(area.c.area, area.c.population)) if p}


def render_annual(tables, label: str) -> str:
    from bot.templates import render_text

    return render_text("report/annual.html.j2", label=label,
                       table1=tables["table1"].to_dict("records"),
                       table2=tables["table2"].to_dict("records"))


def _yes_no(text: str | None) -> bool | None:
    if text is None:
        return None
    low = text.lower()
    if low in ("yes", "y", "true", "1"):
        return True
    if low in ("no", "n", "false", "0"):
        return False
    raise UsageError(f"{text!r} is not yes or no")


def cmd_audit(args) -> int:
    import datetime as dt

    from mappa_core.storage import oversight
    from mappa_core.rules.periods import parse_period

    engine = _engine()
    try:
        if args.audit_command == "sample":
            year = parse_period(args.year)
            if year.label != args.year:
                raise UsageError("--year is a reporting year such as 2026-27")
            levels = [int(x) for x in args.levels.split(",") if x.strip()]
            if not levels or set(levels) - {1, 2, 3}:
                raise UsageError("--levels is a comma list of 1, 2, 3")
            if args.n < 1:
                raise UsageError("--n must be at least 1")
            sample = oversight.sample_cases(engine, year, levels, args.n, args.seed, args.area)
            print(f"{args.year} case audit sample (seed {args.seed}), {args.n} per level:")
            for level in levels:
                sub = sample[sample["level"] == level]
                pop = int(sub["population"].iloc[0]) if len(sub) else 0
                print(f"  Level {level}: {len(sub)} of {pop}: {', '.join(sub['ref']) or '(none)'}")
            if args.save:
                n = oversight.save_sample(engine, args.year, sample, args.seed,
                                          dt.datetime.now(dt.UTC))
                print(f"saved {n} new case(s) to the {args.year} audit")
            return 0
        if args.audit_command == "record":
            findings = {k: _yes_no(getattr(args, k)) for k in oversight.FINDING_FLAGS
                        if getattr(args, k) is not None}
            findings.update({k: getattr(args, k) for k in oversight.FINDING_TEXTS
                             if getattr(args, k) is not None})
            if args.rmp_quality:
                findings["rmp_quality"] = args.rmp_quality
            oversight.record_case_audit(engine, args.year, args.ref, findings,
                                        args.completed or today(), args.auditor)
            print(f"recorded the {args.year} audit of {args.ref}")
            return 0
        if args.audit_command == "meeting":
            quarter = parse_period(args.quarter)
            if "-Q" not in args.quarter:
                raise UsageError("--quarter is a quarter such as 2026-27-Q3")
            oversight.record_meeting_audit(engine, quarter.label, args.chair, args.findings,
                                           args.completed or today(), args.meeting, args.auditor)
            print(f"recorded the {quarter.label} meeting audit of {args.chair}")
            return 0
        cases, meetings = oversight.audits_frames(engine)
        if args.year:
            cases = cases[cases["year"] == args.year]
        print(cases[["year", "ref", "level", "completed_on", "rmp_quality"]].to_string(index=False)
              if not cases.empty else "no case audits")
        print(meetings[["quarter", "chair_id", "meeting_id", "completed_on"]].to_string(index=False)
              if not meetings.empty else "no meeting audits")
        return 0
    except oversight.OversightError as exc:
        raise UsageError(str(exc)) from None


def cmd_scr(args) -> int:
    import datetime as dt

    from mappa_core.storage import oversight

    engine = _engine()
    try:
        if args.scr_command == "add":
            print(f"SCR {oversight.add_scr(engine, args.title, args.area, args.published)} added")
        elif args.scr_command == "recommend":
            print(f"recommendation {oversight.add_recommendation(engine, args.scr_id, args.text)} added")
        elif args.scr_command == "action":
            aid = oversight.add_action(engine, args.recommendation_id, args.owner, args.due, args.text)
            print(f"action {aid} added, owned by {args.owner}, due {args.due}")
        elif args.scr_command == "update":
            oversight.add_update(engine, args.action_id, args.text, dt.datetime.now(dt.UTC),
                                 done_on=today() if args.done else None)
            print(f"action {args.action_id} updated" + (" and closed" if args.done else ""))
        else:
            actions = oversight.scr_actions(engine, args.as_of or today(), args.area)
            if args.overdue:
                actions = actions[actions["overdue"]]
            if actions.empty:
                print("no SCR actions")
            for a in actions.itertuples(index=False):
                flag = "OVERDUE " if a.overdue else ""
                print(f"{flag}#{a.id} {a.title} | {a.owner_agency} | due {a.due} | {a.status}: {a.description}")
        return 0
    except oversight.OversightError as exc:
        raise UsageError(str(exc)) from None


def cmd_demo_day(args) -> int:
    from bot.demo_day import demo_day_on_copy
    from bot.settings import hide_password

    config = settings()
    print(demo_day_on_copy(config.database_url, args.as_of or today(), show=args.show,
                           rules=config.nudge_rules(), tz=config.tz,
                           shown_url=hide_password(config.database_url)), end="")
    return 0


def cmd_config(args) -> int:
    """Every setting in force and where it came from; secrets as ***."""
    from bot.settings import Settings, _meta

    settings()
    rows = [(_meta(n)["env"], _loaded.settings.shown(n), _loaded.sources[n])
            for n in Settings.model_fields]
    width = max(len(f"{env}={value}") for env, value, _ in rows)
    file_note = f"{_loaded.env_file}" if _loaded.env_file else "no settings file (.env) found"
    print(f"# settings in force: environment, then {file_note}, then the defaults")
    for env, value, source in rows:
        print(f"{env}={value}".ljust(width + 2) + f"# {source}")
    return 0


def cmd_demo_data(args) -> int:
    from mappa_core.demo import write_demo_data

    if args.individuals < 1 or args.years < 1:
        raise UsageError("--individuals and --years must be at least 1")
    until = args.until or today()
    counts = write_demo_data(
        Path(args.dir), individuals=args.individuals, years=args.years, seed=args.seed,
        until=until,
    )
    print(
        f"wrote synthetic region to {args.dir} (seed {args.seed}, up to {until}): "
        + ", ".join(f"{n} {name}" for name, n in counts.items())
    )
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mappa", description="MAPPA performance indicators and deadlines (Scotland)."
    )
    p.add_argument("--env-file", dest="env_file",
                   help="settings file (default .env in the working directory, if there is one)")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("config", help="the settings in force and where each came from").set_defaults(
        func=cmd_config)

    d = sub.add_parser("db", help="database schema")
    dsub = d.add_subparsers(dest="db_command", required=True)
    dsub.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=cmd_db)

    i = sub.add_parser("import", help="import the CSV files of a directory")
    i.add_argument("dir")
    i.add_argument("--dry-run", action="store_true", help="validate and count, write nothing")
    i.set_defaults(func=cmd_import)

    s = sub.add_parser("status", help="the indicators for a period and area")
    s.add_argument("topic", nargs="?", default="all", choices=list(TOPICS))
    s.add_argument("--period", help="2026-27, 2026-27-Q3 or YYYY-MM-DD..YYYY-MM-DD")
    s.add_argument("--area")
    s.add_argument("--as-of", type=_date_arg, help="date the records stood (default today)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    u = sub.add_parser("due", help="what is overdue and what falls due soon")
    u.add_argument("--days", type=int, default=14, help="look this many days ahead (14)")
    u.add_argument("--chair", help="only this chair's items (person id)")
    u.add_argument("--area")
    u.add_argument("--as-of", type=_date_arg)
    u.add_argument("--limit", type=int, default=0, help="show at most this many rows")
    u.set_defaults(func=cmd_due)

    x = sub.add_parser("exceptions", help="exceptions grouped by reason, agency, case and chair")
    x.add_argument("--period")
    x.add_argument("--area")
    x.add_argument("--as-of", type=_date_arg)
    x.add_argument("--indicator", help="one indicator id (default: all ten)")
    x.add_argument("--csv", action="store_true", help="every exception as CSV rows")
    x.set_defaults(func=cmd_exceptions)

    v = sub.add_parser("serve", help="run the Slack bot (HTTP mode, or Socket Mode)")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=3000)
    v.add_argument("--socket-mode", action="store_true", help="connect out to Slack (SLACK_APP_TOKEN)")
    v.add_argument("--env-file", dest="serve_env_file",
                   help="settings file (default .env in the working directory)")
    v.add_argument("--health-port", type=int, help="Socket Mode: serve /healthz, /readyz and "
                   "/metrics on this port (default MAPPA_HTTP_PORT)")
    v.set_defaults(func=cmd_serve)

    o = sub.add_parser("outbox", help="see and replay notifications that failed")
    osub = o.add_subparsers(dest="outbox_command", required=True)
    ol = osub.add_parser("list", help="the newest outbox rows, optionally of one state")
    ol.add_argument("--state", choices=["pending", "sending", "sent", "dead", "failed"],
                    help="failed is the same as dead: given up")
    ol.add_argument("--limit", type=int, default=50)
    ol.set_defaults(func=cmd_outbox)
    ore = osub.add_parser("retry", help="send a failed row (and the rest of its message) again")
    ore.add_argument("id", type=int)
    ore.set_defaults(func=cmd_outbox)

    j = sub.add_parser("jobs", help="the scheduled jobs")
    jsub = j.add_subparsers(dest="jobs_command", required=True)
    jl = jsub.add_parser("list", help="the jobs and their next run")
    jl.add_argument("--as-of", help="list next runs after this date or date-time")
    jl.set_defaults(func=cmd_jobs)
    jr = jsub.add_parser("run", help="run one job now, or as if the clock read --as-of")
    jr.add_argument("name", help="digest, escalations, weekly-summary, quarterly-review or deliver")
    jr.add_argument("--as-of", help="YYYY-MM-DD (09:00 in MAPPA_TIMEZONE) or YYYY-MM-DDTHH:MM")
    jr.add_argument("--dry-run", action="store_true",
                    help="print what would be planned and each message as it would read; "
                         "write and send nothing")
    jr.add_argument("--json", action="store_true",
                    help="planning jobs: the planned outbox rows as JSON (with --dry-run, "
                         "nothing written)")
    jr.add_argument("--console", action="store_true",
                    help="deliver: print what would be sent now; nothing is sent or marked")
    jr.set_defaults(func=cmd_jobs)

    r = sub.add_parser("report", help="SOG reports: quarterly pack, statistics, annual tables, comparison")
    rsub = r.add_subparsers(dest="report", required=True)
    rq = rsub.add_parser("quarterly", help="the SOG's quarterly pack (self-contained HTML, or CSV)")
    rq.add_argument("--period", help="2026-27-Q3 (default: the quarter containing --as-of)")
    rq.add_argument("--area")
    rq.add_argument("--as-of", type=_date_arg)
    rq.add_argument("--out", help="file (html) or directory (csv)")
    rq.add_argument("--format", choices=["html", "csv"], default="html")
    rq.set_defaults(func=cmd_report)
    rs = rsub.add_parser("stats", help="ViSOR-style statistics (guidance 19.14)")
    rs.add_argument("--from", dest="from_", type=_date_arg, required=True)
    rs.add_argument("--to", type=_date_arg, required=True)
    rs.add_argument("--area")
    rs.add_argument("--by", help="comma list: category,level,gender,ethnicity,age_band,rosh")
    rs.add_argument("--out", help="write CSV files to this directory")
    rs.set_defaults(func=cmd_report)
    ra = rsub.add_parser("annual", help="annual report Annex 3 Tables 1 and 2")
    ra.add_argument("--year", required=True, help="reporting year, e.g. 2026-27")
    ra.add_argument("--area")
    ra.add_argument("--out", help="directory (default annual-YEAR)")
    ra.set_defaults(func=cmd_report)
    rc = rsub.add_parser("compare", help="every area side by side on each indicator")
    rc.add_argument("--period")
    rc.add_argument("--as-of", type=_date_arg)
    rc.add_argument("--csv", action="store_true")
    rc.set_defaults(func=cmd_report)

    au = sub.add_parser("audit", help="case and meeting audits")
    ausub = au.add_subparsers(dest="audit_command", required=True)
    aus = ausub.add_parser("sample", help="a reproducible random sample of cases, by level")
    aus.add_argument("--year", required=True)
    aus.add_argument("--levels", default="2,3")
    aus.add_argument("--n", type=int, default=10, help="cases per level")
    aus.add_argument("--seed", type=int, required=True)
    aus.add_argument("--area")
    aus.add_argument("--save", action="store_true", help="record the sample as the year's audit")
    aus.set_defaults(func=cmd_audit)
    aur = ausub.add_parser("record", help="record a sampled case's audit findings")
    aur.add_argument("ref")
    aur.add_argument("--year", required=True)
    for flag in ("referral-reviewed", "minutes-reviewed", "all-agencies-present", "actions-on-time"):
        aur.add_argument(f"--{flag}", metavar="yes|no")
    aur.add_argument("--rmp-quality", choices=["good", "adequate", "poor"])
    for text_flag in ("effective-practice", "improvements", "feedback-to-sog"):
        aur.add_argument(f"--{text_flag}")
    aur.add_argument("--auditor")
    aur.add_argument("--completed", type=_date_arg)
    aur.set_defaults(func=cmd_audit)
    aum = ausub.add_parser("meeting", help="record a quarter's audit of a chair's meetings")
    aum.add_argument("--quarter", required=True)
    aum.add_argument("--chair", required=True)
    aum.add_argument("--meeting")
    aum.add_argument("--findings", default="")
    aum.add_argument("--auditor")
    aum.add_argument("--completed", type=_date_arg)
    aum.set_defaults(func=cmd_audit)
    aul = ausub.add_parser("list", help="audits recorded")
    aul.add_argument("--year")
    aul.set_defaults(func=cmd_audit)

    sc = sub.add_parser("scr", help="Significant Case Reviews: recommendations and actions")
    scsub = sc.add_subparsers(dest="scr_command", required=True)
    sca = scsub.add_parser("add")
    sca.add_argument("title")
    sca.add_argument("--area")
    sca.add_argument("--published", type=_date_arg)
    sca.set_defaults(func=cmd_scr)
    scr_ = scsub.add_parser("recommend")
    scr_.add_argument("scr_id", type=int)
    scr_.add_argument("text")
    scr_.set_defaults(func=cmd_scr)
    scac = scsub.add_parser("action")
    scac.add_argument("recommendation_id", type=int)
    scac.add_argument("text")
    scac.add_argument("--owner", required=True, help="owner agency id")
    scac.add_argument("--due", type=_date_arg, required=True)
    scac.set_defaults(func=cmd_scr)
    scu = scsub.add_parser("update")
    scu.add_argument("action_id", type=int)
    scu.add_argument("text")
    scu.add_argument("--done", action="store_true")
    scu.set_defaults(func=cmd_scr)
    scl = scsub.add_parser("list")
    scl.add_argument("--area")
    scl.add_argument("--overdue", action="store_true")
    scl.add_argument("--as-of", type=_date_arg)
    scl.set_defaults(func=cmd_scr)

    dd = sub.add_parser("demo-day", help="simulate a working day of jobs (console Slack, local SMTP)")
    dd.add_argument("--as-of", type=_date_arg, help="the day (default today; weekends move on)")
    dd.add_argument("--show", type=int, default=3, help="Slack messages to print in full")
    dd.set_defaults(func=cmd_demo_day)

    g = sub.add_parser("demo-data", help="write a synthetic region's CSV files")
    g.add_argument("dir")
    g.add_argument("--individuals", type=int, default=7000)
    g.add_argument("--years", type=int, default=5)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--until", type=_date_arg, help="last day of history (default today)")
    g.set_defaults(func=cmd_demo_data)
    return p


def main(argv: list[str] | None = None) -> int:
    global _loaded
    if argv is None and hasattr(signal, "SIGPIPE"):
        # `mappa due | head` should stop quietly, not with a traceback.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    from bot.settings import SettingsError, hide_password, load

    try:
        _loaded = load(getattr(args, "serve_env_file", None) or args.env_file)
    except SettingsError as exc:
        parser.exit(2, f"mappa: {exc}\n")
    for warning in _loaded.warnings:
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
        safe = hide_password(_loaded.settings.database_url)
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
        if any(x in reason for x in ("no such table", "no such column", "does not exist")):
            reason = f"it is not a mappa-bot database, or not of this version ({reason})"
        parser.exit(2, f"mappa: cannot use the database {safe} (MAPPA_DATABASE_URL): {reason}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
