"""The schedule (APScheduler 3, in code, Europe/London, fixed job ids) for `mappa serve`.

APScheduler must not share a job store between processes, so the schedule lives in code
and every job is an idempotent tick: two replicas both planning is harmless (the outbox's
unique dedupe keys), and the delivery worker's row claims keep sending exactly-once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot import logs, metrics
from bot.jobs import heartbeat
from bot.jobs.ticks import LONDON, run_planning_job
from mappa_core.rules.planner import NudgeRules

log = logging.getLogger("mappa.jobs")

# Escalations are checked every hour at five past, from 08:05 to 18:05 (in `tz`): an
# urgent one goes out within the hour; a non-urgent one waits for working hours anyway.
ESCALATION_HOURS = "8-18"
ESCALATION_MINUTE = 5


def triggers(rules: NudgeRules, tz: dt.tzinfo = LONDON) -> dict:
    """`tz` is the configured time zone (settings: MAPPA_TIMEZONE)."""
    hour, minute = (int(x) for x in rules.work_start.split(":"))
    return {
        "digest": CronTrigger(day_of_week="mon-fri", hour=hour, minute=minute, timezone=tz),
        "escalations": CronTrigger(hour=ESCALATION_HOURS, minute=ESCALATION_MINUTE, timezone=tz),
        "weekly-summary": CronTrigger(day_of_week="mon", hour=9, minute=0, timezone=tz),
        "quarterly-review": CronTrigger(hour=9, minute=15, timezone=tz),
        "deliver": IntervalTrigger(seconds=60, timezone=tz),
    }


def next_runs(rules: NudgeRules, now: dt.datetime, tz: dt.tzinfo = LONDON) -> dict[str, dt.datetime | None]:
    return {name: trig.get_next_fire_time(None, now) for name, trig in triggers(rules, tz).items()}


def build_scheduler(engine, rules: NudgeRules, deliver, tz: dt.tzinfo = LONDON,
                    area_channels: dict | None = None,
                    heartbeat_url: str | None = None) -> AsyncIOScheduler:
    """`deliver` is an async callable (now) -> report that sends what the outbox holds;
    `area_channels` (bot.channels.area_channels) the areas' own channels; `heartbeat_url`
    (MAPPA_HEARTBEAT_URL) is pinged after every run (bot/jobs/heartbeat.py)."""
    scheduler = AsyncIOScheduler(timezone=tz)

    async def finished(job: str, line: str, failed: bool, more: list[str] = ()) -> None:
        """The run's one line logged (a crash was, with its traceback), then the ping."""
        if line.startswith(f"job {job}:"):
            log.info(line)
        for extra_line in more:
            log.info("job %s: %s", job, extra_line)
        await heartbeat.ping_async(heartbeat_url, failed, line, job)

    def planning(job: str):
        async def tick() -> None:
            with logs.context(job=job, run_id=logs.new_run_id()):
                inserted = await plan_once(job)
            if inserted:
                await deliver_tick()
        return tick

    async def plan_once(job: str) -> int:
        now = dt.datetime.now(tz)
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(run_planning_job, engine, job, now, rules,
                                             False, area_channels)
        except Exception as exc:
            line = f"job {job} failed after {time.monotonic() - started:.1f} s"
            log.exception(line)
            # (The type only: a database error's text may quote a row.)
            await finished(job, f"{line}: {type(exc).__name__}", failed=True)
            return 0
        took = time.monotonic() - started
        metrics.JOB_SECONDS.labels(job).observe(took)
        metrics.JOB_LAST_SUCCESS.labels(job).set_to_current_time()
        skipped = f" ({result.skipped})" if result.skipped else ""
        await finished(job, f"job {job}: planned {len(result.planned)}, new {result.inserted}"
                       f"{skipped} in {took:.1f} s", failed=False)
        return result.inserted

    async def deliver_tick() -> None:
        with logs.context(job="deliver", run_id=logs.new_run_id()):
            await deliver_once()

    async def deliver_once() -> None:
        started = time.monotonic()
        try:
            report = await deliver(dt.datetime.now(tz))
        except Exception as exc:
            line = f"job deliver failed after {time.monotonic() - started:.1f} s"
            log.exception(line)
            await finished("deliver", f"{line}: {type(exc).__name__}", failed=True)
            return
        took = time.monotonic() - started
        metrics.JOB_SECONDS.labels("deliver").observe(took)
        metrics.JOB_LAST_SUCCESS.labels("deliver").set_to_current_time()
        if report is None:
            await finished("deliver", f"job deliver: done in {took:.1f} s", failed=False)
            return
        # Given-up messages fail the run, as they make `mappa jobs run deliver` exit 1.
        await finished("deliver", f"job deliver: sent {report.summary()}, {report.retrying} "
                       f"to retry, {report.failed} given up in {took:.1f} s",
                       failed=bool(report.failed), more=report.waiting_lines())

    for name, trig in triggers(rules, tz).items():
        func = deliver_tick if name == "deliver" else planning(name)
        scheduler.add_job(func, trig, id=name, name=name, replace_existing=True,
                          coalesce=True, max_instances=1, misfire_grace_time=600)
    return scheduler
