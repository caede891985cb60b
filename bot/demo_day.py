"""`mappa demo-day`: one simulated working day of jobs on whatever the database holds.

Slack messages are printed as they would look (a console transport); email goes to a real
SMTP server (aiosmtpd) started in this process, and nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import io
import socket
from collections import Counter

from bot.delivery.worker import ConsoleTransport, deliver_pending
from bot.jobs.ticks import LONDON, run_planning_job
from bot.settings import Settings
from mappa_core.calendar import calendar_for
from mappa_core.planner import NudgeRules


class _Sink:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

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


def run_demo_day(engine, day: dt.date, show: int = 3, rules: NudgeRules | None = None) -> str:
    rules = rules or NudgeRules()
    cal = calendar_for(None, {})
    if not cal.is_working_day(day):
        day = cal.add_working_days(day, 1)
    start = dt.datetime.combine(day, dt.time.fromisoformat(rules.work_start), tzinfo=LONDON)
    out = io.StringIO()
    print(f"\n=== A simulated working day: {day:%A %d %B %Y} ===", file=out)
    for job, at in (("digest", start), ("escalations", start + dt.timedelta(minutes=35)),
                     ("weekly-summary", start + dt.timedelta(minutes=30)),
                     ("quarterly-review", start + dt.timedelta(minutes=45))):
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
    print(f"{(start + dt.timedelta(hours=1)):%H:%M} deliver           {report.rows_sent} item(s) "
          f"in {sum(report.sent.values())} message(s); {report.retrying} to retry; "
          f"{report.failed} given up\n", file=out)
    for address, message in console.sent[:show]:
        ConsoleTransport(out).sent.clear()
        asyncio.run(ConsoleTransport(out).send(address, message))
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
