"""One log format for the bot and uvicorn: text lines, or JSON lines (MAPPA_LOG_FORMAT=json)
whose context (the job and its run, outbox ids, channel, error id) are fields of their own.

uvicorn is started with `log_config=None`, so its loggers keep no handlers of their own
and their records reach the root handler configured here.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
import uuid

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


# What every LogRecord has; anything else on a record came from `extra=` (or context()).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# The fields a line carries about the work it belongs to, in this order first.
CONTEXT_FIELDS = ("job", "run_id", "outbox_ids", "channel", "error_id", "request_id")
_CONTEXT: contextvars.ContextVar[tuple] = contextvars.ContextVar("mappa_log_context", default=())


def new_run_id() -> str:
    """An id for one run of a job, carried by every line the run logs."""
    return uuid.uuid4().hex[:12]


@contextlib.contextmanager
def context(**fields):
    """Every line logged inside (in this task, and threads it starts with to_thread) carries
    `fields` (job="deliver", run_id=...), unless the line sets the same field itself."""
    token = _CONTEXT.set(tuple({**dict(_CONTEXT.get()), **fields}.items()))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _plain(value):
    """A field's value as JSON can hold it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, the fields given with
    `extra=` or by `context()` (job, run_id, outbox_ids, channel, error_id, request_id...)
    as fields an operator can query, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = {k: v for k, v in vars(record).items()
                  if k not in _STANDARD and not k.startswith("_") and v is not None}
        for name in (*[n for n in CONTEXT_FIELDS if n in fields], *sorted(fields)):
            if name not in out:  # never over the four above
                out[name] = _plain(fields[name])
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


class BoltBodies(logging.Filter):
    """Bolt logs a request no listener handles with its whole body (block ids, button values:
    case references). Keep the line, drop the body."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("slack_bolt") and str(record.msg).startswith("Unhandled request"):
            record.msg, record.args = "Unhandled request (no listener for it; body not logged)", ()
        return True


def configure_logging(fmt: str = "text", level: int = logging.INFO, stream=None) -> None:
    """Route every logger (ours, uvicorn's, APScheduler's, Bolt's) to one handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(BoltBodies())
    handler.addFilter(ContextFields())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "apscheduler", "slack_bolt"):
        lg = logging.getLogger(name)
        for old in list(lg.handlers):
            lg.removeHandler(old)
        lg.setLevel(logging.NOTSET)  # the root's level decides
        lg.propagate = True
    # APScheduler says "Running job ..." and "executed successfully" for every run; our
    # own line per run carries the counts.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
