"""The App Home (issue 13.5): opening the app in Slack shows the person their own week.

What is due from them this week and what is overdue, on the same scope as `/mappa due`
(a chair: the cases and meetings they chair; a co-ordinator or SOG chair: their area, or
every area if national), and for co-ordinators and SOG chairs the area's indicators,
quarter to date, with their margins. Nothing more about any individual than `/mappa due`
shows the same person privately; staff see no case list; a Slack user who is not in the
people list is told so. The view is rebuilt each time the person opens the tab (Slack's
`app_home_opened`) and published with `views.publish`.
"""

from __future__ import annotations

import datetime as dt

from bot.commands import handlers
from bot.channels import rendering
from bot.commands.access import Caller
from bot.commands.parser import Command
from bot.channels.slack.answers import slack_reply
from bot.channels.slack.blocks import render_blocks
from bot.templates import mrkdwn_escape
from mappa_core.rules.due import due_items
from mappa_core.storage.queries import known_areas
from mappa_core.rules.planner.outbox_rows import items_payload
from mappa_core.rules.vocabulary import Rule
from mappa_core.rules.status import status_of

MAX_SHOWN = 20  # of each list; with the indicators the view stays well under 100 blocks


def week_days(today: dt.date) -> int:
    """Calendar days from today to the end of this week (Sunday); at a weekend, of next."""
    days = 6 - today.weekday()
    return days + 7 if today.weekday() >= 5 else days


def view_for(ctx: handlers.Context, caller: Caller | None) -> dict:
    """The Home view for `caller` (None: a Slack user not in the people list)."""
    if caller is None:
        return render_blocks("slack/home.json.j2", authorised=False,
                             not_authorised=handlers.NOT_AUTHORISED)
    key = ("home", caller.person_id, caller.area, caller.roles, ctx.today)
    return ctx.cache.memo(ctx.engine, key, lambda: _build(ctx, caller))


def _lines(items, today: dt.date) -> list[str]:
    """The digest's line for each item, escaped for mrkdwn as every Slack notice's is."""
    rows = [{"payload": p, "item_key": p["item_key"]}
            for p in items_payload(items.assign(stage=""))]
    return [s["text"] for s in rendering.sections(Rule.DIGEST, rows, escape=mrkdwn_escape, code="`",
                                               today=today.isoformat())]


def _build(ctx: handlers.Context, caller: Caller) -> dict:
    days = week_days(ctx.today)
    computed = ctx.cache.get(ctx.engine, caller.area, ctx.today)
    area_label = caller.area or "all areas"
    lists = caller.oversees or caller.chairs
    overdue = week = []
    overdue_total = week_total = 0
    if caller.oversees:  # the same scope as `/mappa due` gives them
        items = due_items(computed, days)
        scope = f"all cases in {mrkdwn_escape(area_label)}"
    elif caller.chairs:
        items = due_items(computed, days, chair=caller.person_id)
        scope = "cases and meetings you chair"
    else:
        items, scope = None, "MAPPA staff"
    if caller.area is not None and caller.area not in known_areas(ctx.engine):
        # A misspelt area in people.csv would otherwise read as "nothing overdue" for ever.
        scope += (f" (no case in the records is in the area {mrkdwn_escape(caller.area)}: "
                  "your co-ordinator can check your area in the people list)")
    if items is not None:
        items = handlers.with_agency_names(items, computed)
        late, coming = items[items["overdue"]], items[~items["overdue"]]
        overdue_total, week_total = len(late), len(coming)
        overdue = _lines(late.head(MAX_SHOWN), ctx.today)
        week = _lines(coming.head(MAX_SHOWN), ctx.today)
    indicators, period = None, None
    if caller.oversees:
        data = status_of(computed, "all", None, caller.area)
        indicators, period = data["indicators"], data["period"]
    week_end = ctx.today + dt.timedelta(days=days)
    return render_blocks(
        "slack/home.json.j2", authorised=True, person=mrkdwn_escape(caller.name), scope=scope,
        as_of=ctx.today.isoformat(), week_end=f"{week_end:%A} {week_end.isoformat()}",
        week_days=days, lists=lists, overdue=overdue, overdue_total=overdue_total, week=week,
        week_total=week_total, indicators=indicators, period=period,
        area_label=mrkdwn_escape(area_label))


# Someone who oversees every area: what `warm` builds for (no such person is looked up).
_WARM_CALLER = Caller("(warm-up)", "(warm-up)", frozenset({"coordinator"}), None)


def warm(ctx: handlers.Context) -> None:
    """Build, once and for no one, the national App Home and `/mappa due` for today.

    A worker process does it as it starts, before it counts as ready (/readyz). The first
    person's answer then pays only for the records: not also for the process's first use
    of each code path (pandas' lazy imports, the templates' compilation) and the database
    file's first reads: without it the first national App Home at 100,000 individuals
    took 2.85 s (bench/RESULTS.md), the limit being 2.
    """
    _build(ctx, _WARM_CALLER)
    slack_reply(handlers.answer(ctx, _WARM_CALLER, Command("due")))


def error_view(error_id: str) -> dict:
    return render_blocks("slack/home.json.j2", authorised=False, not_authorised=(
        "Sorry, this tab could not be built. Please tell your MAPPA Co-ordinator the "
        f"error id `{error_id}`."))
