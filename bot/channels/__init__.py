"""The delivery seam: every channel the product speaks through, registered by name.

A channel is one folder here (its transport, beside its templates in templates/<name>/ and
its tests in tests/channels/<name>/) and one line in TRANSPORTS. The outbox and the
delivery worker (bot/delivery/worker.py) know only this registry and the Transport
interface in base.py: render a group of outbox rows, send it to an address, raise
DeliveryError saying whether a failure is permanent.

A channel people answer through keeps its door in its folder too: its HTTP routes
(`routes()` in <name>/http.py, composed into `mappa serve` by bot/server.channel_routes)
and its listeners (Slack: slack/app.py and slack/listeners/). rendering.py and
escalation.py hold what every channel's rendering of a notice shares.
"""

from __future__ import annotations

from bot.channels.base import DeliveryError, Rendered, SendContext, Transport
from bot.channels.console import ConsoleTransport
from bot.channels.email import EmailTransport
from bot.channels.slack import SlackTransport
from bot.channels.teams import TeamsTransport
from mappa_core.rules.vocabulary import Channel

TRANSPORTS: dict[Channel, type[Transport]] = {
    Channel.SLACK: SlackTransport,
    Channel.EMAIL: EmailTransport,
    Channel.CONSOLE: ConsoleTransport,
    Channel.TEAMS: TeamsTransport,
}

__all__ = ["TRANSPORTS", "DeliveryError", "Rendered", "SendContext", "Transport",
           "area_channels", "build", "label", "render"]

# Each channel as a sentence names it ("3 by email", "an email message").
LABELS = {Channel.SLACK: "Slack", Channel.EMAIL: "email", Channel.TEAMS: "Teams",
          Channel.CONSOLE: "console"}


def label(name: str) -> str:
    return LABELS.get(name, str(name))


def build(settings, overrides: dict[str, Transport | None] | None = None) -> dict[str, Transport]:
    """One transport per channel for a delivery run; `overrides` replaces some (a Slack
    client of the caller's, the console in the demo)."""
    overrides = overrides or {}
    out = {}
    for name, cls in TRANSPORTS.items():
        transport = overrides[name] if name in overrides else cls.from_settings(settings)
        if transport is not None:
            out[name] = transport
    return out


def render(rows: list[dict]) -> Rendered:
    """One group of outbox rows (one recipient, one rule) as its channel shows it."""
    return TRANSPORTS[rows[0]["channel"]].render(rows)


def area_channels(settings) -> dict[str, dict[str, str]]:
    """Channel -> {area: address} for the channels that speak to a whole area."""
    found = {name: cls.area_addresses(settings) for name, cls in TRANSPORTS.items()}
    return {name: areas for name, areas in found.items() if areas}
