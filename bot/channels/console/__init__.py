"""The console: prints Slack messages as a person would read them (the demo's stand-in for
Slack, used in place of the Slack transport), and any notice as plain text (the dry run)."""

from __future__ import annotations

import sys

from bot.channels.base import Rendered
from bot.channels.slack import SlackTransport
from mappa_core.rules.vocabulary import Channel


def slack_lines(blocks: list[dict] | None) -> list[str]:
    """A Slack message's blocks as its reader reads them: the title, each section, the
    buttons as `[Minutes issued] [Snooze 1 day]`, the footer."""
    lines = []
    for block in blocks or []:
        if block["type"] in ("header", "section"):
            lines.append(block["text"]["text"])
        elif block["type"] == "actions":
            lines.append("    [" + "] [".join(
                e.get("text", {}).get("text", e.get("placeholder", {}).get("text", ""))
                for e in block["elements"]) + "]")
        elif block["type"] == "context":
            lines.append("  " + " ".join(e.get("text", "") for e in block["elements"]))
    return lines


def plain_text(message: Rendered) -> str:
    """A rendered notice as plain text: an email as `Subject: ...` and its plain-text part,
    a Slack message as slack_lines."""
    if message.subject:
        return f"Subject: {message.subject}\n\n{message.text.rstrip()}"
    return "\n".join(slack_lines(message.blocks))


class ConsoleTransport(SlackTransport):
    name = Channel.CONSOLE

    def __init__(self, stream=None, names: dict[str, str] | None = None):
        super().__init__(None)
        self.stream = stream or sys.stdout
        self.names = names or {}  # Slack user id -> the person's name, for the header
        self.sent: list[tuple[str, Rendered]] = []

    @classmethod
    def from_settings(cls, settings) -> ConsoleTransport:
        return cls()

    async def send(self, address: str, message: Rendered) -> None:
        self.sent.append((address, message))
        name = self.names.get(address)
        to = f"{name} ({address})" if name else address
        print("\n".join([f"--- Slack DM to {to} ---", *slack_lines(message.blocks)]),
              file=self.stream)
