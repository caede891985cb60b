"""`mappa demo-day`: one simulated working day of jobs, on a copy of the data.

It never writes to the configured database: `demo_day_on_copy` copies the configured
database's records (or, when it is empty or missing, a small synthetic region) into a
temporary SQLite database, runs the day there and deletes it. The jobs plan into that copy's
outbox; Slack messages are printed as they would look (a console transport); email goes to a
real SMTP server (aiosmtpd) started in this process, and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import io
import socket
import tempfile
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller

from bot.channels.console import ConsoleTransport
from bot.delivery.worker import deliver_pending
from bot.jobs.schedule import triggers
from bot.jobs.ticks import LONDON, run_planning_job
from bot.settings import Settings
from bot.templates import long_date
from mappa_core.rules.calendar import calendar_for
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import db
from mappa_core.storage.database_copy import copy_database, source_state
from mappa_core.storage.importer import import_directory
from mappa_core.storage.queries import load_people
from mappa_core.synthetic_region import write_demo_data


class _Sink:
    def __init__(self) -> None:
        self.messages: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(email.message_from_bytes(envelope.original_content,
                                                              policy=email.policy.default))
                return "250 OK"

        with socket.socket() as probe:  # a free local port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def run_demo_day(engine, day: dt.date, show: int = 3, rules: NudgeRules | None = None,
                 tz: dt.tzinfo = LONDON) -> str:
    rules = rules or NudgeRules()
    cal = calendar_for(None, {})
    out = io.StringIO()
    if not cal.is_working_day(day):
        asked, day = day, cal.add_working_days(day, 1)
        print(f"{long_date(asked.isoformat())} is not a working day (a weekend or a Scottish "
              f"bank holiday): nothing is sent then, so the next working day is simulated.",
              file=out)
    start = dt.datetime.combine(day, dt.time.fromisoformat(rules.work_start), tzinfo=tz)
    print(f"\n=== A simulated working day: {long_date(day.isoformat())} ===", file=out)
    # Each planning job at its first run from the start of the working day in the real
    # schedule (the weekly summary only on a Monday), in the order they would run.
    runs = sorted((at, job) for job, trigger in triggers(rules, tz).items() if job != "deliver"
                  for at in [trigger.get_next_fire_time(None, start)]
                  if at is not None and at.date() == day)
    for at, job in runs:
        result = run_planning_job(engine, job, at, rules)
        print(f"{at:%H:%M} {job:17} planned {len(result.planned):4d}, new in outbox {result.inserted:4d}"
              + (f" ({result.skipped})" if result.skipped else ""), file=out)
    sink = _Sink()
    try:
        settings = Settings(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_starttls=False,
                            mail_from="mappa-bot@demo.example", smtp_timeout=10)
        console = ConsoleTransport(io.StringIO())
        report = asyncio.run(deliver_pending(engine, settings, console,
                                             start + dt.timedelta(hours=1)))
    finally:
        sink.close()
    print(f"{(start + dt.timedelta(hours=1)):%H:%M} deliver           {report.summary()}; "
          f"{report.retrying} to retry; {report.failed} given up\n", file=out)
    names = _slack_names(engine)
    for address, message in console.sent[:show]:
        asyncio.run(ConsoleTransport(out, names).send(address, message))
        print(file=out)
    if len(console.sent) > show:
        print(f"... and {len(console.sent) - show} more Slack message(s).\n", file=out)
    if sink.messages:
        first = sink.messages[0]
        text = next(p for p in first.walk() if p.get_content_type() == "text/plain")
        print(f"--- Email to {first['To']}: {first['Subject']} ---", file=out)
        print(text.get_content().strip(), file=out)
        print(file=out)
    print("Summary of the day:", file=out)
    slack_by = Counter(address for address, _ in console.sent)
    for address, n in sorted(slack_by.items()):
        print(f"  Slack  {address:32} {n} message(s)", file=out)
    mail_by = Counter(m["To"] for m in sink.messages)
    for address, n in sorted(mail_by.items()):
        print(f"  email  {address:32} {n} message(s)", file=out)
    print(f"  {len(console.sent)} Slack message(s) to {len(slack_by)} people, "
          f"{len(sink.messages)} email(s) to {len(mail_by)} addresses.", file=out)
    return out.getvalue()


def _slack_names(engine) -> dict[str, str]:
    """Slack user id -> the person's name, so that a printed DM names its reader."""
    people = load_people(engine)
    if people.empty:
        return {}
    known = people[people["slack_user_id"].notna() & people["name"].notna()]
    return dict(zip(known["slack_user_id"].astype(str), known["name"].astype(str)))


SYNTHETIC_INDIVIDUALS = 400  # the region demo-day makes up when there is nothing to copy


def demo_day_on_copy(source_url: str, day: dt.date, show: int = 3,
                     rules: NudgeRules | None = None, shown_url: str | None = None,
                     tz: dt.tzinfo = LONDON) -> str:
    """The simulated day on a temporary SQLite copy of `source_url` (see the docstring)."""
    state = source_state(source_url)
    with tempfile.TemporaryDirectory(prefix="mappa-demo-day-") as tmp:
        engine = db.make_engine(f"sqlite:///{Path(tmp) / 'demo.db'}")
        try:
            db.ensure_schema(engine)
            if state == "records":
                source = db.make_engine(source_url)
                try:
                    n = copy_database(source, engine)
                finally:
                    source.dispose()
                where = (f"a temporary copy of {shown_url or source_url} ({n} individuals); "
                         "the configured database is not written to")
            else:
                write_demo_data(Path(tmp) / "csv", individuals=SYNTHETIC_INDIVIDUALS, years=2,
                                seed=1, until=day)
                report = import_directory(engine, Path(tmp) / "csv")
                if not report.ok:
                    raise RuntimeError("; ".join(report.errors[:3]))
                where = (f"a temporary database of {SYNTHETIC_INDIVIDUALS} synthetic "
                         f"individuals: {shown_url or source_url} holds no records")
            return f"Demo day on {where}.\n" + run_demo_day(engine, day, show, rules, tz)
        finally:
            engine.dispose()
