"""One log format for the bot and uvicorn: text lines, or JSON lines (MAPPA_LOG_FORMAT=json).

uvicorn is started with `log_config=None`, so its loggers keep no handlers of their own
and their records reach the root handler configured here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
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
