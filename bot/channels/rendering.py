"""What every channel's rendering of a notice shares: the template context of a group of
outbox rows, their order, and one line per row (from templates/_items.j2). Each
transport (slack/, email/, teams/) builds its message from these."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from jinja2.filters import do_truncate

from bot.templates import environment
from mappa_core.rules.indicators import INDICATORS
from mappa_core.rules.kinds import ITEM_KINDS
from mappa_core.rules.vocabulary import Rule, Urgency

PLAIN_KINDS = (None, "delivery_problem", "audit_reminder", "scr_action")
# What an indicator's or a record's line quotes from the records (names of agencies and
# chairs, references): escaped for the channel's markup like an item's words.
_RECORDED = ("why", "ref", "detail")


def rule_of(rows: list[dict]) -> str:
    # The group decides the message (a digest may carry reminders and delivery problems).
    return rows[0]["group_key"].split("|", 1)[0]


def context(rows: list[dict]) -> dict:
    first = rows[0]
    items = [r["payload"] for r in rows]
    return {
        "day": day_of(rows),
        "area": first.get("area") or "all areas",
        "urgent": any(r["urgency"] == Urgency.URGENT for r in rows),
        "count": len(rows),
        "overdue": sum(1 for p in items if p.get("overdue")),
        "upcoming": sum(1 for p in items if p.get("kind") not in PLAIN_KINDS and not p.get("overdue")),
        "problems": sum(1 for p in items if p.get("kind") == "delivery_problem"),
        # [what, how many] of the reminders it holds, as they first come ("meeting audit").
        "reminders": [[what, n] for what, n in Counter(
            p.get("what") or "reminder" for p in items if p.get("kind") == "audit_reminder").items()],
        "quarter": items[0].get("quarter", ""),
        "headline": figures_headline(rows),
    }


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def figures_headline(rows: list[dict]) -> str | None:
    """What a notice of figures holds, in a line for a lock screen: the weekly summary's
    indicators below target, the below-target alert's indicators, the records to correct,
    the quarterly review; None for any other notice."""
    rule = rule_of(rows)
    area = rows[0].get("area") or "all areas"
    figures = [r["payload"] for r in ordered(rows) if r["payload"].get("indicator")]
    shorts = [INDICATORS[p["indicator"]].short if p["indicator"] in INDICATORS else p["title"]
              for p in figures if p.get("met") is not True]
    if rule == Rule.WEEKLY:
        below = sum(1 for p in figures if p.get("met") is False)
        return (f"MAPPA weekly summary, {area}: "
                + (f"{below} of {len(figures)} indicators below target" if below
                   else f"no indicator below target of {len(figures)}"))
    if rule == Rule.BELOW_TARGET:
        named = ", ".join(shorts[:3]) + (f" and {len(shorts) - 3} more" if len(shorts) > 3 else "")
        lead = _plural(len(figures), "indicator", "indicators") + " below target"
        return f"{lead} in {area}: {named}"
    if rule == Rule.DATA_QUALITY:
        return f"MAPPA records to correct, {area}: {len(rows):,}"
    if rule == Rule.QUARTERLY:
        quarter = rows[0]["payload"].get("quarter") or "last quarter"
        return f"MAPPA quarterly review of {quarter} due, {area}"
    return None


def ordered(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (not r["payload"].get("overdue", False),
                                       r["payload"].get("deadline", "")))


def _agency_shown(item: dict) -> str | None:
    """The agency as an item's line names it: its name (cut to 80), else its id."""
    name = do_truncate(environment(), item.get("agency_name") or "", 80, True, "…", 0)
    return name or item["agency"]


def macros():
    return environment().get_template("_items.j2").module


def day_of(rows: list[dict]) -> str | None:
    """The day (ISO) a group of outbox rows was planned for, as its group key ends."""
    key = rows[0].get("group_key") if rows else None
    return key.rsplit("|", 1)[-1] if key else None


def sections(rule: str, rows: list[dict], escape: Callable[[str], str] | None = None,
             code: str = "", buttons: Callable[[str, dict, dict], list | None] | None = None,
             today: str | None = None) -> list[dict]:
    """One line per row, with the buttons `buttons(rule, row, payload)` gives it; a line
    counts its working days from `today` (ISO; by default the day the rows were planned
    for: their working days were counted from it)."""
    m = macros()
    today = today or day_of(rows)
    out = []
    for r in rows:
        p = r["payload"]
        kind = p.get("kind")
        if kind == "delivery_problem":
            line = m.problem_line(p)
        elif kind == "audit_reminder":
            line = m.reminder_line(p)
        elif kind == "scr_action":
            line = m.scr_line(p)
        elif kind is not None:
            item = {k: (escape(v) if escape and isinstance(v, str) else v) for k, v in p.items()}
            spec = ITEM_KINDS[kind]
            what = spec.line_for(item["level"], _agency_shown(item))
            line = (m.escalation_line if rule == Rule.ESCALATION else m.item_line)(
                item, what, spec.line_detail, code=code, today=today)
        elif rule == Rule.QUARTERLY:
            continue  # the reminder is its intro; the pack travels as an attachment
        else:
            # Figures, or a record to correct: their words from the records escaped too.
            q = {k: (escape(v) if escape and isinstance(v, str) and k in _RECORDED else v)
                 for k, v in p.items()}
            line = (m.weekly_line if rule == Rule.WEEKLY else m.data_quality_line
                    if rule == Rule.DATA_QUALITY else m.indicator_line)(q)
        out.append({"text": str(line), "buttons": buttons(rule, r, p) if buttons else None,
                    "block_id": (p.get("item_key") or r["item_key"])[:255]})
    return out
