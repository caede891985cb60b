"""`mappa jobs list` and `mappa jobs run NAME`: the scheduled jobs, run now or as if the
clock read --as-of; and the one printer of messages as their readers would read them
(`jobs run --dry-run` and `jobs run deliver --console`).

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

import datetime as dt
import sys

from bot.cli.common import Col, UsageError, engine, settings, table
from mappa_core.rules.vocabulary import Channel


def jobs_arguments(j) -> None:
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
                    help="planning jobs: the planned outbox rows as JSON on stdout (with "
                         "--dry-run nothing is written; without it they are written to the "
                         "outbox, and stderr says how many)")
    jr.add_argument("--console", action="store_true",
                    help="deliver: print what would be sent now; nothing is sent or marked")
    jr.set_defaults(func=cmd_jobs)


ARGUMENTS = {"jobs": jobs_arguments}


PLANNED_COLUMNS = (Col(width=16), Col(width=6), Col(width=40), Col(width=5, align=">"),
                   Col())


def cmd_jobs(args) -> int:
    from bot.jobs.schedule import next_runs
    from bot.jobs.ticks import JOB_NAMES, parse_when, run_planning_job

    rules, tz = settings().nudge_rules(), settings().tz
    try:
        now = parse_when(args.as_of, tz) if getattr(args, "as_of", None) else dt.datetime.now(tz)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.jobs_command == "list":
        runs = [(name, f"{when:%a %Y-%m-%d %H:%M}" if when else "-")
                for name, when in next_runs(rules, now, tz).items()]
        print(table([Col("job", 18), Col(f"next run ({settings().timezone})")], runs))
        return 0
    if args.name not in JOB_NAMES:
        raise UsageError(f"unknown job {args.name!r}: use one of {', '.join(JOB_NAMES)}")
    store = engine()
    if args.name == "deliver":
        import asyncio  # and with it ssl: only for the deliver job

        report = asyncio.run(_deliver(store, now, args.console, args.dry_run))
        if report is not None:
            print(f"delivered {report.summary()}; {report.retrying} to retry; "
                  f"{report.failed} given up")
            for line in report.waiting_lines():
                print(line)
            _print_held(store, now)
            if report.failed:
                print("given up: see `mappa outbox list --state failed`", file=sys.stderr)
                return 1
        return 0
    from bot.channels import area_channels

    result = run_planning_job(store, args.name, now, rules, dry_run=args.dry_run,
                              area_channels=area_channels(settings()))
    if result.skipped:
        print(f"{args.name} at {now:%Y-%m-%d %H:%M %Z}: nothing planned ({result.skipped})")
        return 0
    planned = result.planned
    if args.json:
        print(planned.to_json(orient="records", indent=1, force_ascii=False))
        if not args.dry_run:  # written for real: say so, away from the JSON on stdout
            print(f"{args.name} at {now:%Y-%m-%d %H:%M %Z}: wrote {result.inserted} new "
                  f"row(s) to the outbox ({len(planned)} planned; --dry-run writes nothing)",
                  file=sys.stderr)
        return 0
    verb = "would plan" if args.dry_run else "planned"
    print(f"{args.name} at {now:%Y-%m-%d %H:%M %Z}: {verb} {len(planned)} notification(s)"
          + ("" if args.dry_run else f", {result.inserted} new in the outbox"))
    if not planned.empty:
        summary = planned.groupby(["rule", "channel", "recipient_id"]).size()
        print(table(PLANNED_COLUMNS, [(rule, channel, who, n, "item(s)")
                                      for (rule, channel, who), n in summary.items()],
                    header=False, indent="  "))
        if args.dry_run:  # what each person would read, to check a change before it goes out
            print()
            print_messages({key: group.to_dict("records")
                            for key, group in planned.groupby("group_key", sort=False)})
    return 0


def print_messages(groups: dict[str, list[dict]]) -> None:
    """Each message (a group of outbox rows: one recipient, one rule) as its reader would
    read it, in plain text, as its channel renders it: a Slack message's title, lines,
    buttons and footer; an email's subject and plain-text part (any other channel: the
    email's plain-text part)."""
    from bot.channels import render
    from bot.channels.console import plain_text

    for rows in groups.values():
        first = rows[0]
        if first["channel"] in (Channel.SLACK, Channel.CONSOLE, Channel.EMAIL):
            text = plain_text(render(rows))
        else:
            text = render([{**r, "channel": "email"} for r in rows]).text
        print(f"--- {first['channel']} to {first['recipient_id']} ({first['rule']}, "
              f"{len(rows)} item(s))")
        print(text)


def _print_held(store, now: dt.datetime) -> None:
    """Why items planned outside working hours are not sent yet, and when they will be."""
    from mappa_core.storage.outbox import held_for_working_hours

    held, first = held_for_working_hours(store, now)
    if held:
        print(f"{held} item(s) wait for working hours: the first go out at "
              f"{first.astimezone(now.tzinfo):%a %d %b %Y %H:%M %Z}")


async def _deliver(store, now, console: bool, dry_run: bool):
    from bot.channels.slack import SlackTransport
    from bot.delivery.worker import deliver_pending

    if dry_run:
        from mappa_core.storage.outbox import counts

        print(f"outbox: {counts(store)}; --dry-run sends nothing")
        return None
    config = settings()
    if console:
        # A preview: every message a run would send now, as text, and nothing claimed or
        # marked, so the real delivery still sends them all.
        from mappa_core.storage.outbox import due_groups

        groups = due_groups(store, now)
        print_messages(groups)
        print(f"{len(groups)} message(s) would be sent; --console sends and marks nothing")
        _print_held(store, now)
        return None
    # With no SLACK_BOT_TOKEN (or no SMTP_HOST) that channel's messages wait, and the report
    # says so; the others go out.
    return await deliver_pending(store, config, SlackTransport.from_settings(config), now)
