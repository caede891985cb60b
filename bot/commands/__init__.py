"""Slack slash-command handlers (`/mappa ...`); not built yet, see issue 3."""
