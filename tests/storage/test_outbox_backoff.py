"""The backoff rule (mappa_core/storage/outbox/backoff.py), as a table: after a failed
attempt, when a message is due again and whether it is given up."""

import pytest

from mappa_core.storage.outbox import MAX_ATTEMPTS, after_failure


@pytest.mark.parametrize(("attempts_before", "permanent", "retry_after", "attempts", "given_up",
                          "delay"), [
    # Transient failures: 1, 2, 4, 8, 16, 32 minutes, then an hour at most.
    (0, False, None, 1, False, 60),
    (1, False, None, 2, False, 120),
    (2, False, None, 3, False, 240),
    (3, False, None, 4, False, 480),
    (4, False, None, 5, False, 960),
    (5, False, None, 6, False, 1920),
    (6, False, None, 7, False, 3600),  # 3,840 s capped at an hour
    # The eighth failed attempt gives up (about two hours after the first).
    (7, False, None, 8, True, 3600),
    (12, False, None, 13, True, 3600),
    # The sender's Retry-After wins over the doubling, whatever it is.
    (0, False, 30.0, 1, False, 30.0),
    (5, False, 0.0, 6, False, 0.0),
    (6, False, 7200.0, 7, False, 7200.0),
    (7, False, 5.0, 8, True, 5.0),
    # A permanent failure gives up at once.
    (0, True, None, 1, True, 60),
    (3, True, 10.0, 4, True, 10.0),
])
def test_backoff_table(attempts_before, permanent, retry_after, attempts, given_up, delay):
    then = after_failure(attempts_before, permanent, retry_after)
    assert (then.attempts, then.given_up, then.delay) == (attempts, given_up, delay)


def test_a_message_failing_every_time_is_given_up_after_about_two_hours():
    attempts, waited = 0, 0.0
    while True:
        then = after_failure(attempts, permanent=False)
        attempts = then.attempts
        if then.given_up:
            break
        waited += then.delay
    assert attempts == MAX_ATTEMPTS == 8
    assert waited == 60 + 120 + 240 + 480 + 960 + 1920 + 3600  # 2 h 2 min
