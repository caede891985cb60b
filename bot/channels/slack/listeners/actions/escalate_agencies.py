""""E-mail the chosen agencies" under the answer to `/mappa escalate`: the agencies the
person chose in its menu (the payload's state, never the issue's words), each e-mailed the
whole issue once (bot/commands/escalate.send_to_agencies); the menu itself only
acknowledges (its choice is read when the button is pressed)."""

from __future__ import annotations

import datetime as dt

from bot.channels.slack.answers import ESCALATE_AGENCIES, ESCALATE_CHOOSE
from bot.channels.slack.guard import guarded
from bot.channels.slack.listeners.commands.mappa import deliverer
from bot.commands import escalate
from bot.commands.answers import Said

ACTION_IDS = (ESCALATE_AGENCIES, ESCALATE_CHOOSE)


def register(app, bot) -> None:
    @app.action(ESCALATE_CHOOSE)
    async def on_choose(ack):
        await ack()

    @app.action(ESCALATE_AGENCIES)
    async def on_send(ack, body, respond, client):
        await ack()
        await pressed(bot, body, respond, client)


def chosen_agencies(body: dict) -> list[str]:
    """The agencies ticked in the menu beside the button (the payload's state)."""
    values = (body.get("state") or {}).get("values") or {}
    chosen = []
    for block in values.values():
        menu = (block or {}).get(ESCALATE_CHOOSE) or {}
        chosen += [str(o.get("value") or "") for o in menu.get("selected_options") or []]
    return chosen


async def pressed(bot, body: dict, respond, client) -> None:
    user_id = (body.get("user") or {}).get("id", "")
    act = (body.get("actions") or [{}])[0]
    value = str(act.get("value") or "")

    async def tell(reply):
        await bot.respond(respond, reply)

    async with guarded(bot, user_id, f"action:{ESCALATE_AGENCIES}", value, tell=tell) as turn:
        caller = turn.caller = await bot.button_caller(user_id, respond, turn.action, value)
        if caller is None:
            return
        chosen = chosen_agencies(body)
        detail = f"issue {value[:20]}: {', '.join(chosen)[:150]}"
        if not value.isdigit() or len(value) > 18:
            await tell(Said("That button no longer matches an urgent issue."))
            await bot.audit(user_id, caller, turn.action, detail, "refused")
            return
        said = await escalate.send_to_agencies(
            bot.engine, bot.settings, bot.context(), caller, int(value), chosen,
            dt.datetime.now(bot.settings.tz), deliverer(bot, client))
        await tell(said)
        await bot.audit(user_id, caller, turn.action, detail,
                        "ok" if said.words.startswith(f"Issue #{value} e-mailed") else "refused")
