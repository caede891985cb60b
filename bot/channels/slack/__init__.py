"""Slack: everything the bot does in Slack, in this one package.

This module is the transport: direct messages through chat.postMessage, in Block Kit with
the nudge buttons (templates/slack/notice_<rule>.json.j2, and escalation.json.j2 for
`/mappa escalate`). The buttons' action ids are the ones listeners/actions/ listens for.
Beside it: app.py (the Bolt app) with its listeners/ by kind, runtime.py (what they share)
and guard.py (their audit row and error id); http.py (the HTTP door, /slack/events);
home.py (the App Home) and redraw.py (a notice drawn again); blocks.py, limits.py and
paging.py (Block Kit from the templates, within Slack's limits, in pages).
"""

from __future__ import annotations

import re

from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels import escalation, rendering
from bot.channels.base import DeliveryError, Rendered, Transport
from bot.channels.slack.paging import page_items
from bot.channels.slack.blocks import plain_pieces, render_blocks
from bot.templates import mrkdwn_escape
from mappa_core.rules.addresses import slack_user_problem
from mappa_core.rules.kinds import ITEM_KINDS, Button
from mappa_core.rules.vocabulary import Channel, Rule

MAX_SLACK_ITEMS = 20  # a page: each item is two blocks; Slack allows 50 a message
MAX_SECTION = 3000    # characters of a section's text
CUT = " _(cut short)_"
NOTICE_NAV = "page_notice"  # a notice's Previous / Next buttons (paging.py)
# The header's block id on a notice: "notice:<its first outbox row id>:<page>", so that a
# button pressed on it can draw the same page again (notice_ref).
NOTICE_REF = "notice:"
PERMANENT_SLACK_ERRORS = {
    "channel_not_found", "user_not_found", "invalid_auth", "not_authed", "account_inactive",
    "token_revoked", "token_expired", "is_archived", "user_disabled", "cannot_dm_bot",
    "missing_scope", "not_in_channel", "invalid_blocks", "msg_too_long",
}


def ack_button(item_key: str, stage: str) -> dict:
    """The SOG chair's button on an escalation: stops its repeats at this stage."""
    return {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge"},
            "action_id": "ack_escalation", "value": f"{item_key}|{stage}"[:2000],
            "style": "primary"}


def _element(button: Button, item_key: str) -> dict:
    if button.picks_date:
        return {"type": "datepicker", "action_id": button.action_id, "placeholder": {
            "type": "plain_text", "text": button.label}}
    return {"type": "button", "text": {"type": "plain_text", "text": button.label},
            "action_id": button.action_id, "value": item_key}


def nudge_buttons(item_key: str, kind: str) -> list[dict]:
    """The action buttons a nudge for one item carries, as its kind declares them
    (mappa_core.rules.kinds)."""
    elements = [_element(b, item_key) for b in ITEM_KINDS[kind].all_buttons]
    return [{"type": "actions", "block_id": item_key[:255], "elements": elements}]


def _buttons(rule: str, row: dict, p: dict) -> list | None:
    if rule == Rule.ESCALATION:
        return [ack_button(p.get("item_key") or row["item_key"], row["stage"])]
    if rule == Rule.DIGEST and p.get("kind") not in rendering.PLAIN_KINDS:
        return nudge_buttons(p["item_key"], p["kind"])[0]["elements"]
    return None


@dataclass(frozen=True)
class ItemState:
    """What people did to one item through its buttons, as the item's line shows it: `lines`
    (mrkdwn: what, who and when), whether the item is `closed` (its buttons go) and the
    action ids of the buttons no longer offered (`hides`)."""

    lines: tuple[str, ...]
    closed: bool = False
    hides: frozenset[str] = frozenset()


# Rows on a page -> their states by block id (the item key, as sections() cuts it).
States = Callable[[list[dict]], dict[str, ItemState]]


def notice_ref(blocks: list | None) -> tuple[int, int] | None:
    """(first outbox row id, page) of a notice message, read from its blocks as Slack sends
    them back with a button press; None for any other message."""
    for block in blocks or []:
        block_id = str((block or {}).get("block_id") or "")
        if block_id.startswith(NOTICE_REF):
            first, _, page = block_id[len(NOTICE_REF):].partition(":")
            # ASCII digits only: str.isdigit() takes "²", which int() then refuses.
            if re.fullmatch("[0-9]{1,18}", first) and re.fullmatch("[0-9]{1,9}", page):
                return int(first), max(1, int(page))
    return None


def _fit(text: str) -> str:
    """A section's text (escaped once: escaping again changes nothing) within Slack's limit."""
    text = mrkdwn_escape(text)
    if len(text) <= MAX_SECTION:
        return text
    cut = text[:MAX_SECTION - len(CUT)]
    amp = cut.rfind("&")  # never half an entity
    if amp >= len(cut) - 5 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + CUT


def _with_state(section: dict, state: ItemState | None) -> dict:
    if state is None:
        return section
    text = section["text"] + "".join("\n" + mrkdwn_escape(line) for line in state.lines)
    buttons = None if state.closed else [
        b for b in section["buttons"] or [] if b.get("action_id") not in state.hides] or None
    return {**section, "text": text, "buttons": buttons}


def render_slack(rows: list[dict], page: int = 1, states: States | None = None) -> Rendered:
    """One group of outbox rows as one Slack message: page `page` of its items (most urgent
    first, MAX_SLACK_ITEMS a page) with "Previous" / "Next" buttons when they do not all fit,
    each item with what was done to it (`states`) when the message is drawn again."""
    rule = rendering.rule_of(rows)
    if rule == Rule.URGENT_ISSUE:
        # The issue as typed (plain text: no formatting, no mention), one part of a long one.
        p = rows[0]["payload"]
        part, parts = p.get("part", 1), p.get("parts", 1)
        blocks = render_blocks("slack/escalation.json.j2", raised_by=p["raised_by"], area=p["area"],
                               at=p["at"], pieces=plain_pieces(p["text"]), issue_id=p["issue_id"],
                               part=part, parts=parts)
        return Rendered(mrkdwn_escape(
            f"Urgent MAPPA issue #{p['issue_id']} from {p['raised_by']} ({p['area']})"
            + (f", part {part} of {parts}" if parts > 1 else "")), blocks)
    ctx = rendering.context(rows)
    if rule == "escalation":
        return _render_escalation(rows, ctx, page, states)
    first_id = rows[0].get("id")
    # Rows are paged before their lines are made: an escalation may hold thousands.
    shown = page_items(rendering.ordered(rows), page, MAX_SLACK_ITEMS, NOTICE_NAV,
                       {"o": first_id} if first_id is not None else {})
    found = states(shown.items) if states else {}
    sections = [{**s, "text": _fit(s["text"])} for s in (
        _with_state(s, found.get(s["block_id"])) for s in rendering.sections(
            rule, shown.items, escape=mrkdwn_escape, code="`", buttons=_buttons))]
    ref = f"{NOTICE_REF}{first_id}:{shown.page}" if first_id is not None else ""
    blocks = render_blocks(f"slack/notice_{rule}.json.j2", sections=sections, nav=shown.nav,
                           ref=ref, **ctx)
    # What a phone's lock screen shows: what the message holds, in words.
    text = mrkdwn_escape(ctx["headline"]) if ctx.get("headline") else \
        f"{blocks[0]['text']['text']}: {len(rows)} item(s)"
    return Rendered(text, blocks)


def _render_escalation(rows: list[dict], ctx: dict, page: int = 1,
                       states: States | None = None) -> Rendered:
    """Summary first: counts by kind and by chair over every item, then one short page of
    them (most urgent, then most overdue, first; the notice pager's Previous / Next for the
    rest) with Acknowledge, and "Acknowledge all shown" where that is safe
    (bot/channels/escalation.py)."""
    first_id = rows[0].get("id")
    shown = page_items(escalation.ordered(rows), page, escalation.SLACK_SHOWN, NOTICE_NAV,
                       {"o": first_id} if first_id is not None else {})
    s = escalation.summarise(rows, shown.items)
    found = states(shown.items) if states else {}
    sections = [{**x, "text": _fit(x["text"])} for x in (
        _with_state(x, found.get(x["block_id"])) for x in rendering.sections(
            "escalation", shown.items, escape=mrkdwn_escape, code="`", buttons=_buttons))]
    # An item already acknowledged (its line says so) is not acknowledged again in bulk.
    s.ack_all = ack_all = escalation.ack_all_rows(
        [r for r in shown.items if not getattr(found.get(r["item_key"][:255]), "closed", False)])
    ref = f"{NOTICE_REF}{first_id}:{shown.page}" if first_id is not None else ""
    blocks = render_blocks("slack/notice_escalation.json.j2", s=s, sections=sections,
                           ack_all=escalation.ack_value(ack_all) if ack_all else "",
                           nav=shown.nav, ref=ref, page=shown.page, first=shown.first,
                           last=shown.last, **ctx)
    return Rendered(f"{blocks[0]['text']['text']}: {s.total:,} item(s)", blocks)


# How many times the interactive client (answers, modals, the App Home) waits out a 429 and
# tries again, as slack_sdk's handler does: sleeping Retry-After.
INTERACTIVE_RATE_LIMIT_RETRIES = 2


def interactive_client(settings) -> AsyncWebClient:
    """The Web API client the Slack app answers people with (views, chat.postEphemeral...):
    a rate-limited call is retried after Retry-After (slack_sdk's
    AsyncRateLimitErrorRetryHandler), beside the default retry of a dropped connection."""
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    client.retry_handlers.append(
        AsyncRateLimitErrorRetryHandler(max_retry_count=INTERACTIVE_RATE_LIMIT_RETRIES))
    return client


class _DeliveryClient(AsyncWebClient):
    """The Web API client delivery posts with: a redirect is never followed (aiohttp would
    follow a 301, 302 or 303 as a GET without the message and count the target's answer),
    so only Slack's own 200 for the POST counts as sent; any 3xx is a failure, retried."""

    async def _request(self, *, http_verb, api_url, req_args):
        return await super()._request(http_verb=http_verb, api_url=api_url,
                                      req_args={**req_args, "allow_redirects": False})


def _for_delivery(client: AsyncWebClient | None) -> AsyncWebClient | None:
    """The client as delivery uses it (a _DeliveryClient with the same token, URL and
    session). A 429 must reach the transport, which pauses the channel for Retry-After and
    leaves the rest of the batch uncharged, instead of the call sleeping inside the run: a
    client given with a rate-limit retry handler (the Slack app's) is copied without it."""
    if client is None or isinstance(client, _DeliveryClient):
        return client
    return _DeliveryClient(
        token=client.token, base_url=client.base_url, timeout=client.timeout, ssl=client.ssl,
        proxy=client.proxy, session=client.session,
        trust_env_in_session=client.trust_env_in_session, logger=client._logger,
        retry_handlers=[h for h in client.retry_handlers
                        if not isinstance(h, AsyncRateLimitErrorRetryHandler)])


class SlackTransport(Transport):
    name = Channel.SLACK
    address_label = "the Slack user id "

    def __init__(self, client: AsyncWebClient | None = None, missing: str | None = None):
        self.client = _for_delivery(client)
        self.missing = missing  # why there is no client to send with (not_configured)

    @classmethod
    def from_settings(cls, settings) -> SlackTransport:
        if not settings.slack_bot_token:
            return cls(None, missing="SLACK_BOT_TOKEN is not set")
        return cls(AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url))

    def address_problem(self, address: str) -> str | None:
        return slack_user_problem(address)

    def not_configured(self) -> str | None:
        return self.missing

    @classmethod
    def render(cls, rows: list[dict]) -> Rendered:
        return render_slack(rows)  # page 1; the "Next" button's listener draws the others

    async def send(self, address: str, message: Rendered) -> tuple[str, str] | None:
        """Post the message; where Slack put it (the DM's channel id and the message's ts),
        kept on its outbox rows so that a button on it redraws only that message."""
        try:
            response = await self.client.chat_postMessage(channel=address, text=message.text,
                                                          blocks=message.blocks)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = (exc.response.data or {}).get("error", "") if isinstance(exc.response.data, dict) else ""
            if status == 429:
                retry = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                # The workspace's limit, not this message's: the channel pauses.
                raise DeliveryError("Slack rate limit (429)", permanent=False, retry_after=(
                    float(retry) if retry and str(retry).isdigit() else None),
                    pause=True) from None
            if error in PERMANENT_SLACK_ERRORS:
                raise DeliveryError(f"Slack: {error}", permanent=True) from None
            raise DeliveryError(f"Slack: HTTP {status} {error}".strip(), permanent=False) from None
        except DeliveryError:
            raise
        except Exception as exc:  # connection refused, timeouts, bad gateways
            raise DeliveryError(f"Slack: {type(exc).__name__}: {exc}", permanent=False) from None
        channel, ts = response.get("channel"), response.get("ts")
        # (Cut to the columns' sizes: a value cut short never matches a press, so is safe.)
        return (str(channel)[:64], str(ts)[:32]) if channel and ts else None
