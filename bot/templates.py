"""Jinja2 templates (templates/): words live there, code passes data. One environment for
every channel (templates/<channel>/...) and the reports, with the filters they share. It
knows no channel: a channel's own finishing (Slack's escaping and size limits) is in its
package.

The folder is installed as the package `mappa_templates` (see pyproject.toml), so the
templates are found the same way from an editable install, a wheel or a container image."""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

TEMPLATES_PACKAGE = "mappa_templates"


_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")


def mrkdwn_escape(text) -> str:
    """User text made inert in Slack mrkdwn: no links, mentions or channel pings.

    Idempotent: Slack decodes only `&amp;`, `&lt;` and `&gt;`, so those are left as they
    are and text escaped once comes out the same when escaped again (a value a handler
    escaped, then the whole block when it is rendered). Nothing can come out as `<`.
    """
    return _BARE_AMPERSAND.sub("&amp;", str(text)).replace("<", "&lt;").replace(">", "&gt;")


# English whatever the server's locale (strftime's %A and %B follow it).
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def long_date(value) -> str:
    """An ISO date as a reader outside the product writes it: `Monday 28 September 2026`
    (a value that is not an ISO date is shown as it is)."""
    try:
        day = dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def weekday(value) -> str:
    """An ISO date's day of the week, `Sunday` (a value that is not an ISO date: nothing)."""
    try:
        return _DAYS[dt.date.fromisoformat(str(value)).weekday()]
    except ValueError:
        return ""


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader(TEMPLATES_PACKAGE, "."),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["mrkdwn"] = mrkdwn_escape
    env.filters["pct"] = lambda v: "-" if v is None else f"{v:.1f}%"
    env.filters["long_date"] = long_date
    env.filters["weekday"] = weekday
    env.filters["mark"] = lambda v: ":white_check_mark:" if v else (":x:" if v is False else ":heavy_minus_sign:")
    return env


def render_text(name: str, **context) -> str:
    return environment().get_template(name).render(**context)


def render_json(name: str, **context):
    """Render a template that writes JSON (Block Kit blocks, a view, an Adaptive Card).
    Slack's are rendered through bot/channels/slack/blocks.render_blocks, which escapes
    their text and fits them to Slack's limits."""
    return json.loads(render_text(name, **context))
