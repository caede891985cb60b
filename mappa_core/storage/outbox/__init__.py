"""The outbox: planned notifications stored with unique dedupe keys, claimed by senders.

Three rooms, by what changes together, and the rule they share:
- `planning.py`: jobs insert what they plan (duplicate keys ignored) and read back what
  they planned before; non-urgent rows wait for working hours.
- `claims.py`: a delivery worker claims whole groups (one message each) with a conditional
  update (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so two replicas never claim the same
  row; a claim left by a stopped worker is released after `stale_after`, so nothing is
  lost (a crash mid-send may repeat that one message).
- `results.py`: each message marked sent, failed (retried later) or given up, and the
  failures the co-ordinator's digest reports; `mappa outbox list` and `retry`.
- `backoff.py`: when a failed message is tried again and when it is given up (pure).
- `contacts.py`: the addresses a sender looks up (Reply-To, a corrected address).

Callers use `outbox.<function>` from this package; the rooms are how it is kept.
"""

from .backoff import MAX_ATTEMPTS, Next, after_failure
from .claims import Claimed, claim, due_by_channel, due_groups, group_of, release_stale, renew_claim
from .contacts import coordinator_emails
from .results import (
    counts, list_rows, mark_failed, mark_reported, mark_sent, outcomes, postpone, queue, release,
    retry, unreported_failures,
)
from .planning import DIGEST_GROUP, held_for_working_hours, plan, recent_item_keys, snoozes_and_acks
from .rows import STATES, _table

__all__ = [
    "DIGEST_GROUP", "MAX_ATTEMPTS", "STATES", "Claimed", "Next", "_table", "after_failure",
    "claim", "coordinator_emails", "counts", "due_by_channel", "due_groups", "group_of",
    "held_for_working_hours", "list_rows", "mark_failed", "mark_reported", "mark_sent",
    "outcomes", "plan", "postpone", "queue", "recent_item_keys", "release", "release_stale",
    "renew_claim", "retry",
    "snoozes_and_acks", "unreported_failures",
]
