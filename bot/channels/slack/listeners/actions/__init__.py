"""Button presses (Bolt's `app.action`): one module per button or family of buttons."""

from . import escalate_agencies, item_buttons, page_due, page_notice, reason_button

# Every action id a button of ours carries (a kind's buttons: mappa_core/rules/kinds.py).
ACTION_IDS = (*item_buttons.ACTION_IDS, reason_button.ACTION_ID, *escalate_agencies.ACTION_IDS)


def register(app, bot) -> None:
    for listener in (page_due, page_notice, item_buttons, reason_button, escalate_agencies):
        listener.register(app, bot)
