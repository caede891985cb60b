"""The idempotency keys of requests from Slack (mappa_core.storage.seen_requests): the first
claim of a key wins whichever replica makes it, a key is kept long enough to outlast
Slack's 5-minute signature window, and old keys are removed. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import func, select
from sqlmodel import SQLModel

from mappa_core.storage import db, seen_requests

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def test_the_first_claim_wins_and_a_replay_is_recognised(engine):
    assert seen_requests.claim(engine, "press U1 1700000000.1", NOW)
    assert not seen_requests.claim(engine, "press U1 1700000000.1", NOW)
    assert seen_requests.claim(engine, "press U1 1700000000.2", NOW)
    # Stored as a hash: what a payload carried (an item key, a case ref) is not kept.
    table = SQLModel.metadata.tables["seen_request"]
    with engine.connect() as conn:
        stored = list(conn.execute(select(table.c.key)).scalars())
    assert len(stored) == 2 and all(len(k) == 64 and "U1" not in k for k in stored)


def test_two_replicas_racing_for_one_key_agree_on_one_winner(engine):
    """Twenty claims of one key at once, over two engines (two replicas' pools): one wins."""
    other = db.make_engine(engine.url.render_as_string(hide_password=False))
    results: list[bool] = []
    start = threading.Barrier(20)

    def claim(eng):
        start.wait()
        results.append(seen_requests.claim(eng, "command U1 trigger-1", NOW))

    threads = [threading.Thread(target=claim, args=(engine if i % 2 else other,))
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    other.dispose()
    assert sorted(results) == [False] * 19 + [True]


def test_keys_outlast_the_signature_window_and_are_pruned_after_an_hour(engine):
    assert seen_requests.claim(engine, "k", NOW)
    # Slack accepts a request up to 5 minutes either side of its timestamp: a replay can
    # come 10 minutes after the first arrival at most. Still recognised, pruning or not.
    assert not seen_requests.claim(engine, "k", NOW + dt.timedelta(minutes=11), prune=True)
    table = SQLModel.metadata.tables["seen_request"]
    later = NOW + seen_requests.KEEP + dt.timedelta(seconds=1)
    assert seen_requests.claim(engine, "other", later, prune=True)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar() == 1
