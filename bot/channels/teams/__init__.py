"""Microsoft Teams: one channel per area, reached by a Teams Workflows webhook
("Send webhook alerts to a channel"), set per area in MAPPA_TEAMS_WEBHOOKS.

A Teams channel is read by everyone in it, so it only ever receives the notices that carry
no case reference (mappa_core.rules.planner.CASE_FREE_RULES: the weekly summary, the
below-target alerts, the quarterly-review reminder); `render` refuses anything else.
Each is an Adaptive Card (schema 1.5, templates/teams/notice_<rule>.json.j2) in the
webhook's message envelope. The outbox row's address is the area's name, never the URL
(a secret: its signature lets anyone post to the channel).

Only a 2xx from the endpoint that received the card counts as sent. A redirect is not
followed (urllib would follow a 301, 302 or 303 as a GET without the card, and count the
target's 200), except a 307 or 308, followed with the same POST and body, at most
MAX_REDIRECTS times; any other 3xx is a transient failure, retried and, once given up,
reported in the co-ordinator's digest (its recipient names the area: `teams:<area>`).

Errors: 429 and 5xx are transient (Retry-After honoured), 408 too; 400, 404 and any other
4xx are permanent (a card Teams refuses, a deleted workflow).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from bot.channels import rendering
from bot.channels.base import DeliveryError, Rendered, Transport
from bot.templates import render_text
from mappa_core.rules.planner import CASE_FREE_RULES
from mappa_core.rules.vocabulary import Channel

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_PAYLOAD_BYTES = 28 * 1024  # Teams refuses larger messages
TIMEOUT = 10.0
FIGURE_FIELDS = ("indicator", "title", "target", "percent", "numerator", "denominator", "margin",
                 "pending", "met", "previous_percent")


def card(rows: list[dict]) -> dict:
    """The Adaptive Card for one group of outbox rows (one area, one rule)."""
    rule = rendering.rule_of(rows)
    if rule not in CASE_FREE_RULES:
        raise ValueError(f"a {rule!r} notice may carry case references: never sent to Teams")
    # Indicator figures only: whatever else a payload may come to hold stays out.
    items = [{k: r["payload"].get(k) for k in FIGURE_FIELDS}
             for r in rendering.ordered(rows) if "indicator" in r["payload"]]
    ctx = rendering.context(rows)
    while True:
        content = json.loads(render_text(f"teams/notice_{rule}.json.j2", items=items, **ctx))
        if len(json.dumps(envelope(content)).encode()) <= MAX_PAYLOAD_BYTES or not items:
            return content
        items = items[: len(items) * 3 // 4]  # too big for Teams: fewer figures


def envelope(content: dict) -> dict:
    return {"type": "message", "attachments": [
        {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": content}]}


MAX_REDIRECTS = 3


class _SamePostOnly(urllib.request.HTTPRedirectHandler):
    """Follow a 307 or 308 with the same method, body and headers; refuse every other
    redirect (urllib then raises HTTPError with its status)."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if code not in (307, 308):
            return None
        return urllib.request.Request(newurl, data=req.data, method=req.get_method(),
                                      headers=dict(req.header_items()))


_OPENER = urllib.request.build_opener(_SamePostOnly)


def _retry_after(headers) -> float | None:
    value = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class TeamsTransport(Transport):
    name = Channel.TEAMS
    address_label = "the Teams channel of the area "

    def __init__(self, webhooks: dict[str, str] | None = None, timeout: float = TIMEOUT):
        self.webhooks = dict(webhooks or {})
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings) -> TeamsTransport:
        return cls(settings.teams_webhook_urls())

    @classmethod
    def area_addresses(cls, settings) -> dict[str, str]:
        return {area: area for area in settings.teams_webhook_urls()}

    def not_configured(self) -> str | None:
        return None if self.webhooks else "MAPPA_TEAMS_WEBHOOKS is not set"

    def address_problem(self, address: str) -> str | None:
        if address not in self.webhooks:
            return "has no webhook URL in MAPPA_TEAMS_WEBHOOKS"
        return None

    @classmethod
    def render(cls, rows: list[dict]) -> Rendered:
        content = card(rows)
        return Rendered(content["fallbackText"], [envelope(content)])

    async def send(self, address: str, message: Rendered) -> None:
        body = json.dumps(message.blocks[0]).encode()
        await asyncio.to_thread(self._post, self.webhooks[address], body)

    def _post(self, url: str, body: bytes) -> None:
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "mappa-bot"})
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            retry = _retry_after(exc.headers)
            exc.close()
            # Never the URL in a reason: it is a secret.
            if 300 <= status < 400:
                raise DeliveryError(f"Teams: HTTP {status} (a redirect, not followed: only a "
                                    "2xx from the webhook itself counts as sent)",
                                    permanent=False) from None
            if status == 429 or status >= 500 or status == 408:
                raise DeliveryError(f"Teams: HTTP {status}", permanent=False,
                                    retry_after=retry) from None
            raise DeliveryError(f"Teams: HTTP {status} (the webhook refused the card)",
                                permanent=True) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(f"Teams: {type(exc).__name__}: {reason}", permanent=False) from None
