"""`/mappa ...`: who asks, the parsed command, its answer within the limits (runtime.py),
privately; `help` at once and `escalate` never behind anyone's status request. A mistake
in what was typed (bot/commands/checks.py: a period that has not started, one too long, a
malformed date, ...) is answered with the help and audited "invalid"."""

from __future__ import annotations

import datetime as dt
import time

from bot import metrics
from bot.channels.slack import SlackTransport
from bot.channels.slack.guard import guarded
from bot.commands import escalate, handlers
from bot.commands.access import Caller
from bot.commands.answers import Answer
from bot.commands.parser import ParseError, parse


def register(app, bot) -> None:
    @app.command("/mappa")
    async def mappa_command(ack, body, respond, client):
        await ack()
        await command(bot, body, respond, client)


async def command(bot, body: dict, respond, client) -> None:
    user_id = body.get("user_id", "")
    text = body.get("text", "") or ""
    started = time.monotonic()

    async def tell(reply):
        await bot.respond(respond, reply)

    async with guarded(bot, user_id, "command", text[:200], tell=tell) as turn:
        caller = turn.caller = await bot.caller(user_id)
        if caller is None:
            await respond(text=handlers.NOT_AUTHORISED, response_type="ephemeral")
            await bot.audit(user_id, None, turn.action, text[:200], "denied:unknown-user")
            return
        try:
            cmd = parse(text, bot.today())
        except ParseError as exc:
            await tell(handlers.help_answer(str(exc)))
            await bot.audit(user_id, caller, turn.action, text[:200], "invalid")
            return
        turn.action = f"command:{cmd.name}"
        outcome = "ok"
        if cmd.name == "help":
            reply = handlers.help_answer()
        elif cmd.name == "escalate":  # urgent: never behind anyone's status request
            reply = await _escalate(bot, caller, cmd.text, body, client)
        else:
            reply, outcome = await bot.limited(user_id, caller, cmd, started)
        await tell(reply)
        metrics.COMMAND_SECONDS.labels(cmd.name).observe(time.monotonic() - started)
        await bot.audit(user_id, caller, turn.action, _audit_detail(cmd, text), outcome)


async def _escalate(bot, caller: Caller, text: str, body: dict, client) -> Answer:
    if not text.strip():
        return escalate.ask()  # nothing written: what is the issue?
    now = dt.datetime.now(bot.settings.tz)
    request_key = body.get("trigger_id") or f"{body.get('user_id')}:{now:%Y-%m-%dT%H:%M}"
    esc = await bot.quick_work(
        escalate.record, bot.context(), caller, text, request_key, now.astimezone(dt.UTC))
    return await escalate.escalate(bot.engine, bot.settings, esc, caller, text, now,
                                   deliverer(bot, client))


def deliverer(bot, client) -> escalate.Deliver:
    """Deliver outbox groups now, Slack through this request's client."""
    slack = SlackTransport(client)

    async def deliver(groups: list[str], at: dt.datetime):
        return await bot.deliver(slack, at, groups=groups)
    return deliver


def _audit_detail(cmd, text: str) -> str:
    if cmd.name == "escalate":
        return f"escalate ({len(cmd.text)} characters)"
    return " ".join(text.split())[:200]
