"""Submitted forms (Bolt's `app.view`): the reason form."""

from . import record_reason


def register(app, bot) -> None:
    record_reason.register(app, bot)
