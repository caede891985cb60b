"""The Bolt app: `/mappa`, the nudge buttons, the reason modal and the App Home.

Each listener acknowledges first (Bolt answers Slack's HTTP request the moment `ack()` is
awaited), then does the work in a worker thread and answers through `respond()`. A failure
gives the person a short apology with an error id; the log holds the traceback under it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import os
import re
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.channels.slack import NOTICE_NAV, SlackTransport, interactive_client, notice_ref
from bot.channels.slack.paging import page_value
from bot.commands import actions, escalate, handlers, home, notices, workers
from bot.commands.access import Caller, audit_row, find_caller, write_audit_rows
from bot.commands.parser import MAX_AREA, Command, ParseError, parse
from bot.settings import Settings
from bot.templates import render_json
from mappa_core.rules.kinds import ITEM_KINDS
from mappa_core.rules.records import DUE_SOON_DAYS

log = logging.getLogger("mappa.slack")
STILL_WORKING = ("Still working on your last request: its answer will come here in a moment. "
                 "Please send the next one after it.")
BUSY = "mappa-bot is busy with other people's requests: please try again in a minute."
SLOW = ("This is taking longer than usual: please ask again in a minute, when the answer "
        "will be ready.")


def _error_reply(error_id: str) -> handlers.Reply:
    return handlers.message(
        f"Sorry, something went wrong. Please tell your MAPPA Co-ordinator the error id `{error_id}`."
    )


class MappaSlack:
    """Holds the engine, settings and clock the listeners share."""

    def __init__(self, settings: Settings, engine, today: Callable[[], dt.date] | None = None):
        self.settings = settings
        self.engine = engine
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
        self.in_flight: dict[str, int] = {}  # user id -> commands being worked on
        self.queued = 0                      # commands waiting for or in the work pool
        self.processes = None
        if settings.work_processes:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.processes = ProcessPoolExecutor(
                settings.work_processes, mp_context=multiprocessing.get_context("spawn"),
                initializer=workers.init, initargs=(
                    engine.url.render_as_string(hide_password=False), settings.log_format,
                    settings.lookback_days, self.today()))
            # Started now, not on the first command; until they have started (importing
            # pandas, then a first national answer: bot.commands.home.warm) commands are
            # computed in threads instead, and /readyz says "not ready".
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

    def context(self) -> handlers.Context:
        return handlers.Context(self.engine, self.today(), self.cache)

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
                await self.quick_work(write_audit_rows, self.engine, batch)
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

    # ------------------------------------------------------------------ commands

    async def command(self, body: dict, respond, client: AsyncWebClient) -> None:
        user_id = body.get("user_id", "")
        text = body.get("text", "") or ""
        action = "command"
        caller = None
        started = time.monotonic()
        try:
            caller = await self.caller(user_id)
            if caller is None:
                await respond(text=handlers.NOT_AUTHORISED, response_type="ephemeral")
                await self.audit(user_id, None, action, text[:200], "denied:unknown-user")
                return
            try:
                cmd = parse(text)
            except ParseError as exc:
                reply = handlers.help_reply(str(exc))
                await self._respond(respond, reply)
                await self.audit(user_id, caller, action, text[:200], "invalid")
                return
            action = f"command:{cmd.name}"
            outcome = "ok"
            if cmd.name == "help":
                reply = handlers.help_reply()
            elif cmd.name == "escalate":  # urgent: never behind anyone's status request
                reply = await self.escalate(caller, cmd.text, body, client)
            else:
                reply, outcome = await self.limited(user_id, caller, cmd, started)
            await self._respond(respond, reply)
            metrics.COMMAND_SECONDS.labels(cmd.name).observe(time.monotonic() - started)
            await self.audit(user_id, caller, action, _audit_detail(cmd, text), outcome)
        except Exception:
            error_id = uuid.uuid4().hex[:10]
            log.exception("error %s in %s from %s", error_id, action, user_id)
            try:
                await self._respond(respond, _error_reply(error_id))
            finally:
                await self.audit(user_id, caller, action, text[:200], f"error:{error_id}")

    async def limited(self, user_id: str, caller: Caller, cmd,
                      started: float) -> tuple[handlers.Reply, str]:
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

    def _run_unless_stale(self, caller: Caller, cmd, queued_at: float) -> handlers.Reply | None:
        if time.monotonic() - queued_at > self.settings.max_wait_seconds:
            return None
        return handlers.answer(self.context(), caller, cmd)

    def _release(self, user_id: str, work: asyncio.Future) -> None:
        if not work.cancelled():
            work.exception()  # retrieved: the answer given (or the error logged) covers it
        self.queued -= 1
        if self.in_flight.get(user_id, 0) <= 1:
            self.in_flight.pop(user_id, None)
        else:
            self.in_flight[user_id] -= 1

    async def compute(self, caller: Caller, cmd) -> handlers.Reply | None:
        """The answer to a command, in a worker process when there are some; None when it
        waited longer than MAPPA_MAX_WAIT_SECONDS for a worker."""
        queued_at = time.monotonic()
        if self.processes is None or not self.workers_ready():
            return await self.work(self._run_unless_stale, caller, cmd, queued_at)
        return await asyncio.wrap_future(self.processes.submit(
            workers.run, caller, cmd, self.today(), queued_at, self.settings.max_wait_seconds))

    @staticmethod
    async def _respond(respond, reply: handlers.Reply) -> None:
        # Ephemeral always: only the person who asked sees the answer.
        await respond(text=reply.text, blocks=reply.blocks, response_type="ephemeral",
                      replace_original=False)

    async def escalate(self, caller: Caller, text: str, body: dict, client) -> handlers.Reply:
        now = dt.datetime.now(self.settings.tz)
        request_key = body.get("trigger_id") or f"{body.get('user_id')}:{now:%Y-%m-%dT%H:%M}"
        esc = await self.quick_work(
            handlers.raise_urgent_issue, self.context(), caller, text, request_key,
            now.astimezone(dt.UTC),
        )
        return await escalate.escalate(self.engine, self.settings, esc, caller, text, now,
                                       SlackTransport(client))

    # ------------------------------------------------------------------ actions

    async def action(self, body: dict, respond, client, kind: str) -> None:
        user_id = (body.get("user") or {}).get("id", "")
        act = (body.get("actions") or [{}])[0]
        key = str(act.get("value") or act.get("block_id") or "")
        caller = None
        try:
            caller = await self.button_caller(user_id, respond, f"action:{kind}", key)
            if caller is None:
                return
            if kind == "record_reason":
                item = await self.quick_work(actions.find_item, self.context(), key)
                actions.check_may_act(caller, item)
                where = _message_at(body)
                # The modal's submission carries no message: where to redraw rides with it.
                metadata = key if where is None else json.dumps(
                    {"k": key, "c": where[0], "ts": where[1], "o": where[2], "p": where[3]})
                view = render_json("slack/reason_modal.json.j2", item_key=metadata,
                                   item_label=item.label, reasons=actions.REASON_LABELS)
                await client.views_open(trigger_id=body.get("trigger_id"), view=view)
                await self.audit(user_id, caller, f"action:{kind}", key, "ok")
                return
            ctx = self.context()
            outcome = "ok"
            if kind == "minutes_issued":
                reply = await self.quick_work(actions.minutes_issued, ctx, caller, key)
            elif kind == "rmp_ratified":
                reply = await self.quick_work(actions.rmp_ratified, ctx, caller, key)
            elif kind == "contribution_received":
                reply = await self.quick_work(actions.contribution_received, ctx, caller, key)
            elif kind == "ack_escalation":
                reply = await self.quick_work(actions.acknowledge, ctx, caller, key)
            elif kind == "ack_escalation_shown":
                reply, outcome = await self.quick_work(actions.acknowledge_shown, ctx, caller,
                                                       key)
            else:  # snooze_1wd, snooze_3wd, snooze_until
                reply = await self.quick_work(actions.snooze, ctx, caller, key, kind,
                                                act.get("selected_date"))
            await MappaSlack._respond(respond, reply)
            await self.audit(user_id, caller, f"action:{kind}", key, outcome)
            await self.redraw(caller, client, _message_at(body))
        except actions.ActionError as exc:
            await MappaSlack._respond(respond, handlers.message(str(exc)))
            await self.audit(user_id, caller, f"action:{kind}", key, "refused")
        except Exception:
            error_id = uuid.uuid4().hex[:10]
            log.exception("error %s in action %s from %s", error_id, kind, user_id)
            await MappaSlack._respond(respond, _error_reply(error_id))
            await self.audit(user_id, caller, f"action:{kind}", key, f"error:{error_id}")

    # ------------------------------------------------------------------ pages

    async def page_due(self, body: dict, respond) -> None:
        """"Previous" / "Next" under a `/mappa due` or `/mappa overdue` reply: that page of
        the list, computed again for whoever pressed (their own scope and access), in place
        of the reply."""
        user_id = (body.get("user") or {}).get("id", "")
        act = (body.get("actions") or [{}])[0]
        value = page_value(str(act.get("value") or ""))
        name = value.get("c") if value.get("c") in ("due", "overdue") else "due"
        days = value.get("d")
        days = days if isinstance(days, int) and not isinstance(days, bool) else DUE_SOON_DAYS
        # The filters as the reply set them; forged ones are checked as typed ones are.
        kind = value.get("k") if isinstance(value.get("k"), str) and value["k"] in ITEM_KINDS \
            else None
        area = value.get("a") if isinstance(value.get("a"), str) else None
        cmd = Command(name, days=0 if name == "overdue" else min(max(days, 0), 365),
                      page=value["p"], kind=kind, area=area[:MAX_AREA] if area else None)
        detail = " ".join([name, str(cmd.days), *filter(None, (kind, cmd.area))]) + \
            f" page {cmd.page}"
        caller = None
        started = time.monotonic()
        try:
            caller = await self.button_caller(user_id, respond, "action:page_due", detail)
            if caller is None:
                return
            # The same limits as `/mappa due` itself: a page is the same computation.
            reply, outcome = await self.limited(user_id, caller, cmd, started)
            if outcome != "ok":
                await MappaSlack._respond(respond, reply)
                await self.audit(user_id, caller, "action:page_due", detail, outcome)
                return
            await respond(text=reply.text, blocks=reply.blocks, response_type="ephemeral",
                          replace_original=True)
            await self.audit(user_id, caller, "action:page_due", detail, "ok")
        except Exception:
            error_id = uuid.uuid4().hex[:10]
            log.exception("error %s in action page_due from %s", error_id, user_id)
            await MappaSlack._respond(respond, _error_reply(error_id))
            await self.audit(user_id, caller, "action:page_due", detail, f"error:{error_id}")

    async def reason_submitted(self, body: dict, view: dict, client) -> dict | None:
        """Validate and save the reason modal; returns Bolt's ack payload on an error."""
        user_id = (body.get("user") or {}).get("id", "")
        key, where = _reason_metadata(view.get("private_metadata", ""))
        values = (view.get("state") or {}).get("values") or {}
        code = ((values.get("reason") or {}).get("code") or {}).get("selected_option") or {}
        text = ((values.get("note") or {}).get("text") or {}).get("value") or ""
        caller = await self.caller(user_id)
        if caller is None:
            await self.audit(user_id, None, "view:record_reason", key, "denied:unknown-user")
            return {"response_action": "errors", "errors": {"reason": "You are not authorised."}}
        try:
            reply = await self.quick_work(actions.record_reason, self.context(), caller, key,
                                            code.get("value", ""), text)
        except actions.ActionError as exc:
            await self.audit(user_id, caller, "view:record_reason", key, "refused")
            return {"response_action": "errors", "errors": {"reason": str(exc)[:150]}}
        await self.audit(user_id, caller, "view:record_reason", key, "ok")
        try:
            await client.chat_postMessage(channel=user_id, text=reply.text, blocks=reply.blocks)
        except Exception as exc:
            log.warning("could not confirm the reason to %s: %s", user_id, exc)
        await self.redraw(caller, client, where)
        return None

    async def redraw(self, caller: Caller, client, where) -> None:
        """After a button: the notice it was pressed on, drawn again in place (chat.update)
        with what was done to each item. A message that is not a notice of ours (or is no
        longer kept, or is not where that notice was posted) stays as it is; the person has
        had their answer either way."""
        if where is None:
            return
        channel, ts, first_id, page = where
        try:
            message = await self.quick_work(notices.notice_page, self.context(), caller,
                                            first_id, page, (channel, ts))
            await client.chat_update(channel=channel, ts=ts, text=message.text,
                                     blocks=message.blocks)
        except notices.NoticeError as exc:
            if str(exc) == notices.ELSEWHERE:
                log.warning("did not redraw notice %s for %s: the press named another "
                            "message than the one it was posted as", first_id,
                            caller.person_id)
            return
        except Exception as exc:
            log.warning("could not redraw notice %s for %s: %s", first_id, caller.person_id,
                        type(exc).__name__)

    async def page_notice(self, body: dict, respond, client) -> None:
        """"Previous" / "Next" on a notice the bot posted (a digest, an escalation): that
        page, drawn from the message's outbox rows, in place of the message (chat.update).
        Only the message's reader may page it, and only on the message it was posted as."""
        user_id = (body.get("user") or {}).get("id", "")
        act = (body.get("actions") or [{}])[0]
        value = page_value(str(act.get("value") or ""))
        first_id = value.get("o")
        detail = f"notice {first_id} page {value['p']}"
        where = _message_at(body)
        caller = None
        try:
            caller = await self.button_caller(user_id, respond, "action:page_notice", detail)
            if caller is None:
                return
            if not isinstance(first_id, int) or where is None:
                raise notices.NoticeError(notices.GONE)
            message = await self.quick_work(notices.notice_page, self.context(), caller,
                                            first_id, value["p"], where[:2])
            await client.chat_update(channel=where[0], ts=where[1], text=message.text,
                                     blocks=message.blocks)
            await self.audit(user_id, caller, "action:page_notice", detail, "ok")
        except notices.NoticeError as exc:
            await MappaSlack._respond(respond, handlers.message(str(exc)))
            await self.audit(user_id, caller, "action:page_notice", detail, "refused")
        except Exception:
            error_id = uuid.uuid4().hex[:10]
            log.exception("error %s in action page_notice from %s", error_id, user_id)
            await MappaSlack._respond(respond, _error_reply(error_id))
            await self.audit(user_id, caller, "action:page_notice", detail, f"error:{error_id}")


def _message_at(body: dict) -> tuple[str, str, int, int] | None:
    """(channel, ts, first outbox row id, page) of the notice a button was pressed on, from
    the interaction's payload; None when it is not one of our notices."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or message.get("ts")
    ref = notice_ref(message.get("blocks"))
    if not channel or not ts or ref is None:
        return None
    return str(channel), str(ts), ref[0], ref[1]


def _reason_metadata(metadata: str) -> tuple[str, tuple | None]:
    """The item key and where to redraw, from the reason modal's private_metadata (the key
    alone when the button was not on a notice of ours)."""
    if not metadata.startswith("{"):
        return metadata, None
    try:
        data = json.loads(metadata)
        where = (str(data["c"]), str(data["ts"]), int(data["o"]), max(1, int(data["p"])))
        return str(data["k"]), where
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return "", None


def _audit_detail(cmd, text: str) -> str:
    if cmd.name == "escalate":
        return f"escalate ({len(cmd.text)} characters)"
    return " ".join(text.split())[:200]


ACTION_IDS = ("minutes_issued", "rmp_ratified", "contribution_received", "snooze_1wd",
              "snooze_3wd", "snooze_until", "record_reason", "ack_escalation",
              "ack_escalation_shown")


class _NotTokenUnused(logging.Filter):
    """Drops Bolt's "As you gave `client` as well, `token` will be unused.": AsyncApp reads
    SLACK_BOT_TOKEN from the environment itself when no token is passed, and warns on every
    start that the client given (holding that very token, and SLACK_API_URL) wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped

        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_LOG = logging.getLogger("slack_bolt.AsyncApp")  # AsyncApp's own (get_bolt_logger)
if not any(isinstance(f, _NotTokenUnused) for f in _BOLT_LOG.filters):
    _BOLT_LOG.addFilter(_NotTokenUnused())


def build_app(settings: Settings, engine,
              today: Callable[[], dt.date] | None = None) -> AsyncApp:
    client = interactive_client(settings)  # retries a 429 after Retry-After
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret or None,
        client=client,
        process_before_response=False,
        request_verification_enabled=bool(settings.slack_signing_secret),
    )
    bot = MappaSlack(settings, engine, today)
    app.mappa = bot  # type: ignore[attr-defined]  (for the server's health check and tests)

    @app.error
    async def unusable(error, response):
        # One line, not Bolt's 500 with a traceback: 503 when Slack's Web API cannot be
        # reached (Bolt checks the token first), 400 for a signed request Bolt cannot use
        # (a payload missing what its kind needs).
        import aiohttp

        down = isinstance(error, aiohttp.ClientError | asyncio.TimeoutError)
        status = 503 if down else 400
        log.warning("refused %d /slack/events: %s (%s)", status,
                    "Slack's Web API cannot be reached" if down else
                    "Bolt could not handle the request", type(error).__name__)
        log.debug("Bolt's error", exc_info=error)
        if response is not None:
            return BoltResponse(status=status, body="Slack's Web API cannot be reached" if down
                                else "malformed Slack request")
        return None

    @app.command("/mappa")
    async def mappa_command(ack, body, respond, client):
        await ack()
        await bot.command(body, respond, client)

    @app.action(re.compile(rf"^{handlers.DUE_NAV}_(prev|next)$"))
    async def on_page_due(ack, body, respond):
        await ack()
        await bot.page_due(body, respond)

    @app.action(re.compile(rf"^{NOTICE_NAV}_(prev|next)$"))
    async def on_page_notice(ack, body, respond, client):
        await ack()
        await bot.page_notice(body, respond, client)

    for action_id in ACTION_IDS:
        def make(kind: str):
            async def on_action(ack, body, respond, client):
                await ack()
                await bot.action(body, respond, client, kind)
            return on_action
        app.action(action_id)(make(action_id))

    @app.event("app_home_opened")
    async def on_home_opened(ack, event, client):
        await ack()
        await home.opened(bot, event, client)

    @app.view("record_reason_modal")
    async def on_reason(ack, body, view, client):
        # Validate before acknowledging so that errors show in the modal itself.
        errors = await bot.reason_submitted(body, view, client)
        if errors:
            await ack(**errors)
        else:
            await ack()

    return app
