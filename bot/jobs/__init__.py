"""Scheduled jobs: idempotent ticks that plan into the outbox, and the delivery worker."""
