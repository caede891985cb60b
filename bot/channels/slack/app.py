"""The Slack app: Bolt's AsyncApp with every listener (listeners/) registered on it, and
the state they share (runtime.MappaSlack) kept on it as `app.mappa`.

The path of one button press: Slack POSTs to /slack/events (http.py: size, signature and
shape checked), Bolt acknowledges and calls the listener (listeners/actions/...), which
asks bot/commands/ what to do for whom, and that reaches the database only through
mappa_core/storage. See docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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
    listeners.register(app, bot)
    return app
