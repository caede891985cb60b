"""The Slack app: Bolt's AsyncApp with every listener (listeners/) registered on it, and
the state they share (runtime.MappaSlack) kept on it as `app.mappa`.

The path of one button press: Slack POSTs to /slack/events (http.py: size, signature and
shape checked), the app claims it by its idempotency key (a replay of it is answered
"already done" here: `refuse_replays`), Bolt acknowledges and calls the listener
(listeners/actions/...), which asks bot/commands/ what to do for whom, and that reaches the
database only through mappa_core/storage. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped

from bot.channels.slack import interactive_client, listeners
from bot.channels.slack.runtime import MappaSlack
from bot.settings import Settings

log = logging.getLogger("mappa.slack")


class _NotTokenUnused(logging.Filter):
    """Drops Bolt's "As you gave `client` as well, `token` will be unused.": AsyncApp reads
    SLACK_BOT_TOKEN from the environment itself when no token is passed, and warns on every
    start that the client given (holding that very token, and SLACK_API_URL) wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_LOG = logging.getLogger("slack_bolt.AsyncApp")  # AsyncApp's own (get_bolt_logger)
if not any(isinstance(f, _NotTokenUnused) for f in _BOLT_LOG.filters):
    _BOLT_LOG.addFilter(_NotTokenUnused())


async def _unusable(error, response):
    """One line, not Bolt's 500 with a traceback: 503 when Slack's Web API cannot be
    reached (Bolt checks the token first), 400 for a signed request Bolt cannot use (a
    payload missing what its kind needs)."""
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


ALREADY_DONE = ("Already done: this request reached mappa-bot before and was acted on "
                "then. Nothing was done again.")


def _at(value, *path):
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def replay_key(body: dict, raw_body: str) -> tuple[str, str, str] | None:
    """(idempotency key, user id, audit action) of a request that acts (a slash command,
    a button press, a form submission); None for the rest (events, which change nothing).

    The key is what Slack sends once per person's act: a command's trigger_id; a press's
    action_ts, with who pressed what (action, block, value or picked date); a form's view
    id and hash, with the submission's trigger_id. Where that field is missing, the hash
    of the whole body stands in: a replay is the same bytes, being signed."""
    if body.get("command"):
        user, action = str(body.get("user_id") or ""), "command"
        once = body.get("trigger_id")
        parts = ["command", user, body.get("command"), once]
    elif body.get("type") == "block_actions":
        acts = body.get("actions")
        act = acts[0] if isinstance(acts, list) and acts and isinstance(acts[0], dict) else {}
        user, action = str(_at(body, "user", "id") or ""), f"action:{act.get('action_id')}"
        once = act.get("action_ts")
        parts = ["action", user, act.get("action_id"), act.get("block_id"), act.get("value"),
                 act.get("selected_date"), once]
    elif body.get("type") == "view_submission":
        user = str(_at(body, "user", "id") or "")
        # Audited as the form's listener audits it: `view:record_reason` for the form
        # `record_reason_modal`.
        action = f"view:{str(_at(body, 'view', 'callback_id')).removesuffix('_modal')}"
        once = body.get("trigger_id")
        parts = ["view", user, _at(body, "view", "id"), _at(body, "view", "hash"),
                 body.get("trigger_id")]
    else:
        return None
    if not once:
        parts = ["body", hashlib.sha256(raw_body.encode("utf-8", "surrogatepass")).hexdigest()]
    return json.dumps(parts, default=str), user, action


def _refuse_replays(bot: MappaSlack):
    """The app's middleware (before any listener, in HTTP and Socket Mode alike): a
    request claimed before, within Slack's 5-minute signature window or a Socket Mode
    redelivery, is answered "already done" and audited `replayed`, and its listener never
    runs; so a command, a press or a form replayed is applied once."""

    async def refuse_replays(body, request, respond, next):
        found = replay_key(body, request.raw_body or "") if isinstance(body, dict) else None
        if found is None or await bot.first_time(found[0]):
            return await next()
        _, user, action = found
        log.warning("replayed request not applied again: %s from %s", action[:64], user[:32])
        await bot.audit(user, None, action, "", "replayed")
        if action == "command":  # answered in the acknowledgement itself
            return BoltResponse(status=200, body={"response_type": "ephemeral",
                                                  "text": ALREADY_DONE})
        if action.startswith("view:"):  # shown in the form, if it is still open
            blocks = list(_at(body, "view", "state", "values") or {})
            return BoltResponse(status=200, body={
                "response_action": "errors", "errors": {blocks[0]: ALREADY_DONE[:150]}}
                if blocks else "")
        if respond is not None:
            try:
                await respond(text=ALREADY_DONE, response_type="ephemeral",
                              replace_original=False)
            except Exception as exc:
                log.warning("could not tell %s the request was a replay (%s)", user[:32],
                            type(exc).__name__)
        return BoltResponse(status=200, body="")

    return refuse_replays


def build_app(settings: Settings, engine, today: Callable[[], dt.date] | None = None,
              deliver: Callable[..., Awaitable] | None = None) -> AsyncApp:
    """The app, its listeners registered; `deliver(transport, now, groups=...)` sends
    outbox groups at once (bot.delivery.worker.deliver_pending: `mappa serve` gives it)."""
    client = interactive_client(settings)  # retries a 429 after Retry-After
    app = AsyncApp(
        signing_secret=settings.slack_signing_secret or None,
        client=client,
        process_before_response=False,
        request_verification_enabled=bool(settings.slack_signing_secret),
    )
    bot = MappaSlack(settings, engine, today, deliver)
    app.mappa = bot  # type: ignore[attr-defined]  (for the server's health check and tests)
    app.error(_unusable)
    app.middleware(_refuse_replays(bot))
    listeners.register(app, bot)
    return app
