"""A notice the bot sent, drawn again: another page of it ("Previous" / "Next"), or the same
page after a button, showing what was done to each item, by whom and when.

The message is rebuilt from its outbox rows (the button carries the first row's id), so a
page always lists what was sent; only its recipient may page it, and it is drawn only over
the message those rows were posted as (the channel and ts kept when it was sent: a press
naming another message, or a message sent before they were kept, is not drawn). What people did comes
from the records the buttons write: the values recorded through the bot (minutes, RMP,
contributions), the reader's own snooze, the latest reason, an acknowledgement at the
message's stage.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from bot.channels.base import Rendered
from bot.channels.slack import ItemState, notice_ref, render_slack
from bot.commands.access import Caller
from bot.commands.handlers import Context
from mappa_core.rules.kinds import ITEM_KINDS, ItemKind, read_key
from mappa_core.rules.reports import reason_label
from mappa_core.storage import item_actions, outbox, recorded

log = logging.getLogger("mappa.slack")
LONDON = ZoneInfo("Europe/London")
GONE = ("That message's items are no longer kept, so it cannot be shown again. "
        "`/mappa due` lists what is open now.")
NOT_YOURS = "That message was sent to someone else; only its reader can page it."
ELSEWHERE = ("That message cannot be drawn again here, so the page cannot be shown. "
             "`/mappa due` lists what is open now.")
BEFORE_KEPT = ("That message was sent before mappa-bot kept where its messages are posted, so "
               "it cannot be drawn again. `/mappa due` lists what is open now.")


class NoticeError(ValueError):
    """The notice cannot be drawn again: the message is safe to show the person."""


def _when(at) -> str:
    if not isinstance(at, dt.datetime):
        return str(at or "")
    if at.tzinfo is None:  # stored in UTC (SQLite keeps no zone)
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


def item_states(ctx: Context, viewer: str, rows: list[dict]) -> dict[str, ItemState]:
    """The state of each row's item as `viewer` (a person id) sees it, by block id (the
    item key cut to 255), for the items people acted on through the buttons."""
    keys = {(r["payload"].get("item_key") or r["item_key"]): r for r in rows}
    keys = {k: r for k, r in keys.items() if k}
    if not keys:
        return {}
    meetings, invitations = {}, {}
    for key in keys:
        read = read_key(key)  # as the item's kind declares its key
        kind, part = read if read is not None else (None, {})
        if kind is ITEM_KINDS[ItemKind.MINUTES]:
            meetings[recorded.row_key((part["meeting_id"],))] = key
        elif kind is ITEM_KINDS[ItemKind.CONTRIBUTION]:
            invitations[recorded.row_key((part["meeting_id"], part["agency"]))] = key
    found: dict[str, list[tuple]] = {k: [] for k in keys}  # key -> [(at, line, action id)]
    done = item_actions.history(ctx.engine, viewer, list(keys), list(meetings),
                                list(invitations))

    def by(person_id, at) -> str:
        return f"by {done.names.get(person_id) or person_id or 'someone'}, {_when(at)}"

    labels = {"minutes_issued": "Minutes issued", "rmp_ratified": "RMP ratified",
              "written_contribution": "Contribution received"}
    for r in done.done:
        key = (meetings if r["target_table"] == "meeting" else invitations)[r["row_key"]]
        column = r["target_column"]
        action = "contribution_received" if column == "written_contribution" else column
        found[key].append((r["recorded_at"], f":white_check_mark: {labels[column]}: recorded "
                           f"{by(r['person_id'], r['recorded_at'])}", action))
    for r in done.snoozes:
        if r["until"] > ctx.today:
            found[r["item_key"]].append((r["created_at"], f":zzz: Snoozed until "
                                         f"{r['until'].isoformat()} {by(r['person_id'], r['created_at'])}",
                                         "snooze"))
    latest_note = {r["item_key"]: r for r in done.notes}
    for key, r in latest_note.items():
        found[key].append((r["at"], f":memo: Reason \"{reason_label(r['reason'])}\" recorded "
                           f"{by(r['person_id'], r['at'])}", "record_reason"))
    for r in done.acks:
        row = keys[r["item_key"]]
        if row["rule"] == "escalation" and row["stage"] == r["stage"]:
            found[r["item_key"]].append((r["at"], f":ok_hand: Acknowledged {by(r['person_id'], r['at'])}",
                                         "ack_escalation"))
    out = {}
    for key, events in found.items():
        if not events:
            continue
        events.sort(key=lambda e: _when(e[0]))
        actions = {a for _, _, a in events}
        closed = bool(actions & {"contribution_received", "snooze", "ack_escalation"}) or (
            {"minutes_issued", "rmp_ratified"} <= actions)
        out[key[:255]] = ItemState(tuple(line for _, line, _ in events), closed,
                                   frozenset(actions & {"minutes_issued", "rmp_ratified"}))
    return out


def notice_page(ctx: Context, caller: Caller, first_id: int, page: int,
                at: tuple[str, str]) -> Rendered:
    """Page `page` of the notice whose first outbox row is `first_id`, for its reader, to
    be drawn over the message at `at` (channel id, ts): only where it was posted."""
    rows = outbox.group_of(ctx.engine, first_id)
    if not rows or rows[0]["channel"] != "slack":
        raise NoticeError(GONE)
    if rows[0]["recipient_id"] != caller.person_id:
        raise NoticeError(NOT_YOURS)
    posted = (rows[0]["posted_channel"], rows[0]["posted_ts"])
    if None in posted:
        raise NoticeError(BEFORE_KEPT)
    if posted != tuple(at):
        raise NoticeError(ELSEWHERE)
    return render_slack(rows, page,
                        states=lambda shown: item_states(ctx, caller.person_id, shown))


Where = tuple[str, str, int, int]  # channel, ts, first outbox row id, page


def message_at(body: dict) -> Where | None:
    """(channel, ts, first outbox row id, page) of the notice a button was pressed on, from
    the interaction's payload; None when it is not one of our notices."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or message.get("ts")
    ref = notice_ref(message.get("blocks"))
    if not channel or not ts or ref is None:
        return None
    return str(channel), str(ts), ref[0], ref[1]


async def redraw(bot, caller: Caller, client, where: Where | None) -> None:
    """After a button: the notice it was pressed on, drawn again in place (chat.update)
    with what was done to each item. A message that is not a notice of ours (or is no
    longer kept, or is not where that notice was posted) stays as it is; the person has
    had their answer either way."""
    if where is None:
        return
    channel, ts, first_id, page = where
    try:
        message = await bot.quick_work(notice_page, bot.context(), caller, first_id, page,
                                       (channel, ts))
        await client.chat_update(channel=channel, ts=ts, text=message.text,
                                 blocks=message.blocks)
    except NoticeError as exc:
        if str(exc) == ELSEWHERE:
            log.warning("did not redraw notice %s for %s: the press named another "
                        "message than the one it was posted as", first_id,
                        caller.person_id)
        return
    except Exception as exc:
        log.warning("could not redraw notice %s for %s: %s", first_id, caller.person_id,
                    type(exc).__name__)
