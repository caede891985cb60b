""""Previous" / "Next" under a `/mappa due` or `/mappa overdue` reply: that page of the
list, computed again for whoever pressed (their own scope and access), in place of the
reply, within the same limits as the command itself."""

from __future__ import annotations

import re
import time

from bot.channels.slack.answers import DUE_NAV
from bot.channels.slack.guard import guarded
from bot.channels.slack.paging import page_value
from bot.commands.parser import MAX_AREA, Command
from mappa_core.rules.kinds import ITEM_KINDS
from mappa_core.rules.records import DUE_SOON_DAYS

ACTION = "action:page_due"


def register(app, bot) -> None:
    @app.action(re.compile(rf"^{DUE_NAV}_(prev|next)$"))
    async def on_page_due(ack, body, respond):
        await ack()
        await paged(bot, body, respond)


def command_of(value: dict) -> Command:
    """The command a page button stands for; the filters as the reply set them, forged
    ones checked as typed ones are."""
    name = value.get("c") if value.get("c") in ("due", "overdue") else "due"
    days = value.get("d")
    days = days if isinstance(days, int) and not isinstance(days, bool) else DUE_SOON_DAYS
    kind = value.get("k") if isinstance(value.get("k"), str) and value["k"] in ITEM_KINDS \
        else None
    area = value.get("a") if isinstance(value.get("a"), str) else None
    return Command(name, days=0 if name == "overdue" else min(max(days, 0), 365),
                   page=value["p"], kind=kind, area=area[:MAX_AREA] if area else None)


async def paged(bot, body: dict, respond) -> None:
    user_id = (body.get("user") or {}).get("id", "")
    act = (body.get("actions") or [{}])[0]
    cmd = command_of(page_value(str(act.get("value") or "")))
    detail = " ".join([cmd.name, str(cmd.days), *filter(None, (cmd.kind, cmd.area))]) + \
        f" page {cmd.page}"
    started = time.monotonic()

    async def tell(reply):
        await bot.respond(respond, reply)

    async with guarded(bot, user_id, ACTION, detail, tell=tell,
                       logged_as="action page_due from {user}") as turn:
        caller = turn.caller = await bot.button_caller(user_id, respond, ACTION, detail)
        if caller is None:
            return
        # The same limits as `/mappa due` itself: a page is the same computation.
        reply, outcome = await bot.limited(user_id, caller, cmd, started)
        if outcome != "ok":
            await tell(reply)
            await bot.audit(user_id, caller, ACTION, detail, outcome)
            return
        await respond(text=reply.text, blocks=reply.blocks, response_type="ephemeral",
                      replace_original=True)
        await bot.audit(user_id, caller, ACTION, detail, "ok")
