"""Jinja2 templates (templates/): words live there, code passes data.

The folder is installed as the package `mappa_templates` (see pyproject.toml), so the
templates are found the same way from an editable install, a wheel or a container image."""

from __future__ import annotations

import json
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

TEMPLATES_PACKAGE = "mappa_templates"


def mrkdwn_escape(text) -> str:
    """User text made inert in Slack mrkdwn: no links, mentions or channel pings."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
    env.filters["mark"] = lambda v: ":white_check_mark:" if v else (":x:" if v is False else ":heavy_minus_sign:")
    return env


def render_text(name: str, **context) -> str:
    return environment().get_template(name).render(**context)


def render_json(name: str, **context):
    """Render a template that writes JSON (Block Kit blocks or a view)."""
    return json.loads(render_text(name, **context))
