"""`mappa outbox list` and `mappa outbox retry ID`: see and replay notifications that failed.

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

import datetime as dt

from bot.cli.common import Col, UsageError, engine, settings, table


def outbox_arguments(o) -> None:
    osub = o.add_subparsers(dest="outbox_command", required=True)
    ol = osub.add_parser("list", help="the newest outbox rows, optionally of one state")
    ol.add_argument("--state", choices=["pending", "sending", "sent", "dead", "failed", "superseded"],
                    help="failed is the same as dead: given up")
    ol.add_argument("--limit", type=int, default=50)
    ol.set_defaults(func=cmd_outbox)
    ore = osub.add_parser("retry", help="send a failed row (and the rest of its message) again")
    ore.add_argument("id", type=int)
    ore.set_defaults(func=cmd_outbox)


ARGUMENTS = {"outbox": outbox_arguments}


OUTBOX_COLUMNS = (Col("id", 7, ">"), Col("state", 8), Col("channel", 7), Col("rule", 16),
                  Col("attempts", 8, ">"), Col("planned (UTC)", 16),
                  Col("recipient / last error"))


def cmd_outbox(args) -> int:
    from mappa_core.storage import outbox

    store = engine()
    if args.outbox_command == "retry":
        reset = outbox.retry(store, args.id, dt.datetime.now(settings().tz))
        if reset is None:
            raise UsageError(f"there is no outbox row {args.id}")
        if not reset:
            print(f"outbox row {args.id} is already sent or being sent; nothing to retry")
            return 1
        print(f"outbox row {args.id}: {reset} row(s) of its message will be sent at the next "
              "delivery (`mappa jobs run deliver`, or within a minute under `mappa serve`)")
        return 0
    state = "dead" if args.state == "failed" else args.state
    rows = outbox.list_rows(store, state, args.limit)
    if not rows:
        print("no outbox rows" + (f" in state {state}" if state else ""))
        return 0
    shown = []
    for r in rows:
        planned = r["planned_at"].astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if r["planned_at"] else ""
        error = " ".join((r["last_error"] or "").split())
        shown.append((r["id"], r["status"], r["channel"], r["rule"], r["attempts"], planned,
                      str(r["recipient_id"]) + (f"  {error}" if error else "")))
    print(table(OUTBOX_COLUMNS, shown))
    return 0
