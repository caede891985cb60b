"""Each e-mail stands alone when the relay misbehaves (issue 22.1): a real aiosmtpd server
that drops connections after taking a message, stalls one past SMTP_TIMEOUT, or answers
421 after 20 messages on a connection. Every message arrives in the one run, none is given
up, and a retry repeats at most the one message in flight at each drop.

On main before the fix, one drop charged every message queued behind it an attempt: with
the first two behaviours 1 message of 40 arrived in the run, and the rest were charged for
nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import itertools
import threading

import pytest
from aiosmtpd.controller import Controller

from bot.channels.email import smtp
from bot.delivery.worker import deliver_pending
from bot.settings import Settings
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import outbox
from tests.delivery.test_delivery import NOW, email_notes
from tests.slack_harness import free_port

pytestmark = pytest.mark.http

TIMEOUT = 3.0  # SMTP_TIMEOUT: long enough that a loaded machine does not trip it by itself


class Relay:
    """A real SMTP server (aiosmtpd) with the habits of real public-sector relays.

    `drop_first`: each of the first N connections takes its first message (stores it) and
    then closes without answering, so the sender never hears the 250.
    `stall`: the Nth message overall (1-based) is stored, then answered only after far
    longer than SMTP_TIMEOUT.
    `cap`: after this many messages on one connection, MAIL gets "421 too many messages"
    and the connection is closed.
    `drop_always`: every connection takes its first message and closes (a broken relay)."""

    def __init__(self, drop_first: int = 0, stall: int | None = None, cap: int | None = None,
                 drop_always: bool = False):
        self.received: list[str] = []  # X-Mappa-Group of each message stored
        self.drops = 0       # connections the relay closed after taking a message
        self.stalls = 0
        self.refusals = 0    # 421s
        self.connections = 0
        self._lock = threading.Lock()
        relay, counter = self, itertools.count(1)
        per_connection: dict[int, dict] = {}

        def state(session) -> dict:
            key = id(session)
            if key not in per_connection:
                with relay._lock:
                    relay.connections += 1
                    per_connection[key] = {"n": relay.connections, "messages": 0}
            return per_connection[key]

        class Handler:
            async def handle_MAIL(self, server, session, envelope, address, options):
                conn = state(session)
                if cap is not None and conn["messages"] >= cap:
                    relay.refusals += 1
                    asyncio.get_running_loop().call_soon(server.transport.close)
                    return "421 4.7.0 too many messages on this connection"
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                conn = state(session)
                conn["messages"] += 1
                group = email.message_from_bytes(envelope.original_content)["X-Mappa-Group"]
                with relay._lock:
                    relay.received.append(group)
                nth = next(counter)
                if conn["messages"] == 1 and (drop_always or conn["n"] <= drop_first):
                    relay.drops += 1
                    server.transport.abort()  # taken, and no 250 ever sent
                    return "250 never heard"
                if stall is not None and nth == stall:
                    relay.stalls += 1
                    await asyncio.sleep(TIMEOUT * 20)  # cancelled when the sender gives up
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
        self.controller.start()
        self.port = self.controller.port

    def close(self) -> None:
        self.controller.stop()


def _settings(port: int) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                    smtp_timeout=TIMEOUT, mail_from="mappa-bot@example.org")


def _plan(engine, n: int) -> set[str]:
    """n chasers to n different agency contacts: n messages."""
    notes = email_notes(n)
    outbox.plan(engine, notes, NOW, NudgeRules())
    return set(notes["group_key"])


def _attempts(engine) -> dict[str, int]:
    return {r["status"] + str(r["id"]): r["attempts"] for r in outbox.list_rows(engine, limit=10_000)}


BEHAVIOURS = {
    "drops": dict(drop_first=3),
    "stall": dict(stall=5),
    "421": dict(cap=20),
    "all three": dict(drop_first=3, stall=25, cap=20),
}


@pytest.mark.parametrize("n", [40, 200])
@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_every_message_arrives_in_one_run_whatever_the_relay_does(sqlite_engine, behaviour, n):
    _every_message_arrives(sqlite_engine, Relay(**BEHAVIOURS[behaviour]), n)


def test_every_message_arrives_in_one_run_on_both_databases(engine):
    _every_message_arrives(engine, Relay(**BEHAVIOURS["all three"]), 120)


def _every_message_arrives(engine, relay: Relay, n: int) -> None:
    groups = _plan(engine, n)
    try:
        report = asyncio.run(deliver_pending(engine, _settings(relay.port), None, NOW))
        # Every message arrived in this one run; none was given up or left untried.
        assert set(relay.received) == groups
        assert report.failed == 0 and report.not_tried == 0
        counts = outbox.counts(engine)
        assert "dead" not in counts
        # Charged an attempt: only the message in flight at each drop or stall (the relay
        # took it, the sender never heard the 250). A 421 charges nothing.
        charged = [a for a in _attempts(engine).values() if a]
        assert len(charged) == report.retrying == relay.drops + relay.stalls
        assert charged == [1] * len(charged)
        # Those are sent again once their backoff passes: a duplicate for each drop, at most.
        arrivals = len(relay.received)
        later = asyncio.run(deliver_pending(engine, _settings(relay.port), None,
                                            NOW + dt.timedelta(minutes=2)))
        assert later.rows_sent == report.retrying and outbox.counts(engine) == {"sent": n}
        duplicates = len(relay.received) - len(groups)
        assert duplicates == len(relay.received) - arrivals <= relay.drops + relay.stalls
    finally:
        relay.close()


def test_a_relay_that_drops_every_connection_leaves_the_rest_uncharged(sqlite_engine, caplog):
    """Reconnecting is bounded: after MAX_FAILED_CONNECTIONS connections lost without a
    250, the rest of the batch waits for the next run, charged nothing, in one log line."""
    groups = _plan(sqlite_engine, 40)
    relay = Relay(drop_always=True)
    try:
        report = asyncio.run(deliver_pending(sqlite_engine, _settings(relay.port), None, NOW))
    finally:
        relay.close()
    limit = smtp.MAX_FAILED_CONNECTIONS
    assert relay.connections == limit and relay.drops == limit
    assert report.retrying == limit and report.not_tried == len(groups) - limit
    assert report.failed == 0 and outbox.counts(sqlite_engine) == {"pending": 40}
    assert sorted(_attempts(sqlite_engine).values()) == [0] * (40 - limit) + [1] * limit
    assert report.waiting_lines() == [
        f"{40 - limit} email message(s) ({40 - limit} item(s)) were not tried in this run and "
        f"wait for the next, with no attempt counted: the SMTP server dropped {limit} "
        "connections in this run"]
    paused = [r for r in caplog.records if "delivery paused" in r.getMessage()]
    assert len(paused) == 1
    # They are due again a minute later, with the charged ones' first backoff step.
    assert not outbox.due_groups(sqlite_engine, NOW + dt.timedelta(seconds=59))
    assert len(outbox.due_groups(sqlite_engine, NOW + dt.timedelta(seconds=61))) == 40
