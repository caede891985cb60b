"""What a person asks of the bot, computed whatever channel carried the request.

`/mappa` commands are parsed (parser.py), their arguments checked (checks.py: the one check
of a period, an area or a date that every door shares) and answered (handlers.py) as typed
answers (answers.py); what is done to an item (actions.py) and an urgent issue raised
(escalate.py) are answered the same way; who may see what is access.py, and the worker
processes answers are computed in are workers.py.

Nothing here knows a channel: no Block Kit, mrkdwn or Slack ids beyond the caller's
identity, and no import from bot.channels (tests/architecture/test_import_graph.py). A
channel's listeners call these functions and render the answers (Slack:
bot/channels/slack/answers.py; Teams and e-mail link pages the same way). They reach the
database only through mappa_core/storage."""
