"""Prometheus metrics: what an operator watches (`/metrics`).

Counters and histograms live in prometheus-client's process registry; the outbox figures
are read from the database at each scrape (so every replica reports the same queue).
"""

from __future__ import annotations

import datetime as dt
import logging

from prometheus_client import (
    CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from mappa_core.rules.vocabulary import Channel
from mappa_core.storage import outbox

log = logging.getLogger("mappa.metrics")
CONTENT_TYPE = CONTENT_TYPE_LATEST

COMMAND_SECONDS = Histogram(
    "mappa_command_duration_seconds", "Time from a /mappa command's arrival to its answer",
    ["command"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30))
COMMANDS_REFUSED = Counter(
    "mappa_commands_refused_total", "Commands answered 'still working' or 'busy' at once",
    ["reason"])
HTTP_REFUSED = Counter(
    "mappa_http_refused_total", "Requests to /slack/events refused before Bolt saw them",
    ["status"])
JOB_SECONDS = Histogram(
    "mappa_job_duration_seconds", "Duration of each scheduled job run", ["job"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
JOB_LAST_SUCCESS = Gauge(
    "mappa_job_last_success_timestamp_seconds", "Unix time of each job's last successful run",
    ["job"])
DELIVERIES = Counter(
    "mappa_deliveries_total", "Messages the delivery worker handled, by channel and outcome "
    "(sent, retry, failed; not_tried: left uncharged for the next run as its channel paused)",
    ["channel", "outcome"])
CACHE_ENTRIES = Gauge(
    "mappa_answer_cache_entries", "Entries in the answer cache (bounded)", ["kind"])
BUILD = Info("mappa_build", "The version of mappa-bot this process runs")


def installed_version() -> str:
    """The installed distribution's version (as `mappa --version` says it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mappa-bot")
    except PackageNotFoundError:
        return "(not installed)"


BUILD.info({"version": installed_version()})


class OutboxCollector:
    """Outbox rows by state and channel, and how long the oldest due row has waited."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        now = dt.datetime.now(dt.UTC)
        rows, oldest = outbox.queue(self.engine, now)
        by_state = GaugeMetricFamily("mappa_outbox_rows", "Outbox rows by state and channel "
                                     "(every state of every channel, 0 included)",
                                     labels=["state", "channel"])
        found = {(status, channel): n for status, channel, n in rows}
        # Every pair, so that a query or an alert on a state sees 0 rather than no series.
        channels = sorted({c.value for c in Channel} | {c for _, c in found})
        for status in sorted({*outbox.STATES, *(s for s, _ in found)}):
            for channel in channels:
                by_state.add_metric([status, channel], found.get((status, channel), 0))
        yield by_state
        age = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:  # stored as UTC without a zone
                oldest = oldest.replace(tzinfo=dt.UTC)
            age = max(0.0, (now - oldest).total_seconds())
        yield GaugeMetricFamily("mappa_outbox_oldest_due_age_seconds",
                                "Seconds the oldest pending (due) outbox row has waited; 0 when "
                                "none", value=age)


def exposition(engine, cache=None) -> bytes:
    """The text `/metrics` serves: the process's metrics, then the outbox's."""
    if cache is not None:
        frames, answers = cache.sizes()
        CACHE_ENTRIES.labels("frames").set(frames)
        CACHE_ENTRIES.labels("answers").set(answers)
    out = generate_latest(REGISTRY)
    queue = CollectorRegistry(auto_describe=False)
    queue.register(OutboxCollector(engine))
    try:
        out += generate_latest(queue)
    except Exception as exc:  # the process's figures still help when the database is down
        log.warning("metrics: outbox unreadable: %s", type(exc).__name__)
    return out
