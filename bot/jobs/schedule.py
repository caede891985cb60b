"""The schedule (APScheduler 3, in code, Europe/London, fixed job ids) for `mappa serve`.

APScheduler must not share a job store between processes, so the schedule lives in code
and every job is an idempotent tick: two replicas both planning is harmless (the outbox's
unique dedupe keys), and the delivery worker's row claims keep sending exactly-once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.jobs.ticks import LONDON, run_planning_job
from mappa_core.planner import NudgeRules

log = logging.getLogger("mappa.jobs")


def triggers(rules: NudgeRules, tz: dt.tzinfo = LONDON) -> dict:
    """`tz` is the configured time zone (settings: MAPPA_TIMEZONE)."""
    hour, minute = (int(x) for x in rules.work_start.split(":"))
    return {
        "digest": CronTrigger(day_of_week="mon-fri", hour=hour, minute=minute, timezone=tz),
        "escalations": CronTrigger(hour="8-18", minute=5, timezone=tz),
        "weekly-summary": CronTrigger(day_of_week="mon", hour=9, minute=0, timezone=tz),
        "quarterly-review": CronTrigger(hour=9, minute=15, timezone=tz),
        "deliver": IntervalTrigger(seconds=60, timezone=tz),
    }


def next_runs(rules: NudgeRules, now: dt.datetime, tz: dt.tzinfo = LONDON) -> dict[str, dt.datetime | None]:
    return {name: trig.get_next_fire_time(None, now) for name, trig in triggers(rules, tz).items()}


def build_scheduler(engine, rules: NudgeRules, deliver, tz: dt.tzinfo = LONDON) -> AsyncIOScheduler:
    """`deliver` is an async callable (now) -> report that sends what the outbox holds."""
    scheduler = AsyncIOScheduler(timezone=tz)

    def planning(job: str):
        async def tick() -> None:
            now = dt.datetime.now(tz)
            try:
                result = await asyncio.to_thread(run_planning_job, engine, job, now, rules)
                log.info("%s: planned %d, new %d", job, len(result.planned), result.inserted)
                if result.inserted:
                    await deliver(now)
            except Exception:
                log.exception("job %s failed", job)
        return tick

    async def deliver_tick() -> None:
        try:
            await deliver(dt.datetime.now(tz))
        except Exception:
            log.exception("delivery failed")

    for name, trig in triggers(rules, tz).items():
        func = deliver_tick if name == "deliver" else planning(name)
        scheduler.add_job(func, trig, id=name, name=name, replace_existing=True,
                          coalesce=True, max_instances=1, misfire_grace_time=600)
    return scheduler
