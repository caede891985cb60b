"""What a person asks of the bot, computed whatever channel carried the request: `/mappa`
commands parsed (parser.py) and answered (handlers.py), what is done to an item (actions.py),
an urgent issue raised (escalate.py), who may see what (access.py), and the worker
processes answers are computed in (workers.py). The Slack listeners
(bot/channels/slack/listeners/) call these; a Teams or e-mail door calls the same. They
reach the database only through mappa_core/storage. The replies are still Slack's Block
Kit (handlers.Reply, rendered with bot/channels/slack/blocks.py)."""
