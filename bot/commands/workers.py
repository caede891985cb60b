"""Answers computed in worker processes (`mappa serve`, MAPPA_WORK_PROCESSES > 0).

pandas holds Python's GIL for much of an answer's work; in threads of the bot's own
process that starves the event loop, which must acknowledge every request within
Slack's 3 seconds and answer `help` at once. In their own processes the computations
cannot. Each worker keeps its own bounded answer cache, checked against the database's
change stamp like the in-process one.

The functions here are what the bot's process submits (by reference: the pool spawns):
`init` once per worker, then `run` (a command's answer, rendered by the channel's
renderer when it passes one) or `with_context` (any computation that
takes a Context, such as the App Home's view).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable

from bot.commands.handlers import Context, DeadlineCache, answer
from bot.logs import configure_logging
from mappa_core.storage import db

_engine = None
_cache = None


def init(url: str, log_format: str, lookback_days: int, today: dt.date | None = None,
         warm: Callable[[Context], None] | None = None) -> None:
    """Open the worker's engine and cache; with `today` and `warm`, run `warm` once (a
    first national answer, so that the first person's does not also pay for the code
    paths' first use) before the worker counts as ready."""
    global _engine, _cache
    configure_logging(log_format)
    # Below the bot's own process in the CPU's queue: acknowledgements and `help` first.
    os.nice(5)
    _engine = db.make_engine(url)
    _cache = DeadlineCache(lookback_days=lookback_days)
    if today is not None and warm is not None:
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


def run(caller, cmd, today: dt.date, queued_at: float, max_wait: float,
        render: Callable | None = None):
    """The answer (bot/commands/answers.py), or None when the command waited longer than
    `max_wait` seconds (the monotonic clock is the machine's, so comparable across
    processes). `render`: the channel's renderer, run here too (a module-level function,
    sent by reference), so that the channel's process only sends what comes back."""
    if time.monotonic() - queued_at > max_wait:
        return None
    found = answer(Context(_engine, today, _cache), caller, cmd)
    return found if render is None else render(found)


def with_context(func: Callable, today: dt.date, *args):
    """`func(context, *args)`, with this worker's engine and cache as of `today`."""
    return func(Context(_engine, today, _cache), *args)
