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
    def __init__(self, message: str, permanent: bool, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


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
        """Send each (address, message); a channel with connections to share overrides it."""
        for i, (address, message) in enumerate(batch):
            try:
                posted = await self.send(address, message)
            except DeliveryError as exc:
                await on_result(i, exc)
                continue
            except Exception as exc:  # a transport bug: retried, then given up
                label = self.name.capitalize() if self.name != Channel.TEAMS else "Teams"
                await on_result(i, DeliveryError(
                    f"{label}: {type(exc).__name__}: {str(exc)[:200]}", permanent=False))
                continue
            await on_result(i, None, posted)
