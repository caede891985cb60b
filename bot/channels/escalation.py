"""An SOG chair's escalation, summarised before it lists: what every channel's rendering of
one shares (counts by kind and by chair, the few most overdue items, what the "Acknowledge
all shown" button may carry), so that a thousand breaches read as a page, not a thousand
rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mappa_core.rules.kinds import summary_names

# Items listed one by one in Slack (each with its Acknowledge button); the rest are counted.
SLACK_SHOWN = 5
# By email: every item when there are at most EMAIL_LIST_MAX, else the EMAIL_SHOWN most
# overdue, with the whole list attached as CSV (a body stays well under 100 KB).
EMAIL_SHOWN = 10
EMAIL_LIST_MAX = 40
TOP_CHAIRS = 8
MAX_BUTTON_VALUE = 2000  # Slack's limit on a button's value
MAX_NAME = 60            # a chair's name as counted (as _items.j2's escalation_line cuts it)

# Most urgent first, as the item kinds declare (mappa_core.rules.kinds), then SCR actions.
KIND_NAMES = {**dict(summary_names()), "scr_action": "Significant Case Review actions"}


def kind_of(payload: dict) -> str:
    kind = payload.get("kind") or ""
    if kind == "review":
        return f"review{payload.get('level') or ''}"
    return kind


def _deadline(payload: dict) -> str:
    return payload.get("deadline") or payload.get("due") or ""


def ordered(rows: list[dict]) -> list[dict]:
    """Urgent ones first, then the most overdue (the oldest deadline) first."""
    return sorted(rows, key=lambda r: (r.get("urgency") != "urgent", _deadline(r["payload"]),
                                       r["item_key"]))


def _chair(payload: dict) -> str | None:
    name = payload.get("chair_name") or payload.get("chair_id")
    if not name:
        return None
    name = str(name)
    return name if len(name) <= MAX_NAME else name[:MAX_NAME - 1] + "…"


@dataclass
class Summary:
    total: int
    urgent: int
    by_kind: list[tuple[str, int]]
    by_chair: list[tuple[str, int]]       # the TOP_CHAIRS with most items
    other_chairs: tuple[int, int]         # (chairs, items) not in by_chair
    no_chair: int                         # case items whose chair is not recorded
    shown: list[dict]                     # rows, most urgent first
    rest: int                             # items not shown one by one
    ack_all: list[dict] = field(default_factory=list)  # rows the bulk button acknowledges

    @property
    def all_shown(self) -> bool:
        return self.rest == 0


def summarise(rows: list[dict], shown: int | list[dict]) -> Summary:
    """Counts over every row; `shown` rows listed (the first so many of `ordered`, or the
    rows of a page)."""
    kinds = Counter(kind_of(r["payload"]) for r in rows)
    by_kind = [(KIND_NAMES[k], kinds[k]) for k in KIND_NAMES if kinds.get(k)]
    by_kind += [(k or "other", n) for k, n in sorted(kinds.items()) if k not in KIND_NAMES]
    # SCR actions have an owner agency, not a chair; rows planned before the payload
    # carried the chair (no `chair_id` key at all) are not counted either way.
    case_rows = [r["payload"] for r in rows
                 if kind_of(r["payload"]) != "scr_action" and "chair_id" in r["payload"]]
    chairs = Counter(_chair(p) for p in case_rows if _chair(p))
    top = sorted(chairs.items(), key=lambda kv: (-kv[1], kv[0]))
    by_chair, others = top[:TOP_CHAIRS], top[TOP_CHAIRS:]
    first = ordered(rows)[:shown] if isinstance(shown, int) else list(shown)
    return Summary(
        total=len(rows), urgent=sum(1 for r in rows if r.get("urgency") == "urgent"),
        by_kind=by_kind, by_chair=by_chair,
        other_chairs=(len(others), sum(n for _, n in others)),
        no_chair=sum(1 for p in case_rows if not _chair(p)),
        shown=first, rest=len(rows) - len(first), ack_all=ack_all_rows(first),
    )


def ack_value(rows: list[dict]) -> str:
    """The bulk button's value: `key|stage` of each row, joined by `|` (an item key never
    holds a bare `|`: mappa_core.rules.due.key_part encodes it)."""
    return "|".join(f"{r['item_key']}|{r['stage']}" for r in rows)


def ack_all_rows(shown: list[dict]) -> list[dict]:
    """What "Acknowledge all shown" may acknowledge, or nothing where that is not safe.

    Only items the reader has in front of them (their keys travel in the button, so one
    that arrives later is never swept up), never an urgent one (each of those needs its own
    look), at least two of them (one has its own button), and all in one button value.
    """
    rows = [r for r in shown if r.get("urgency") != "urgent"]
    if len(rows) < 2 or len(ack_value(rows)) > MAX_BUTTON_VALUE:
        return []
    return rows


def parse_ack_value(value: str) -> list[tuple[str, str]]:
    """(item key, stage) pairs from a bulk button's value (the inverse of `ack_value`)."""
    parts = (value or "").split("|")
    if len(parts) < 2 or len(parts) % 2:
        return []
    return list(zip(parts[0::2], parts[1::2]))
