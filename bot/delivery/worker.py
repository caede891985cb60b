"""The delivery worker: claim due outbox groups, send one message each, mark the result.

Transports raise DeliveryError saying whether a failure is permanent (bad address, revoked
token, unknown channel: stop and report) or transient (timeout, SMTP 4xx, Slack 429 with
Retry-After, 5xx: retry with backoff).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics
from bot.delivery.attachments import attachments_for
from bot.delivery.email import DeliveryError, build_email, send_batch
from bot.delivery.render import Rendered, render_group
from bot.settings import Settings
from mappa_core import outbox

log = logging.getLogger("mappa.delivery")
STALE_CLAIM = dt.timedelta(minutes=10)
# A replica that finds every due row locked by another's claim waits this long, this many
# times, before deciding there is nothing for it (a claim commits in milliseconds).
BUSY_PAUSE, BUSY_WAITS = 0.05, 40
PERMANENT_SLACK_ERRORS = {
    "channel_not_found", "user_not_found", "invalid_auth", "not_authed", "account_inactive",
    "token_revoked", "token_expired", "is_archived", "user_disabled", "cannot_dm_bot",
    "missing_scope", "not_in_channel", "invalid_blocks", "msg_too_long",
}


class SlackTransport:
    def __init__(self, client: AsyncWebClient):
        self.client = client

    async def send(self, address: str, message: Rendered) -> None:
        try:
            await self.client.chat_postMessage(channel=address, text=message.text,
                                               blocks=message.blocks)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = (exc.response.data or {}).get("error", "") if isinstance(exc.response.data, dict) else ""
            if status == 429:
                retry = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                err = DeliveryError("Slack rate limit (429)", permanent=False)
                err.retry_after = float(retry) if retry and str(retry).isdigit() else None
                raise err from None
            if error in PERMANENT_SLACK_ERRORS:
                raise DeliveryError(f"Slack: {error}", permanent=True) from None
            raise DeliveryError(f"Slack: HTTP {status} {error}".strip(), permanent=False) from None
        except DeliveryError:
            raise
        except Exception as exc:  # connection refused, timeouts, bad gateways
            raise DeliveryError(f"Slack: {type(exc).__name__}: {exc}", permanent=False) from None


class ConsoleTransport:
    """Prints Slack messages as a person would read them (the demo's stand-in for Slack)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.sent: list[tuple[str, Rendered]] = []

    async def send(self, address: str, message: Rendered) -> None:
        self.sent.append((address, message))
        lines = [f"--- Slack DM to {address} ---"]
        for block in message.blocks or []:
            if block["type"] in ("header", "section"):
                lines.append(block["text"]["text"])
            elif block["type"] == "actions":
                lines.append("    [" + "] [".join(
                    e.get("text", {}).get("text", e.get("placeholder", {}).get("text", ""))
                    for e in block["elements"]) + "]")
            elif block["type"] == "context":
                lines.append("  " + " ".join(e.get("text", "") for e in block["elements"]))
        print("\n".join(lines), file=self.stream)


@dataclass
class DeliveryReport:
    sent: dict[str, int] = field(default_factory=dict)     # channel -> messages
    rows_sent: int = 0
    retrying: int = 0
    failed: int = 0
    recipients: dict[str, int] = field(default_factory=dict)

    def add(self, channel: str, recipient: str, rows: int) -> None:
        self.sent[channel] = self.sent.get(channel, 0) + 1
        self.rows_sent += rows
        self.recipients[recipient] = self.recipients.get(recipient, 0) + 1


async def deliver_pending(
    engine, settings: Settings, slack, now: dt.datetime, max_rounds: int = 50,
) -> DeliveryReport:
    """Send everything due in the outbox now; returns what happened."""
    report = DeliveryReport()
    outbox.release_stale(engine, now, STALE_CLAIM)
    rounds = waits = 0
    while rounds < max_rounds:
        claimed = outbox.claim(engine, now)
        if not claimed.groups:
            if claimed.busy and waits < BUSY_WAITS:  # another replica is mid-claim
                waits += 1
                await asyncio.sleep(BUSY_PAUSE)
                continue
            break
        rounds += 1
        emails = []
        for rows in claimed.groups.values():
            first = rows[0]
            try:
                message = render_group(rows)
            except Exception as exc:
                log.exception("could not render %s", first["group_key"])
                outbox.mark_failed(engine, rows, now, f"render: {exc}", permanent=True)
                report.failed += len(rows)
                metrics.DELIVERIES.labels(first["channel"], "failed").inc()
                continue
            if first["channel"] == "slack":
                try:
                    await slack.send(first["address"], message)
                except DeliveryError as exc:
                    outbox.mark_failed(engine, rows, now, str(exc), exc.permanent,
                                       getattr(exc, "retry_after", None))
                    if exc.permanent:
                        report.failed += len(rows)
                    else:
                        report.retrying += len(rows)
                    metrics.DELIVERIES.labels("slack", "failed" if exc.permanent else "retry").inc()
                    continue
                await asyncio.to_thread(outbox.mark_sent, engine, [r["id"] for r in rows], now)
                report.add("slack", first["recipient_id"], len(rows))
                metrics.DELIVERIES.labels("slack", "sent").inc()
            elif first["channel"] == "email":
                # The group key travels in a header so that a message can be traced to
                # its outbox rows (and duplicates counted).
                files = attachments_for(engine, rows, now.date())
                emails.append((rows, build_email(settings, first["address"], message.subject,
                                                 message.text, message.html,
                                                 {"X-Mappa-Group": first["group_key"]}, files)))
            else:
                outbox.mark_failed(engine, rows, now, "no Slack user id or email address",
                                   permanent=True)
                report.failed += len(rows)
                metrics.DELIVERIES.labels(first["channel"], "failed").inc()
        if emails:
            async def on_result(i: int, result, batch=emails) -> None:
                rows = batch[i][0]
                if result.error is None:
                    await asyncio.to_thread(outbox.mark_sent, engine, [r["id"] for r in rows], now)
                    report.add("email", rows[0]["recipient_id"], len(rows))
                    metrics.DELIVERIES.labels("email", "sent").inc()
                    return
                await asyncio.to_thread(outbox.mark_failed, engine, rows, now,
                                        str(result.error), result.error.permanent)
                if result.error.permanent:
                    report.failed += len(rows)
                else:
                    report.retrying += len(rows)
                metrics.DELIVERIES.labels("email", "failed" if result.error.permanent else "retry").inc()

            await send_batch(settings, [m for _, m in emails], on_result)
    return report
