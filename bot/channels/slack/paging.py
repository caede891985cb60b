"""Lists longer than one Slack message, paged inside Slack.

`page_items` cuts a list (most urgent first) into pages and gives the blocks that go under
a page: a line saying which items are shown out of how many, and "Previous" / "Next"
buttons. Each button carries, in its value, what the listener needs to build the other
page again (`value` plus the page number, as compact JSON of at most 2,000 characters);
the listener answers by replacing the message in place (`respond(replace_original=True)`
for a command's reply, `chat.update` for a message the bot posted).

The buttons' action ids are `<nav_action>_prev` and `<nav_action>_next` (`nav_actions`):
bot/channels/slack/listeners/actions/page_due.py and page_notice.py each listen for both
under one handler, which reads the page from the value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_BUTTON_VALUE = 2000


@dataclass
class Page:
    items: list               # the items on this page
    page: int                 # 1-based, within 1..pages
    pages: int
    total: int
    first: int                # 1-based position of the first item shown (0: none)
    nav: list[dict] = field(default_factory=list)  # blocks under the items; [] if all fit

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0


def nav_actions(nav_action: str) -> tuple[str, str]:
    """The action ids of the Previous and Next buttons."""
    return f"{nav_action}_prev", f"{nav_action}_next"


MAX_ROW_ID = 2**63  # an outbox row id is a signed 64-bit integer (SQLite, PostgreSQL bigint)


def page_value(value: str) -> dict:
    """A nav button's value read back: a dict with an int `p` >= 1 (1 for anything else),
    and `o` (a notice's first outbox row id) only when it is an int a row id can be
    (1 <= o < 2**63): a larger one would fail in the database, not read as "no such row"."""
    try:
        data = json.loads(value or "{}")
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep to read
        data = {}
    if not isinstance(data, dict):
        data = {}
    page = data.get("p")
    row = data.pop("o", None)
    if isinstance(row, int) and not isinstance(row, bool) and 1 <= row < MAX_ROW_ID:
        data["o"] = row
    data["p"] = page if isinstance(page, int) and not isinstance(page, bool) and page >= 1 else 1
    return data


def _button(text: str, action_id: str, value: dict, page: int) -> dict:
    encoded = json.dumps({**value, "p": page}, separators=(",", ":"), sort_keys=True)
    if len(encoded) > MAX_BUTTON_VALUE:
        raise ValueError(f"a page button's value is {len(encoded)} characters; Slack allows "
                         f"{MAX_BUTTON_VALUE}")
    return {"type": "button", "text": {"type": "plain_text", "text": text},
            "action_id": action_id, "value": encoded}


def page_items(items: Sequence, page: int, per_page: int, nav_action: str,
               value: dict | None = None, noun: str = "items") -> Page:
    """Page `page` (1-based; clamped to the pages there are) of `items`, `per_page` a page.

    `nav` holds a context block ("Showing 21-40 of 2,873 items, most urgent first.") and
    an actions block with "Previous" and/or "Next" when the list does not fit one page;
    it is empty when it does. `value` is what the buttons carry besides the page number.
    """
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    total = len(items)
    pages = max(1, -(-total // per_page))
    page = min(max(1, int(page)), pages)
    start = (page - 1) * per_page
    shown = list(items[start:start + per_page])
    out = Page(shown, page, pages, total, start + 1 if shown else 0)
    if pages == 1:
        return out
    prev_id, next_id = nav_actions(nav_action)
    buttons = []
    if page > 1:
        buttons.append(_button("Previous", prev_id, value or {}, page - 1))
    if page < pages:
        buttons.append(_button("Next", next_id, value or {}, page + 1))
    out.nav = [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Showing {out.first:,}-{out.last:,} of {total:,} {noun}, most urgent first "
            f"(page {page} of {pages}).")}]},
        {"type": "actions", "block_id": f"{nav_action}_nav", "elements": buttons},
    ]
    return out
