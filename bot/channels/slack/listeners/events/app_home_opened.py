"""Slack's `app_home_opened`: publish the person's App Home (bot/channels/slack/home.py),
computed in a worker process when there are some, after Bolt has acknowledged."""

from __future__ import annotations

import logging
import time

from bot import metrics
from bot.channels.slack import home
from bot.channels.slack.guard import guarded

log = logging.getLogger("mappa.home")


def register(app, bot) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(ack, event, client):
        await ack()
        await opened(bot, event, client)


async def opened(bot, event: dict, client) -> None:
    if event.get("tab", "home") != "home":  # the Messages tab fires the event too
        return
    user_id = event.get("user", "")
    started = time.monotonic()

    async def apologise(error_id: str) -> None:
        try:
            await client.views_publish(user_id=user_id, view=home.error_view(error_id))
        except Exception:  # Slack unreachable: the log holds both
            log.warning("could not publish the error view to %s", user_id)

    async with guarded(bot, user_id, "home", "app_home_opened", tell=None,
                       apologise=apologise, logged_as="the App Home of {user}",
                       log=log) as turn:
        caller = turn.caller = await bot.caller(user_id)
        if caller is None:
            view, outcome = home.view_for(bot.context(), None), "denied:unknown-user"
        else:
            view, outcome = await bot.in_worker(home.view_for, caller), "ok"
        await client.views_publish(user_id=user_id, view=view)
        # Beside the commands' times on /metrics, as the command `home`.
        metrics.COMMAND_SECONDS.labels("home").observe(time.monotonic() - started)
        await bot.audit(user_id, caller, "home", "app_home_opened", outcome)
