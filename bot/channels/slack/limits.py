"""Slack's size limits, enforced in one place (issue 13.3).

Slack refuses a whole message, modal or App Home (`invalid_blocks`) when one part is too
long, so a person's long text must never reach it as it is: `/mappa escalate` takes any
length (bot/commands/escalate sends a long issue in parts), and the escaping (`&` becomes
`&amp;`) makes a section up to five times longer than what was typed. Every Slack payload
the product renders passes `fit` (blocks.render_blocks calls it after escaping), which:

- splits a section's text that is too long into consecutive sections, each cut at a line
  end or a space (never inside `&amp;`), a cut mid-line marked with an ellipsis and a
  quoted line (`>`) still quoted after the cut;
- truncates, with a visible "… (N more characters not shown)", what cannot be split
  (header, button and context texts) or does not fit in the blocks that are left;
- keeps a message to 50 blocks and a modal or Home to 100, dropping the excess with a line
  that says how many entries are not shown.

Within the limits `fit` changes nothing. `problems` reports what Slack would refuse, with
slack_sdk's own models (`Block.parse(...).validate_json()`, `View`) and the limits the
models do not check; the tests run it on every payload. Lengths are counted in UTF-16
code units, which is never fewer than Python's characters: an emoji counts two.
"""

from __future__ import annotations

import copy

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100  # a modal or an App Home
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_OPTION_TEXT = 75
MAX_PLACEHOLDER_TEXT = 150
MAX_VIEW_TITLE = 24  # a modal's title, submit and close
VIEW_TYPES = ("modal", "home")
ELLIPSIS = "…"
_ENTITIES = ("&amp;", "&lt;", "&gt;")
_QUOTES = (">", "&gt;")  # a quoted line, as written or once escaped


def units(text: str) -> int:
    """Length as Slack may count it: UTF-16 code units (an emoji outside the BMP is two)."""
    return len(text.encode("utf-16-le")) // 2


def _prefix_within(text: str, limit: int) -> int:
    """The largest n with units(text[:n]) <= limit."""
    if units(text) <= limit:
        return len(text)
    n, used = 0, 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            break
        n += 1
    return n


def _safe_cut(text: str, n: int) -> int:
    """`n` moved back so that it does not fall inside an escaped entity (`&amp;`)."""
    start = text.rfind("&", max(0, n - 4), n)
    if start != -1 and any(text.startswith(e, start) and start + len(e) > n for e in _ENTITIES):
        return start
    return n


def _cut(text: str, limit: int) -> tuple[int, bool]:
    """Where to cut `text` so that the head has at most `limit` units: at the last line
    end in its second half if any, else at the last space, else wherever it must. Returns
    the cut and whether it is at a line end."""
    hard = _safe_cut(text, _prefix_within(text, limit))
    if hard >= len(text):
        return len(text), True
    head = text[:hard]
    line = head.rfind("\n")
    if line >= hard // 2 and line > 0:
        return line, True
    space = head.rfind(" ")
    if space >= hard // 2 and space > 0:
        return space, False
    return max(hard, 1), False


def truncate(text: str, limit: int, what: str = "characters") -> str:
    """`text` cut to at most `limit` units with a marker saying how much is not shown."""
    if units(text) <= limit:
        return text
    for room in range(limit - 40, 0, -40):
        n, _ = _cut(text, room)
        marker = f" {ELLIPSIS} ({len(text) - n:,} more {what} not shown)"
        if units(text[:n].rstrip()) + units(marker) <= limit:
            return text[:n].rstrip() + marker
    return text[:_prefix_within(text, limit - 1)] + ELLIPSIS


def _short(text: str, limit: int) -> str:
    """A short plain text (a header, a button) cut with an ellipsis."""
    if units(text) <= limit:
        return text
    n, _ = _cut(text, limit - 1)
    return text[:n].rstrip() + ELLIPSIS


def split_text(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """mrkdwn `text` in consecutive pieces of at most `limit` units each. A piece cut
    mid-line ends with an ellipsis and the next begins with one; a quoted line stays
    quoted in the next piece."""
    pieces: list[str] = []
    rest = text
    lead = ""
    while units(lead + rest) > limit:
        room = limit - units(lead) - 2  # the " …" a mid-line cut adds
        n, at_line_end = _cut(rest, room)
        line_start = rest.rfind("\n", 0, n) + 1
        quote = next((q for q in _QUOTES if rest.startswith(q, line_start)), "")
        if line_start == 0 and not quote:
            quote = next((q for q in _QUOTES if lead.startswith(q)), "")
        if at_line_end:
            pieces.append(lead + rest[:n])
            rest = rest[n + 1:]
            lead = ""
        else:
            pieces.append(lead + rest[:n].rstrip() + " " + ELLIPSIS)
            rest = rest[n:].lstrip(" ")
            lead = quote + ELLIPSIS + " "
    pieces.append(lead + rest)
    return pieces


# --------------------------------------------------------------------------- fit


def _text_obj(obj, limit: int, short: bool = True) -> None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str) and units(obj["text"]) > limit:
        obj["text"] = _short(obj["text"], limit) if short else truncate(obj["text"], limit)


def _element(el: dict) -> None:
    kind = el.get("type")
    if kind == "button":
        _text_obj(el.get("text"), MAX_BUTTON_TEXT)
        if isinstance(el.get("value"), str) and len(el["value"]) > MAX_BUTTON_VALUE:
            el["value"] = el["value"][:MAX_BUTTON_VALUE]
    _text_obj(el.get("placeholder"), MAX_PLACEHOLDER_TEXT)
    for opt in el.get("options") or []:
        _text_obj(opt.get("text"), MAX_OPTION_TEXT)
    if kind in ("mrkdwn", "plain_text"):
        _text_obj(el, MAX_CONTEXT_TEXT, short=False)


def _small_parts(block: dict) -> None:
    """Everything in a block but a section's text, cut to its limit in place."""
    kind = block.get("type")
    if kind == "header":
        _text_obj(block.get("text"), MAX_HEADER_TEXT)
    for field in block.get("fields") or []:
        _text_obj(field, MAX_FIELD_TEXT, short=False)
    if isinstance(block.get("accessory"), dict):
        _element(block["accessory"])
    if isinstance(block.get("element"), dict):
        _element(block["element"])
    for el in block.get("elements") or []:
        if isinstance(el, dict):
            _element(el)


def _section_pieces(block: dict) -> list[str] | None:
    text = block.get("text")
    if block.get("type") != "section" or not isinstance(text, dict):
        return None
    if not isinstance(text.get("text"), str) or units(text["text"]) <= MAX_SECTION_TEXT:
        return None
    if text.get("type") == "plain_text":
        return [truncate(text["text"], MAX_SECTION_TEXT)]
    return split_text(text["text"])


def _not_shown(count: int) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"{ELLIPSIS} and {count} more {'entry' if count == 1 else 'entries'} not shown here.")}]}


def fit_blocks(blocks: list, limit: int = MAX_MESSAGE_BLOCKS) -> list:
    """`blocks` within Slack's limits (see the module's docstring); the same list when
    nothing is over."""
    pieces = [_section_pieces(b) if isinstance(b, dict) else None for b in blocks]
    over = [b for b in blocks if isinstance(b, dict) and _needs_small_fix(b)]
    if len(blocks) <= limit and not over and not any(pieces):
        return blocks
    blocks = copy.deepcopy(blocks)
    for b in blocks:
        if isinstance(b, dict):
            _small_parts(b)
    if len(blocks) > limit:  # keep the head and the last block (the footer), say what went
        dropped = len(blocks) - (limit - 1)
        keep = limit - 2
        blocks = blocks[:keep] + [_not_shown(dropped)] + blocks[-1:]
        pieces = pieces[:keep] + [None] + pieces[-1:]
    spare = limit - len(blocks)
    out = []
    for block, parts in zip(blocks, pieces):
        if not parts:
            out.append(block)
            continue
        use = parts[:1 + spare]
        spare -= len(use) - 1
        if len(use) < len(parts):
            rest = "\n".join(parts[len(use) - 1:])
            use[-1] = truncate(rest, MAX_SECTION_TEXT)
        for i, part in enumerate(use):
            piece = dict(block) if i == 0 else {"type": "section"}
            piece["text"] = {**block["text"], "text": part}
            if i:  # ids and accessories stay on the first piece only
                piece.pop("block_id", None)
            out.append(piece)
    return out


def _needs_small_fix(block: dict) -> bool:
    trial = copy.deepcopy(block)
    _small_parts(trial)
    return trial != block


def fit(payload):
    """A message's blocks (a list) or a view (a modal or a Home, a dict) within Slack's
    limits; anything else unchanged."""
    if isinstance(payload, list):
        return fit_blocks(payload, MAX_MESSAGE_BLOCKS)
    if isinstance(payload, dict) and payload.get("type") in VIEW_TYPES:
        blocks = payload.get("blocks") or []
        fitted = fit_blocks(blocks, MAX_VIEW_BLOCKS)
        titles = {k: payload[k] for k in ("title", "submit", "close")
                  if isinstance(payload.get(k), dict)
                  and units(payload[k].get("text") or "") > MAX_VIEW_TITLE}
        if fitted is blocks and not titles:
            return payload
        out = {**payload, "blocks": fitted}
        for key, obj in titles.items():
            out[key] = {**obj, "text": _short(obj["text"], MAX_VIEW_TITLE)}
        return out
    return payload


# --------------------------------------------------------------------------- problems


def _text_len_problems(blocks: list, where: str) -> list[str]:
    out = []

    def check(obj, limit, what):
        if isinstance(obj, dict) and isinstance(obj.get("text"), str) and units(obj["text"]) > limit:
            out.append(f"{where}: {what} has {units(obj['text'])} characters (limit {limit})")

    for i, b in enumerate(blocks):
        if not isinstance(b, dict):
            out.append(f"{where}: block {i} is not an object")
            continue
        kind = b.get("type")
        if kind == "section":
            check(b.get("text"), MAX_SECTION_TEXT, f"block {i} section text")
            for field in b.get("fields") or []:
                check(field, MAX_FIELD_TEXT, f"block {i} field")
        if kind == "header":
            check(b.get("text"), MAX_HEADER_TEXT, f"block {i} header")
        elements = list(b.get("elements") or [])
        elements += [b[k] for k in ("accessory", "element") if isinstance(b.get(k), dict)]
        for el in elements:
            if not isinstance(el, dict):
                continue
            if el.get("type") == "button":
                check(el.get("text"), MAX_BUTTON_TEXT, f"block {i} button text")
                if len(str(el.get("value") or "")) > MAX_BUTTON_VALUE:
                    out.append(f"{where}: block {i} button value has {len(el['value'])} "
                               f"characters (limit {MAX_BUTTON_VALUE})")
            if el.get("type") in ("mrkdwn", "plain_text"):
                check(el, MAX_CONTEXT_TEXT, f"block {i} context text")
            check(el.get("placeholder"), MAX_PLACEHOLDER_TEXT, f"block {i} placeholder")
            for opt in el.get("options") or []:
                check(opt.get("text"), MAX_OPTION_TEXT, f"block {i} option")
    return out


def problems(payload, where: str = "payload") -> list[str]:
    """What Slack would refuse in a message's blocks (a list) or a view (a dict): slack_sdk's
    own validation of every block or of the view, and the limits it does not check."""
    # Here: only these checks (the tests') need slack_sdk's models; a running bot does not.
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.blocks import Block
    from slack_sdk.models.views import View

    out = []
    if isinstance(payload, dict):
        blocks, limit = payload.get("blocks") or [], MAX_VIEW_BLOCKS
        if payload.get("type") not in VIEW_TYPES:
            out.append(f"{where}: a view of type {payload.get('type')!r}")
        try:
            View(**payload).validate_json()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError) as exc:
            out.append(f"{where}: slack_sdk refuses the view: {exc}")
    else:
        blocks, limit = payload, MAX_MESSAGE_BLOCKS
        if not isinstance(blocks, list) or not blocks:
            return [f"{where}: a message needs a non-empty list of blocks"]
    if len(blocks) > limit:
        out.append(f"{where}: {len(blocks)} blocks (limit {limit})")
    for i, b in enumerate(blocks):
        try:
            parsed = Block.parse(b)
            if parsed is None or type(parsed) is Block:
                out.append(f"{where}: block {i} of unknown type {b.get('type')!r}")
                continue
            parsed.validate_json()
        except (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError) as exc:
            out.append(f"{where}: slack_sdk refuses block {i} ({b.get('type')}): {exc}")
    return out + _text_len_problems(blocks, where)
