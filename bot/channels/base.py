"""The one interface every channel implements, and what a notice looks like once rendered.

A transport renders a group of outbox rows (one recipient, one rule: one message) and sends
it to an address. A failure is a DeliveryError that says whether it is permanent (bad
address, revoked token, a refused payload: stop and report) or transient (a timeout, 429
with Retry-After, 5xx: retry with backoff). Nothing else about a channel leaks out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mappa_core.rules.vocabulary import Channel


class DeliveryError(Exception):
    """Why one message was not sent. `permanent`: retrying cannot help (stop and report);
    `retry_after`: the sender asked to wait this many seconds; `tried`: False when the
    message was never attempted (its channel paused after another message's failure): it
    waits for the next run and is charged no attempt; `pause`: the failure is the
    channel's, not the message's (a rate limit), so the rest of the batch is not tried."""

    def __init__(self, message: str, permanent: bool, retry_after: float | None = None,
                 tried: bool = True, pause: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.tried = tried
        self.pause = pause


def not_tried(reason: str, retry_after: float | None = None) -> DeliveryError:
    """A message left for the next run, uncharged: `reason` says why."""
    return DeliveryError(f"not tried: {reason}", permanent=False, retry_after=retry_after,
                         tried=False)


# A channel whose messages fail this many times in a row for reasons of their transport (a
# timeout, a refused connection, a 5xx) is paused for the rest of the run: the messages
# after them wait, uncharged, instead of each being charged an attempt for the same outage.
FAILURES_BEFORE_PAUSE = 3


@dataclass
class Rendered:
    text: str            # Slack fallback text, or the email's plain-text body
    blocks: list | None  # Slack (Block Kit) or Teams (the webhook envelope's card body)
    subject: str = ""    # email
    html: str = ""       # email
    extra: dict = field(default_factory=dict)  # anything else a transport needs to send it


@dataclass
class SendContext:
    """What a transport may look at while preparing a message (read-only)."""

    engine: Any
    settings: Any
    now: Any
    cache: dict = field(default_factory=dict)


# on_result(index, error or None[, where it was posted]): awaited as soon as each message
# in a batch is done. Where: what `send` returned (Slack: the channel id and ts).
OnResult = Callable[..., Awaitable[None]]


class Transport:
    """One channel. Subclasses set `name` and implement `render` and `send`."""

    name: ClassVar[str] = ""
    # How a bad address is described ("the Slack user id "); the value itself is never shown.
    address_label: ClassVar[str] = ""

    @classmethod
    def from_settings(cls, settings) -> Transport | None:
        """The transport this deployment uses for the channel (None: not configured)."""
        return cls()

    @classmethod
    def area_addresses(cls, settings) -> dict[str, str]:
        """For a channel that speaks to a whole area (a Teams channel): area -> address.
        Such a channel only ever receives notices that carry no case reference."""
        return {}

    def address_problem(self, address: str) -> str | None:
        return None

    def not_configured(self) -> str | None:
        """Why this deployment cannot send on the channel at all ("SMTP_HOST is not set"),
        or None. Its messages are then not attempted: they wait in the outbox, uncounted,
        until it is configured."""
        return None

    @classmethod
    def render(cls, rows: list[dict]) -> Rendered:
        raise NotImplementedError

    async def prepare(self, rows: list[dict], message: Rendered, ctx: SendContext) -> Any:
        """The message as `send` wants it (email adds headers and attachments)."""
        return message

    async def send(self, address: str, message: Any) -> tuple[str, str] | None:
        """Send one message; where it was posted, for a channel that can draw it again
        (Slack: chat.postMessage's channel id and ts), or None."""
        raise NotImplementedError

    async def send_all(self, batch: list[tuple[str, Any]], on_result: OnResult) -> None:
        """Send each (address, message), each charged only its own failure. A failure that
        is the channel's (a rate limit), or FAILURES_BEFORE_PAUSE transient failures in a
        row, pause the channel: the rest are not tried (and not charged). A channel with
        connections to share overrides it."""
        in_a_row = 0
        for i, (address, message) in enumerate(batch):
            try:
                posted = await self.send(address, message)
            except DeliveryError as exc:
                await on_result(i, exc)
                in_a_row = 0 if exc.permanent else in_a_row + 1
                if exc.pause or in_a_row >= FAILURES_BEFORE_PAUSE:
                    await self._pause_rest(batch, i + 1, exc, in_a_row, on_result)
                    return
                continue
            except Exception as exc:  # a transport bug: retried, then given up
                label = self.name.capitalize() if self.name != Channel.TEAMS else "Teams"
                await on_result(i, DeliveryError(
                    f"{label}: {type(exc).__name__}: {str(exc)[:200]}", permanent=False))
                in_a_row = 0
                continue
            in_a_row = 0
            await on_result(i, None, posted)

    async def _pause_rest(self, batch: list, start: int, exc: DeliveryError, in_a_row: int,
                          on_result: OnResult) -> None:
        if exc.pause:
            wait = f" for {exc.retry_after:g} s" if exc.retry_after is not None else ""
            why = f"the channel is paused{wait} after: {exc}"
        else:
            why = f"the channel is paused after {in_a_row} failures in a row ({exc})"
        waiting = not_tried(why, exc.retry_after if exc.pause else None)
        for j in range(start, len(batch)):
            await on_result(j, waiting)
