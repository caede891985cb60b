"""When a message that failed is tried again, and when it is given up: the rule alone.

Pure: numbers in, numbers out, no database and no clock, so that the rule can be read in
one place and tested with a table (tests/storage/test_outbox_backoff.py).
"""

from __future__ import annotations

from dataclasses import dataclass

# A message is given up (and reported to the co-ordinator) at its eighth failed attempt:
# with the delays below that is about two hours after the first.
MAX_ATTEMPTS = 8
FIRST_DELAY = 60.0    # seconds before the second attempt
LONGEST_DELAY = 3600.0  # the delay doubles each time, up to an hour


@dataclass(frozen=True)
class Next:
    """What becomes of a message after a failed attempt: its attempts so far (this one
    included), whether it is given up, and how many seconds until it is due again."""

    attempts: int
    given_up: bool
    delay: float


def after_failure(attempts_before: int, permanent: bool,
                  retry_after: float | None = None) -> Next:
    """A failure charged to a message that had `attempts_before` failed attempts.

    A permanent failure, or the MAX_ATTEMPTS-th, gives up. Otherwise the message is due
    again after the sender's own `retry_after` (Slack's or Teams' Retry-After), else 60 s
    doubled for each earlier attempt, at most an hour."""
    attempts = attempts_before + 1
    given_up = permanent or attempts >= MAX_ATTEMPTS
    if retry_after is not None:
        delay = retry_after
    else:
        delay = min(FIRST_DELAY * 2 ** (attempts - 1), LONGEST_DELAY)
    return Next(attempts, given_up, delay)

