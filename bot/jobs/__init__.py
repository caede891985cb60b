"""Scheduled jobs (digests, escalations, delivery); not built yet, see issue 4."""
