"""The console: prints Slack messages as a person would read them (the demo's stand-in for
Slack, used in place of the Slack transport)."""

from __future__ import annotations

import sys

from bot.channels.base import Rendered
from bot.channels.slack import SlackTransport
from mappa_core.rules.vocabulary import Channel


class ConsoleTransport(SlackTransport):
    name = Channel.CONSOLE

    def __init__(self, stream=None):
        super().__init__(None)
        self.stream = stream or sys.stdout
        self.sent: list[tuple[str, Rendered]] = []

    @classmethod
    def from_settings(cls, settings) -> ConsoleTransport:
        return cls()

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
