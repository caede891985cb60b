"""The reason form (`record_reason_modal`, opened by actions/reason_button.py): validated
before it is acknowledged, so that a refusal shows in the form itself; once saved, the
person is told in a direct message and the notice the button was on is redrawn."""

from __future__ import annotations

import json
import logging

from bot.channels.slack.answers import slack_reply
from bot.channels.slack.redraw import Where, redraw
from bot.commands import actions

log = logging.getLogger("mappa.slack")
ACTION = "view:record_reason"


def register(app, bot) -> None:
    @app.view("record_reason_modal")
    async def on_reason(ack, body, view, client):
        # Validate before acknowledging so that errors show in the modal itself.
        errors = await submitted(bot, body, view, client)
        if errors:
            await ack(**errors)
        else:
            await ack()


def metadata_for(key: str, where: Where | None) -> str:
    """The form's private_metadata: the item key, with where to redraw when the button was
    on a notice of ours (the submission carries no message)."""
    return key if where is None else json.dumps(
        {"k": key, "c": where[0], "ts": where[1], "o": where[2], "p": where[3]})


def read_metadata(metadata: str) -> tuple[str, Where | None]:
    """The item key and where to redraw, from `metadata_for`'s text (the key alone when
    the button was not on a notice of ours)."""
    if not metadata.startswith("{"):
        return metadata, None
    try:
        data = json.loads(metadata)
        where = (str(data["c"]), str(data["ts"]), int(data["o"]), max(1, int(data["p"])))
        return str(data["k"]), where
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return "", None


async def submitted(bot, body: dict, view: dict, client) -> dict | None:
    """Validate and save the reason; Bolt's ack payload when it is refused."""
    user_id = (body.get("user") or {}).get("id", "")
    key, where = read_metadata(view.get("private_metadata", ""))
    values = (view.get("state") or {}).get("values") or {}
    code = ((values.get("reason") or {}).get("code") or {}).get("selected_option") or {}
    text = ((values.get("note") or {}).get("text") or {}).get("value") or ""
    agency = (((values.get("agency") or {}).get("agency") or {}).get("selected_option")
              or {}).get("value")
    caller = await bot.caller(user_id)
    if caller is None:
        await bot.audit(user_id, None, ACTION, key, "denied:unknown-user")
        return {"response_action": "errors", "errors": {"reason": "You are not authorised."}}
    try:
        said = await bot.quick_work(actions.record_reason, bot.context(), caller, key,
                                    code.get("value", ""), text, agency)
    except actions.ActionError as exc:
        await bot.audit(user_id, caller, ACTION, key, "refused")
        return {"response_action": "errors", "errors": {exc.field: str(exc)[:150]}}
    await bot.audit(user_id, caller, ACTION, key, "ok")
    reply = slack_reply(said)
    try:
        await client.chat_postMessage(channel=user_id, text=reply.text, blocks=reply.blocks)
    except Exception as exc:
        log.warning("could not confirm the reason to %s: %s", user_id, exc)
    await redraw(bot, caller, client, where)
    return None
