"""mappa-bot edges: the `mappa` command line, Slack commands and scheduled jobs."""
