"""Slack: direct messages through chat.postMessage, in Block Kit with the nudge buttons.

Templates: templates/slack/notice_<rule>.json.j2 (and escalation.json.j2 for `/mappa
escalate`). The buttons' action ids are the ones bot/slack_app.py listens for.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels import notice
from bot.channels.base import DeliveryError, Rendered, Transport
from bot.templates import mrkdwn_escape, render_json
from mappa_core.rules.addresses import slack_user_problem

MAX_SLACK_ITEMS = 20  # each item is two blocks; Slack allows 50 a message
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


def nudge_buttons(item_key: str, kind: str) -> list[dict]:
    """The action buttons a nudge for one item carries (used by the digest templates)."""
    buttons = []
    if kind == "minutes":
        buttons += [("Minutes issued", "minutes_issued"), ("RMP ratified", "rmp_ratified")]
    if kind == "contribution":
        buttons += [("Contribution received", "contribution_received")]
    buttons += [("Snooze 1 day", "snooze_1wd"), ("Snooze 3 days", "snooze_3wd"),
                ("Record reason", "record_reason")]
    elements = [{"type": "button", "text": {"type": "plain_text", "text": label},
                 "action_id": action_id, "value": item_key} for label, action_id in buttons]
    elements.append({"type": "datepicker", "action_id": "snooze_until", "placeholder": {
        "type": "plain_text", "text": "Snooze until"}})
    return [{"type": "actions", "block_id": item_key[:255], "elements": elements}]


def _buttons(rule: str, row: dict, p: dict) -> list | None:
    if rule == "escalation":
        return [ack_button(p.get("item_key") or row["item_key"], row["stage"])]
    if rule == "digest" and p.get("kind") not in notice.PLAIN_KINDS:
        return nudge_buttons(p["item_key"], p["kind"])[0]["elements"]
    return None


def render_slack(rows: list[dict]) -> Rendered:
    rule = notice.rule_of(rows)
    if rule == "urgent_issue":
        p = rows[0]["payload"]
        blocks = render_json("slack/escalation.json.j2", raised_by=p["raised_by"], area=p["area"],
                             at=p["at"], text=p["text"], issue_id=p["issue_id"],
                             agencies=p["agencies"])
        return Rendered(f"Urgent MAPPA issue #{p['issue_id']}", blocks)
    ctx = notice.context(rows)
    sections = notice.sections(rule, notice.ordered(rows), escape=mrkdwn_escape, code="`",
                               buttons=_buttons)
    shown, rest = sections[:MAX_SLACK_ITEMS], sections[MAX_SLACK_ITEMS:]
    overflow = ""
    if rest:
        overflow = "\n".join(s["text"] for s in rest[:30])[:2800]
        overflow += f"\n_{len(rest)} more without buttons above; `/mappa due` lists them all._"
    blocks = render_json(f"slack/notice_{rule}.json.j2", sections=shown, overflow=overflow, **ctx)
    text = f"{blocks[0]['text']['text']}: {len(rows)} item(s)"
    return Rendered(text, blocks)


class SlackTransport(Transport):
    name = "slack"
    address_label = "the Slack user id "

    def __init__(self, client: AsyncWebClient | None = None):
        self.client = client

    @classmethod
    def from_settings(cls, settings) -> SlackTransport:
        return cls(AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url))

    def address_problem(self, address: str) -> str | None:
        return slack_user_problem(address)

    @classmethod
    def render(cls, rows: list[dict]) -> Rendered:
        return render_slack(rows)

    async def send(self, address: str, message: Rendered) -> None:
        try:
            await self.client.chat_postMessage(channel=address, text=message.text,
                                               blocks=message.blocks)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = (exc.response.data or {}).get("error", "") if isinstance(exc.response.data, dict) else ""
            if status == 429:
                retry = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
                raise DeliveryError("Slack rate limit (429)", permanent=False, retry_after=(
                    float(retry) if retry and str(retry).isdigit() else None)) from None
            if error in PERMANENT_SLACK_ERRORS:
                raise DeliveryError(f"Slack: {error}", permanent=True) from None
            raise DeliveryError(f"Slack: HTTP {status} {error}".strip(), permanent=False) from None
        except DeliveryError:
            raise
        except Exception as exc:  # connection refused, timeouts, bad gateways
            raise DeliveryError(f"Slack: {type(exc).__name__}: {exc}", permanent=False) from None
