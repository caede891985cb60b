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
from sqlalchemy import select
from sqlmodel import SQLModel

from bot import metrics
from bot.delivery.attachments import attachments_for
from bot.delivery.email import DeliveryError, build_email, send_batch
from bot.delivery.render import Rendered, render_group
from bot.settings import Settings
from mappa_core import outbox
from mappa_core.addresses import email_problem, slack_user_problem

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


def _safe(text) -> str:
    """A value fit for one log line: no line breaks or other control characters."""
    return str(text).encode("unicode_escape").decode("ascii")[:300]


class _Run:
    """One delivery run: marks each group's outcome, counts it and logs each failure."""

    def __init__(self, engine, now: dt.datetime, report: DeliveryReport):
        self.engine, self.now, self.report = engine, now, report

    async def failed(self, rows: list[dict], reason: str, permanent: bool,
                     retry_after: float | None = None) -> None:
        first = rows[0]
        attempts = first["attempts"] + 1
        dead = permanent or attempts >= outbox.MAX_ATTEMPTS
        await asyncio.to_thread(outbox.mark_failed, self.engine, rows, self.now, reason,
                                permanent, retry_after)
        if dead:
            self.report.failed += len(rows)
        else:
            self.report.retrying += len(rows)
        metrics.DELIVERIES.labels(first["channel"], "failed" if dead else "retry").inc()
        # One line per failed message: outbox ids, rule, channel and the staff recipient,
        # never the payload (case references) nor any secret.
        log.warning(
            "delivery failed (%s): outbox %s rule=%s channel=%s recipient=%s attempt=%d: %s",
            "given up" if dead else "will retry",
            ",".join(str(r["id"]) for r in rows), first["rule"], first["channel"],
            _safe(first["recipient_id"]), attempts, _safe(reason),
        )

    async def sent(self, rows: list[dict]) -> None:
        await asyncio.to_thread(outbox.mark_sent, self.engine, [r["id"] for r in rows], self.now)
        self.report.add(rows[0]["channel"], rows[0]["recipient_id"], len(rows))
        metrics.DELIVERIES.labels(rows[0]["channel"], "sent").inc()


def _reply_to(engine) -> dict[str | None, str]:
    """Each area's co-ordinators' addresses (None: the national ones), for Reply-To."""
    person = SQLModel.metadata.tables["person"]
    with engine.connect() as conn:
        people = conn.execute(select(person.c.area, person.c.email, person.c.roles)).all()
    found: dict[str | None, list[str]] = {}
    for area, email, roles in people:
        if "coordinator" in (roles or "").split(";") and email and email_problem(email) is None:
            found.setdefault(area or None, []).append(email)
    return {area: ", ".join(sorted(set(emails))) for area, emails in found.items()}


async def deliver_pending(
    engine, settings: Settings, slack, now: dt.datetime, max_rounds: int = 50,
) -> DeliveryReport:
    """Send everything due in the outbox now; returns what happened.

    Each group (one message) succeeds or fails on its own: whatever goes wrong rendering,
    addressing or sending it marks that group failed, with the reason, and the run goes on.
    """
    report = DeliveryReport()
    run = _Run(engine, now, report)
    released, given_up = outbox.release_stale(engine, now, STALE_CLAIM)
    if released:
        log.warning("released %d outbox row(s) left sending by a stopped worker", released)
    for row_id in given_up:
        log.warning("delivery failed (given up): outbox %d: the delivery worker stopped "
                    "while sending it, %d times", row_id, outbox.MAX_ATTEMPTS)
    report.failed += len(given_up)
    reply_to = None
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
            channel, address = first["channel"], first["address"] or ""
            if channel == "slack":
                problem = slack_user_problem(address)
            elif channel == "email":
                problem = email_problem(address)
            else:
                problem = "no Slack user id or email address"
            if problem:
                # The value itself stays out of the reason: it is shown and logged.
                what = {"slack": "the Slack user id ", "email": "the email address "}
                await run.failed(rows, what.get(channel, "") + problem, permanent=True)
                continue
            try:
                message = render_group(rows)
                if channel == "email":
                    if reply_to is None:
                        reply_to = await asyncio.to_thread(_reply_to, engine)
                    files = await asyncio.to_thread(attachments_for, engine, rows, now.date())
                    # The group key travels in a header so that a message can be traced to
                    # its outbox rows (and duplicates counted).
                    mail = build_email(
                        settings, address, message.subject, message.text, message.html,
                        {"X-Mappa-Group": first["group_key"]}, files,
                        reply_to=reply_to.get(first.get("area")) or reply_to.get(None),
                    )
            except Exception as exc:  # the same rows would fail the same way again
                log.debug("could not prepare outbox %s", first["id"], exc_info=True)
                await run.failed(rows, f"could not prepare the message ({type(exc).__name__}: "
                                 f"{_safe(exc)[:200]})", permanent=True)
                continue
            if channel == "email":
                emails.append((rows, mail))
                continue
            try:
                await slack.send(address, message)
            except DeliveryError as exc:
                await run.failed(rows, str(exc), exc.permanent, getattr(exc, "retry_after", None))
                continue
            except Exception as exc:  # a transport bug: retried, then given up
                await run.failed(rows, f"Slack: {type(exc).__name__}: {_safe(exc)[:200]}",
                                 permanent=False)
                continue
            await run.sent(rows)
        if emails:
            async def on_result(i: int, result, batch=emails) -> None:
                rows = batch[i][0]
                if result.error is None:
                    await run.sent(rows)
                else:
                    await run.failed(rows, str(result.error), result.error.permanent)

            await send_batch(settings, [m for _, m in emails], on_result)
    return report
