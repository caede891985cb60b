""""Previous" / "Next" on a notice the bot posted (a digest, an escalation): that page,
drawn from the message's outbox rows, in place of the message (chat.update). Only the
message's reader may page it, and only on the message it was posted as."""

from __future__ import annotations

import re

from bot.channels.slack import NOTICE_NAV
from bot.channels.slack.guard import guarded
from bot.channels.slack.paging import page_value
from bot.channels.slack.redraw import GONE, NoticeError, message_at, notice_page

ACTION = "action:page_notice"


def register(app, bot) -> None:
    @app.action(re.compile(rf"^{NOTICE_NAV}_(prev|next)$"))
    async def on_page_notice(ack, body, respond, client):
        await ack()
        await paged(bot, body, respond, client)


async def paged(bot, body: dict, respond, client) -> None:
    user_id = (body.get("user") or {}).get("id", "")
    act = (body.get("actions") or [{}])[0]
    value = page_value(str(act.get("value") or ""))
    first_id = value.get("o")
    detail = f"notice {first_id} page {value['p']}"
    where = message_at(body)

    async def tell(reply):
        await bot.respond(respond, reply)

    async with guarded(bot, user_id, ACTION, detail, tell=tell, refused=(NoticeError,),
                       logged_as="action page_notice from {user}") as turn:
        caller = turn.caller = await bot.button_caller(user_id, respond, ACTION, detail)
        if caller is None:
            return
        if not isinstance(first_id, int) or where is None:
            raise NoticeError(GONE)
        message = await bot.quick_work(notice_page, bot.context(), caller, first_id,
                                       value["p"], where[:2])
        await client.chat_update(channel=where[0], ts=where[1], text=message.text,
                                 blocks=message.blocks)
        await bot.audit(user_id, caller, ACTION, detail, "ok")
