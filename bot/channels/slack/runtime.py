"""What every Slack listener runs on (`MappaSlack`): the engine, the clock, the work pools,
the limits every computed answer keeps, who is asking, and the audit queue.

Each listener acknowledges first (Bolt answers Slack's HTTP request the moment `ack()` is
awaited), then does the work in a pool and answers through `respond()`. Built once per app
by app.build_app, and kept on the app as `app.mappa` (the server's /readyz and the tests
read it there).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import multiprocessing
import os
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from bot import metrics
from bot.channels.slack import home
from bot.channels.slack.answers import Reply, slack_reply
from bot.commands import handlers, workers
from bot.commands.access import Caller, audit_row, find_caller
from bot.settings import Settings
from mappa_core.storage import audit as audit_log
from mappa_core.storage import seen_requests

log = logging.getLogger("mappa.slack")
STILL_WORKING = ("Still working on your last request: its answer will come here in a moment. "
                 "Please send the next one after it.")
BUSY = "mappa-bot is busy with other people's requests: please try again in a minute."
SLOW = ("This is taking longer than usual: please ask again in a minute, when the answer "
        "will be ready.")


class MappaSlack:
    """Holds the engine, settings and clock the listeners share."""

    def __init__(self, settings: Settings, engine, today: Callable[[], dt.date] | None = None,
                 deliver: Callable[..., Awaitable] | None = None):
        self.settings = settings
        self.engine = engine
        # deliver(transport, now, groups=[...]): the outbox groups named, sent now
        # (bot.delivery.worker.deliver_pending, given by `mappa serve`): `/mappa escalate`.
        self.deliver = deliver
        # Today in the configured time zone (MAPPA_TIMEZONE), unless a test fixes the day.
        self.today = today or (lambda: dt.datetime.now(settings.tz).date())
        self.cache = handlers.DeadlineCache(lookback_days=settings.lookback_days)
        self.pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                       thread_name_prefix="mappa-work")
        # Quick database work (who is asking, audit rows, buttons, help) has its own threads,
        # so that it never waits behind a long computation.
        self.quick = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mappa-quick")
        self._audit_rows: list[dict] = []
        self._audit_writer: asyncio.Task | None = None
        self._pruned_at = 0.0                # when this replica last pruned old request keys
        self.in_flight: dict[str, int] = {}  # user id -> commands being worked on
        self.queued = 0                      # commands waiting for or in the work pool
        self.processes = None
        if settings.work_processes:
            self.processes = ProcessPoolExecutor(
                settings.work_processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=workers.init, initargs=(
                    engine.url.render_as_string(hide_password=False), settings.log_format,
                    settings.lookback_days, self.today(), home.warm))
            # Started now, not on the first command; until they have started (importing
            # pandas, then a first national answer: home.warm) commands are computed in
            # threads instead, and /readyz says "not ready".
            self.warming = [self.processes.submit(workers.ready)
                            for _ in range(settings.work_processes)]

    def workers_ready(self) -> bool:
        return self.processes is None or all(f.done() for f in self.warming)

    def close(self) -> None:
        """Stop the worker processes and threads (a stopped server leaves none behind)."""
        if self.processes is not None:
            # Waiting: without it the server can exit before the workers are told to stop,
            # and they run on as orphans. An answer in progress ends within seconds.
            self.processes.shutdown(wait=True, cancel_futures=True)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.quick.shutdown(wait=False, cancel_futures=True)

    async def work(self, func, *args):
        """Run blocking work (pandas, the database) off the event loop.

        A small pool, sized to the machine's cores: more threads would only take turns at
        Python's GIL and slow down the event loop that sends acknowledgements.
        """
        return await asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(func, *args))

    async def quick_work(self, func, *args):
        return await asyncio.get_running_loop().run_in_executor(
            self.quick, functools.partial(func, *args))

    async def in_worker(self, func, *args):
        """`func(context, *args)` in a worker process when they have started, else in the
        work pool: what the App Home computes (a command goes through `limited`)."""
        if self.processes is None or not self.workers_ready():
            return await self.work(func, self.context(), *args)
        return await asyncio.wrap_future(
            self.processes.submit(workers.with_context, func, self.today(), *args))

    def refuse_early(self, body: bytes) -> tuple[str, str, str] | None:
        """For a slash command that would only be told to wait (its sender already has a
        command in flight, or the work queue is full): (user id, answer, audit outcome),
        so that the edge answers in the acknowledgement itself and a flood costs almost
        nothing. None for anything else, and never for `help` or `escalate`."""
        full = self.queued >= self.settings.max_queued_commands
        if not (self.in_flight or full) or b"command=" not in body:
            return None
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if not form.get("command"):
            return None
        user = (form.get("user_id") or [""])[0]
        words = (form.get("text") or [""])[0].split()
        if not words or words[0].lower() in ("help", "escalate"):
            return None
        if self.in_flight.get(user, 0) >= self.settings.commands_per_user:
            return user, STILL_WORKING, "refused:in-flight"
        if full:
            return user, BUSY, "refused:busy"
        return None

    async def first_time(self, key: str) -> bool:
        """False when a request with this idempotency key was acted on before, by this
        replica or another (mappa_core.storage.seen_requests): a replay. Once a minute the
        claim also removes keys older than an hour."""
        now = time.monotonic()
        prune = now - self._pruned_at > 60
        if prune:
            self._pruned_at = now
        try:
            return await self.quick_work(seen_requests.claim, self.engine, key,
                                         dt.datetime.now(dt.UTC), prune)
        except Exception as exc:
            # A database that cannot take the claim cannot take what the request would
            # write either: the listener meets the same failure and says so.
            log.warning("could not check request for a replay (%s); acting on it",
                        type(exc).__name__)
            return True

    def context(self) -> handlers.Context:
        return handlers.Context(self.engine, self.today(), self.cache)

    # ------------------------------------------------------------------ who and the audit

    async def audit(self, user_id, caller, action, detail, outcome) -> None:
        """Queue an audit row; rows are written in batches, one transaction each, by one
        writer. One commit per command kept PostgreSQL's fsyncs in the way of every
        caller lookup under load (answers lagged 22-24 s behind their acknowledgements)."""
        self._audit_rows.append(audit_row(user_id, caller, action, detail, outcome))
        if self._audit_writer is None or self._audit_writer.done():
            self._audit_writer = asyncio.create_task(self._write_audits())

    async def _write_audits(self) -> None:
        while self._audit_rows:
            batch, self._audit_rows = self._audit_rows[:500], self._audit_rows[500:]
            try:
                await self.quick_work(audit_log.write_rows, self.engine, batch)
            except Exception:  # the answers matter more than their audit rows; the log keeps it
                log.exception("audit write failed for %d row(s)", len(batch))

    async def caller(self, user_id: str) -> Caller | None:
        return await self.quick_work(find_caller, self.engine, user_id)

    async def button_caller(self, user_id: str, respond, action: str, detail: str) -> Caller | None:
        """Who pressed a button; a stranger is told privately (the message stays) and audited."""
        caller = await self.caller(user_id)
        if caller is None:
            await respond(text=handlers.NOT_AUTHORISED, response_type="ephemeral",
                          replace_original=False)
            await self.audit(user_id, None, action, detail, "denied:unknown-user")
        return caller

    @staticmethod
    async def respond(respond, reply) -> None:
        """A command's answer or a Reply, as Slack shows it (answers.slack_reply)."""
        reply = slack_reply(reply)
        # Ephemeral always: only the person who asked sees the answer.
        await respond(text=reply.text, blocks=reply.blocks, response_type="ephemeral",
                      replace_original=False)

    # ------------------------------------------------------------------ computed answers

    async def limited(self, user_id: str, caller: Caller, cmd,
                      started: float) -> tuple[Reply | handlers.Said, str]:
        """The answer to `cmd` and the audit outcome, within the limits every computed
        answer keeps (a command or a page button alike): one person's requests in flight
        (MAPPA_COMMANDS_PER_USER), the queue (MAPPA_MAX_QUEUED_COMMANDS) and the answer
        time (MAPPA_ANSWER_SECONDS, counted from `started`)."""
        if self.in_flight.get(user_id, 0) >= self.settings.commands_per_user:
            metrics.COMMANDS_REFUSED.labels("in-flight").inc()
            return handlers.message(STILL_WORKING), "refused:in-flight"
        if self.queued >= self.settings.max_queued_commands:
            metrics.COMMANDS_REFUSED.labels("busy").inc()
            return handlers.message(BUSY), "refused:busy"
        self.in_flight[user_id] = self.in_flight.get(user_id, 0) + 1
        self.queued += 1
        work = asyncio.ensure_future(self.compute(caller, cmd))
        # The person and the queue are free again when the work ends, even if they
        # were told before then that it is taking longer.
        work.add_done_callback(lambda f, u=user_id: self._release(u, f))
        budget = self.settings.answer_seconds - (time.monotonic() - started)
        try:
            reply = await asyncio.wait_for(asyncio.shield(work), max(0.1, budget))
        except TimeoutError:
            metrics.COMMANDS_REFUSED.labels("late").inc()
            return handlers.message(SLOW), "late"
        if reply is None:  # waited too long for a worker: say so rather than be late
            metrics.COMMANDS_REFUSED.labels("waited").inc()
            return handlers.message(BUSY), "refused:busy"
        return reply, "ok"

    def _run_unless_stale(self, caller: Caller, cmd, queued_at: float) -> Reply | None:
        if time.monotonic() - queued_at > self.settings.max_wait_seconds:
            return None
        return slack_reply(handlers.answer(self.context(), caller, cmd))

    def _release(self, user_id: str, work: asyncio.Future) -> None:
        if not work.cancelled():
            work.exception()  # retrieved: the answer given (or the error logged) covers it
        self.queued -= 1
        if self.in_flight.get(user_id, 0) <= 1:
            self.in_flight.pop(user_id, None)
        else:
            self.in_flight[user_id] -= 1

    async def compute(self, caller: Caller, cmd) -> Reply | None:
        """The answer to a command, in a worker process when there are some; None when it
        waited longer than MAPPA_MAX_WAIT_SECONDS for a worker."""
        queued_at = time.monotonic()
        if self.processes is None or not self.workers_ready():
            return await self.work(self._run_unless_stale, caller, cmd, queued_at)
        return await asyncio.wrap_future(self.processes.submit(
            workers.run, caller, cmd, self.today(), queued_at, self.settings.max_wait_seconds,
            slack_reply))
