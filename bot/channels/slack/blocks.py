"""Slack's Block Kit from the templates in templates/slack/: rendered (bot/templates.py),
every text object escaped (`slack_safe`), then fitted to Slack's size limits (limits.py),
so that long text is split or cut with a marker, never refused by Slack."""

from __future__ import annotations

from bot.channels.slack.limits import MAX_SECTION_TEXT, fit, split_text
from bot.templates import mrkdwn_escape, render_json


def slack_safe(blocks):
    """Every text object (mrkdwn or plain_text) in Block Kit blocks or a view, escaped.

    Escaping is the default for everything the product shows in Slack: the product's own
    words never use `<...>` links or mentions, so whatever text a template composed, from
    files or from people, reaches Slack inert. Ids (button values, block ids, a modal's
    private_metadata) are not text objects and pass unchanged, so they still round-trip.
    """
    if isinstance(blocks, list):
        return [slack_safe(b) for b in blocks]
    if isinstance(blocks, dict):
        if blocks.get("type") in ("mrkdwn", "plain_text") and isinstance(blocks.get("text"), str):
            return {**blocks, "text": mrkdwn_escape(blocks["text"])}
        return {k: slack_safe(v) for k, v in blocks.items()}
    return blocks


def render_blocks(name: str, **context):
    """Blocks (or a view) from the Slack template `name` (`slack/....json.j2`), escaped and
    fitted: what every Slack payload the product sends is made with."""
    return fit(slack_safe(render_json(name, **context)))


def plain_pieces(text: str) -> list[str]:
    """A person's text for plain-text sections, shown exactly as typed (no formatting, no
    mention, no link): escaped, then cut into pieces a section holds (limits.split_text,
    never inside an escape); none for no text."""
    return split_text(mrkdwn_escape(text), MAX_SECTION_TEXT) if text else []
