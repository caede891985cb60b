"""Events Slack sends (Bolt's `app.event`): the App Home being opened."""

from . import app_home_opened


def register(app, bot) -> None:
    app_home_opened.register(app, bot)
