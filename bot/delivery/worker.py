"""The delivery worker: claim due outbox groups, send one message each, mark the result.

It knows channels only through the registry (bot/channels): each group's transport renders
it, checks its address and sends it, raising DeliveryError that says whether a failure is
permanent (bad address, revoked token, unknown channel: stop and report) or transient
(timeout, SMTP 4xx, 429 with Retry-After, 5xx: retry with backoff).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

from bot import channels, metrics
from bot.channels import DeliveryError, SendContext, Transport
from bot.settings import Settings
from mappa_core.rules.vocabulary import Channel
from mappa_core.storage import outbox
from mappa_core.storage.outbox import backoff

log = logging.getLogger("mappa.delivery")
# A claim no worker has renewed for this long was left by a stopped worker: its rows are
# given back. A live run renews its claim every CLAIM_RENEW seconds, however long it sends.
STALE_CLAIM = dt.timedelta(minutes=10)
CLAIM_RENEW = 60.0
# A replica that finds every due row locked by another's claim waits this long, this many
# times, before deciding there is nothing for it (a claim commits in milliseconds).
BUSY_PAUSE, BUSY_WAITS = 0.05, 40


@dataclass
class DeliveryReport:
    sent: dict[str, int] = field(default_factory=dict)     # channel -> messages
    rows_sent: int = 0
    retrying: int = 0
    failed: int = 0
    recipients: dict[str, int] = field(default_factory=dict)
    # Channel -> (rows, messages, why): due, but not attempted, as this deployment has not
    # configured the channel (no SMTP_HOST): they wait in the outbox, uncounted.
    waiting: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    # Channel -> (rows, messages, why): not tried in this run because the channel paused
    # (a rate limit, a server dropping connections): they wait for the next run, uncharged.
    paused: dict[str, tuple[int, int, str]] = field(default_factory=dict)

    def summary(self) -> str:
        """What was sent, in words: "166 item(s) in 15 message(s) (12 by Slack, 3 by email)"."""
        by = ", ".join(f"{n} by {channels.label(c)}" for c, n in self.sent.items())
        return (f"{self.rows_sent} item(s) in {sum(self.sent.values())} message(s)"
                + (f" ({by})" if by else ""))

    def waiting_lines(self) -> list[str]:
        """One sentence for each channel whose messages wait for it to be configured, and
        for each that paused in this run."""
        return [f"{messages} {channels.label(c)} message(s) ({rows} item(s)) wait in the "
                f"outbox: {why}; they go out on the first delivery run after it is set"
                for c, (rows, messages, why) in self.waiting.items()] + [
                f"{messages} {channels.label(c)} message(s) ({rows} item(s)) were not tried "
                f"in this run and wait for the next, with no attempt counted: "
                f"{why.removeprefix('not tried: ')}"
                for c, (rows, messages, why) in self.paused.items()]

    @property
    def not_tried(self) -> int:
        """Rows left for the next run, uncharged, because their channel paused."""
        return sum(rows for rows, _, _ in self.paused.values())

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
        self.paused: dict[str, float] = {}  # channel -> seconds it pauses, from this run

    async def failed(self, rows: list[dict], reason: str, permanent: bool,
                     retry_after: float | None = None) -> None:
        first = rows[0]
        then = backoff.after_failure(first["attempts"], permanent, retry_after)
        attempts, dead = then.attempts, then.given_up
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
            extra={"outbox_ids": [r["id"] for r in rows], "channel": first["channel"]},
        )

    async def wait(self, rows: list[dict], error: DeliveryError) -> None:
        """Not tried: the rows go back to the outbox, due after `error.retry_after` (else
        the first backoff step), with no attempt counted; the channel pauses for the run."""
        channel = rows[0]["channel"]
        delay = error.retry_after if error.retry_after is not None else backoff.FIRST_DELAY
        await asyncio.to_thread(outbox.release, self.engine, [r["id"] for r in rows], self.now,
                                delay, str(error))
        n_rows, messages, _ = self.report.paused.get(channel, (0, 0, ""))
        self.report.paused[channel] = (n_rows + len(rows), messages + 1, str(error))
        if channel not in self.paused:  # one line per pause, not one per message
            log.warning("delivery paused: channel=%s for the rest of this run, the rest of "
                        "its messages wait uncharged: %s", channel,
                        _safe(str(error).removeprefix("not tried: ")), extra={"channel": channel})
        self.paused.setdefault(channel, delay)
        metrics.DELIVERIES.labels(channel, "not_tried").inc()

    async def sent(self, rows: list[dict], posted: tuple[str, str] | None = None) -> None:
        await asyncio.to_thread(outbox.mark_sent, self.engine, [r["id"] for r in rows], self.now,
                                posted)
        self.report.add(rows[0]["channel"], rows[0]["recipient_id"], len(rows))
        metrics.DELIVERIES.labels(rows[0]["channel"], "sent").inc()


async def deliver_pending(
    engine, settings: Settings, slack: Transport | None, now: dt.datetime, max_rounds: int = 50,
    groups: list[str] | None = None, transports: dict[str, Transport] | None = None,
    stale_after: dt.timedelta = STALE_CLAIM, renew_every: float = CLAIM_RENEW,
) -> DeliveryReport:
    """Send everything due in the outbox now (only `groups`, if given); returns what happened.

    `slack` is the transport for the Slack channel (the console in the demo; None: Slack
    is not reachable and its messages wait). Each group (one message) succeeds or fails on
    its own: whatever goes wrong rendering, addressing or sending it marks that group
    failed, with the reason, and the run goes on.
    """
    report = DeliveryReport()
    run = _Run(engine, now, report)
    if transports is None:
        transports = channels.build(settings, {Channel.SLACK: slack or _Unreachable()})
    ctx = SendContext(engine, settings, now)
    unconfigured = {name: why for name, t in transports.items() if (why := t.not_configured())}
    if unconfigured:
        found = await asyncio.to_thread(outbox.due_by_channel, engine, now, unconfigured, groups)
        report.waiting = {name: (rows, messages, unconfigured[name])
                          for name, (rows, messages) in found.items()}
    released, given_up = outbox.release_stale(engine, now, stale_after)
    if released:
        log.warning("released %d outbox row(s) left sending by a stopped worker", released)
    for row_id in given_up:
        log.warning("delivery failed (given up): outbox %d: the delivery worker stopped "
                    "while sending it, %d times", row_id, outbox.MAX_ATTEMPTS,
                    extra={"outbox_ids": [row_id]})
    report.failed += len(given_up)
    rounds = waits = 0
    while rounds < max_rounds:
        claimed = outbox.claim(engine, now, group_keys=groups,
                               skip_channels=[*unconfigured, *run.paused])
        if not claimed.groups:
            if claimed.busy and waits < BUSY_WAITS:  # another replica is mid-claim
                waits += 1
                await asyncio.sleep(BUSY_PAUSE)
                continue
            break
        rounds += 1
        # While this round sends (a hung SMTP server can hold it for minutes), its claim
        # is renewed, so that another run never takes the rows for a stopped worker's.
        keeping = asyncio.create_task(_keep_claim(engine, claimed.token, now, renew_every))
        try:
            await _send_round(claimed, transports, run, ctx)
        finally:
            keeping.cancel()
    for channel, delay in run.paused.items():
        # Its rows this run did not claim wait as long, so that no run (here or on another
        # replica) sends into the pause.
        n_rows, n_messages, why = report.paused[channel]
        rows, messages = await asyncio.to_thread(outbox.postpone, engine, now, channel, delay,
                                                 why, groups)
        report.paused[channel] = (n_rows + rows, n_messages + messages, why)
    return report


async def _keep_claim(engine, token: str, now: dt.datetime, every: float) -> None:
    """Renew claim `token` every `every` seconds, as of `now` plus the time since."""
    started = asyncio.get_running_loop().time()
    while True:
        await asyncio.sleep(every)
        at = now + dt.timedelta(seconds=asyncio.get_running_loop().time() - started)
        await asyncio.to_thread(outbox.renew_claim, engine, token, at)


async def _send_round(claimed, transports: dict[str, Transport], run: _Run,
                      ctx: SendContext) -> None:
    """One claim's groups: each rendered, addressed and sent by its channel's transport."""
    batches: dict[str, list[tuple[list[dict], str, object]]] = {}
    for rows in claimed.groups.values():
        first = rows[0]
        channel, address = first["channel"], first["address"] or ""
        transport = transports.get(channel)
        if transport is None:
            await run.failed(rows, "no Slack user id or email address" if channel == Channel.NONE
                             else f"no transport for the channel {_safe(channel)!r}",
                             permanent=True)
            continue
        problem = transport.address_problem(address)
        if problem:
            # The value itself stays out of the reason: it is shown and logged.
            await run.failed(rows, transport.address_label + problem, permanent=True)
            continue
        try:
            message = await transport.prepare(rows, transport.render(rows), ctx)
        except Exception as exc:  # the same rows would fail the same way again
            log.debug("could not prepare outbox %s", first["id"], exc_info=True)
            await run.failed(rows, f"could not prepare the message ({type(exc).__name__}: "
                             f"{_safe(exc)[:200]})", permanent=True)
            continue
        batches.setdefault(channel, []).append((rows, address, message))
    for channel, batch in batches.items():
        async def on_result(i: int, error: DeliveryError | None,
                            posted: tuple[str, str] | None = None, batch=batch) -> None:
            rows = batch[i][0]
            if error is None:
                await run.sent(rows, posted)
            elif not error.tried:
                await run.wait(rows, error)
            else:
                await run.failed(rows, str(error), error.permanent, error.retry_after)

        await transports[channel].send_all([(a, m) for _, a, m in batch], on_result)


class _Unreachable(Transport):
    """Slack when the caller has no client for it: its messages wait and are retried."""

    name = Channel.SLACK
    address_label = "the Slack user id "

    def address_problem(self, address: str) -> str | None:
        return channels.TRANSPORTS[Channel.SLACK]().address_problem(address)

    def not_configured(self) -> str | None:
        return "no Slack client in this delivery run"

    async def send(self, address: str, message) -> None:
        raise DeliveryError("Slack: no Slack client in this delivery run", permanent=False)

    @classmethod
    def render(cls, rows):
        return channels.TRANSPORTS[Channel.SLACK].render(rows)
