"""The "Reason" button on an item: opens the reason form (views/record_reason.py) for an
item the person may act on, carrying where to redraw the notice once it is saved."""

from __future__ import annotations

from bot.channels.slack.blocks import render_blocks
from bot.channels.slack.guard import guarded
from bot.channels.slack.listeners.views.record_reason import metadata_for
from bot.channels.slack.redraw import message_at
from bot.commands import actions

ACTION_ID = "record_reason"


def register(app, bot) -> None:
    @app.action(ACTION_ID)
    async def on_reason_button(ack, body, respond, client):
        await ack()
        await pressed(bot, body, respond, client)


async def pressed(bot, body: dict, respond, client) -> None:
    user_id = (body.get("user") or {}).get("id", "")
    act = (body.get("actions") or [{}])[0]
    key = str(act.get("value") or act.get("block_id") or "")

    async def tell(reply):
        await bot.respond(respond, reply)

    async with guarded(bot, user_id, f"action:{ACTION_ID}", key, tell=tell,
                       refused=(actions.ActionError,),
                       logged_as=f"action {ACTION_ID} from {{user}}") as turn:
        caller = turn.caller = await bot.button_caller(user_id, respond, turn.action, key)
        if caller is None:
            return
        item = await bot.quick_work(actions.find_item, bot.context(), key)
        actions.check_may_act(caller, item)
        agencies = await bot.quick_work(actions.form_agencies, bot.context(), item)
        view = render_blocks("slack/reason_modal.json.j2",
                             item_key=metadata_for(key, message_at(body)),
                             item_label=item.label, reasons=actions.REASON_LABELS,
                             agencies=agencies)
        await client.views_open(trigger_id=body.get("trigger_id"), view=view)
        await bot.audit(user_id, caller, turn.action, key, "ok")
