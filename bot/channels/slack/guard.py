"""The one wrapper every Slack listener does its work in: an audit row for how it ended,
and an apology with an error id when it failed.

    async with guarded(bot, user_id, "action:snooze_1wd", key, tell=...) as turn:
        turn.caller = await bot.button_caller(...)
        ...                       # the listener writes its own "ok" row when it answers

A refusal the listener expects (an ActionError, a NoticeError: its text is safe to show)
is told to the person and audited "refused". Any other exception is logged with its
traceback under a new error id, the person is told the id (to give their MAPPA
Co-ordinator), and the row says `error:<id>`. The person's text never reaches the log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.commands import answers, handlers
from bot.commands.access import Caller

LOG = logging.getLogger("mappa.slack")


def error_reply(error_id: str) -> answers.Answer:
    return handlers.message(
        f"Sorry, something went wrong. Please tell your MAPPA Co-ordinator the error id `{error_id}`."
    )


@dataclass
class Turn:
    """One request as its audit row will record it; the listener fills in who asked
    (`caller`) and may rename the action once it knows it (`command:status`)."""

    user_id: str
    action: str
    detail: str
    caller: Caller | None = None


@asynccontextmanager
async def guarded(bot, user_id: str, action: str, detail: str, *,
                  tell: Callable[[answers.Answer], Awaitable[None]],
                  apologise: Callable[[str], Awaitable[None]] | None = None,
                  refused: tuple[type[Exception], ...] = (),
                  logged_as: str = "{action} from {user}", log: logging.Logger = LOG):
    """Run the body; on a `refused` exception or any other, tell the person and audit it.

    `tell(reply)` answers the person; `apologise(error_id)` replaces the default apology
    (`tell` of `error_reply`) where the answer is not a message (the App Home's view).
    `logged_as` names the request in the log line ({action}, {user})."""
    turn = Turn(user_id, action, detail)
    try:
        yield turn
    except refused as exc:
        await tell(handlers.message(str(exc)))
        await bot.audit(user_id, turn.caller, turn.action, turn.detail, "refused")
    except Exception:
        error_id = uuid.uuid4().hex[:10]
        log.exception("error %s in %s", error_id,
                      logged_as.format(action=turn.action, user=user_id),
                      extra={"error_id": error_id})
        try:
            await (apologise(error_id) if apologise else tell(error_reply(error_id)))
        finally:
            await bot.audit(user_id, turn.caller, turn.action, turn.detail, f"error:{error_id}")
