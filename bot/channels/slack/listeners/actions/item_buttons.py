"""The buttons on an item of a notice: minutes issued, RMP ratified, contribution received,
the snoozes, and a SOG chair's acknowledgements. Each records what the person did
(bot/commands/actions.py), tells them privately, and redraws the notice it was on."""

from __future__ import annotations

from bot.channels.escalation import parse_ack_value
from bot.channels.slack.guard import guarded
from bot.channels.slack.redraw import message_at, redraw
from bot.commands import actions

SNOOZES = ("snooze_1wd", "snooze_3wd", "snooze_until")
ACTION_IDS = ("minutes_issued", "rmp_ratified", "contribution_received", *SNOOZES,
              "ack_escalation", "ack_escalation_shown")


def register(app, bot) -> None:
    for action_id in ACTION_IDS:
        def make(kind: str):
            async def on_action(ack, body, respond, client):
                await ack()
                await pressed(bot, body, respond, client, kind)
            return on_action
        app.action(action_id)(make(action_id))


def _record(ctx, caller, kind: str, act: dict, key: str):
    """What the button `kind` records: (the reply, the audit outcome)."""
    if kind == "minutes_issued":
        return actions.minutes_issued(ctx, caller, key), "ok"
    if kind == "rmp_ratified":
        return actions.rmp_ratified(ctx, caller, key), "ok"
    if kind == "contribution_received":
        return actions.contribution_received(ctx, caller, key), "ok"
    if kind == "ack_escalation":
        key, _, stage = key.rpartition("|")
        return actions.acknowledge(ctx, caller, key, stage), "ok"
    if kind == "ack_escalation_shown":
        return actions.acknowledge_shown(ctx, caller, parse_ack_value(key))
    return actions.snooze(ctx, caller, key, kind, act.get("selected_date")), "ok"


async def pressed(bot, body: dict, respond, client, kind: str) -> None:
    user_id = (body.get("user") or {}).get("id", "")
    act = (body.get("actions") or [{}])[0]
    key = str(act.get("value") or act.get("block_id") or "")

    async def tell(reply):
        await bot.respond(respond, reply)

    async with guarded(bot, user_id, f"action:{kind}", key, tell=tell,
                       refused=(actions.ActionError,),
                       logged_as=f"action {kind} from {{user}}") as turn:
        caller = turn.caller = await bot.button_caller(user_id, respond, turn.action, key)
        if caller is None:
            return
        reply, outcome = await bot.quick_work(_record, bot.context(), caller, kind, act, key)
        await tell(reply)
        await bot.audit(user_id, caller, turn.action, key, outcome)
        await redraw(bot, caller, client, message_at(body))
