"""Every Slack listener, laid out by kind as in Bolt's starter template: `commands/`
(slash commands), `actions/` (buttons), `views/` (submitted forms), `events/` (Slack's
events). A listener is one module with `register(app, bot)`: it wires itself to the Bolt
app and does its work on `bot` (runtime.MappaSlack), inside `guard.guarded` for its audit
row and error id. Adding one: a module here, a line in its kind's `__init__.py`, and its
test, a signed request through the HTTP door as tests/channels/slack/test_forged_presses.py sends them
(docs/architecture.md, "Adding a Slack listener")."""

from . import actions, commands, events, views


def register(app, bot) -> None:
    for kind in (commands, actions, events, views):
        kind.register(app, bot)
