"""Answers computed in worker processes (`mappa serve`, MAPPA_WORK_PROCESSES > 0).

pandas holds Python's GIL for much of an answer's work; in threads of the bot's own
process that starves the event loop, which must acknowledge every request within
Slack's 3 seconds and answer `help` at once. In their own processes the computations
cannot. Each worker keeps its own bounded answer cache, checked against the database's
change stamp like the in-process one.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time

_engine = None
_cache = None


def init(url: str, log_format: str, lookback_days: int, today: dt.date | None = None) -> None:
    global _engine, _cache
    from bot.commands.handlers import Context, DeadlineCache
    from bot.channels.slack.home import warm
    from bot.logs import configure_logging
    from mappa_core.storage import db

    configure_logging(log_format)
    # Below the bot's own process in the CPU's queue: acknowledgements and `help` first.
    os.nice(5)
    _engine = db.make_engine(url)
    _cache = DeadlineCache(lookback_days=lookback_days)
    if today is not None:
        started = time.monotonic()
        try:
            warm(Context(_engine, today, _cache))
        except Exception as exc:  # a database not yet imported, or down: answers will say
            logging.getLogger("mappa.workers").warning(
                "worker %d: no warm-up (%s)", os.getpid(), type(exc).__name__)
        else:
            logging.getLogger("mappa.workers").info(
                "worker %d warmed up in %.1f s", os.getpid(), time.monotonic() - started)


def ready() -> int:
    return os.getpid()


def run(caller, cmd, today: dt.date, queued_at: float, max_wait: float):
    """The reply, or None when the command waited longer than `max_wait` seconds (the
    monotonic clock is the machine's, so comparable across processes)."""
    from bot.commands.handlers import Context, answer

    if time.monotonic() - queued_at > max_wait:
        return None
    return answer(Context(_engine, today, _cache), caller, cmd)
