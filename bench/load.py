"""Load: many concurrent `/mappa` commands against the bot's HTTP endpoint (loopback only).

    python bench/load.py [--clients 50] [--seconds 60] [--size 7000]

Each client sends signed `/mappa status` (and every fourth `/mappa due`) commands back to
back for the duration; the run is bounded in time and requests. Reports how many were
acknowledged, within 3 seconds, the acknowledgement p50/p95/max, answers received and
errors. Slack's side is a local stand-in; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_load(server_url: str, stand_in, users: list[str], clients: int, seconds: float,
             max_requests: int = 100_000) -> dict:
    from tests.slack_harness import command_body, post, sign

    acks: list[float] = []
    errors: list[str] = []
    names: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    counter = iter(range(max_requests))

    def client(k: int) -> None:
        while time.monotonic() < stop:
            try:
                i = next(counter)
            except StopIteration:
                return
            text = "due" if i % 4 == 3 else "status"
            name = f"load{i}"
            body = command_body(users[i % len(users)], text, stand_in.response_url(name))
            try:
                status, _, took = post(server_url + "/slack/events", body, sign(body))
            except Exception as exc:  # noqa: BLE001  (counted, not raised)
                with lock:
                    errors.append(type(exc).__name__)
                continue
            with lock:
                if status == 200:
                    acks.append(took)
                    names.append(name)
                else:
                    errors.append(f"HTTP {status}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(stand_in.posts("/response/load")) < len(names):
        time.sleep(0.1)
    answered = len(stand_in.posts("/response/load"))
    acks_sorted = sorted(acks)
    return {
        "clients": clients, "seconds": round(elapsed, 1), "requests": len(acks) + len(errors),
        "acknowledged": len(acks), "within_3s": sum(1 for a in acks if a < 3.0),
        "ack_p50": statistics.median(acks) if acks else None,
        "ack_p95": acks_sorted[int(0.95 * (len(acks_sorted) - 1))] if acks else None,
        "ack_max": max(acks) if acks else None, "answered": answered, "errors": errors[:20],
        "error_count": len(errors),
    }


def main() -> int:
    sys.path.insert(0, str(ROOT))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--size", type=int, default=7000)
    args = p.parse_args()
    from bot.server import build_asgi
    from bot.settings import Settings
    from mappa_core import db
    from mappa_core.demo import write_demo_data
    from mappa_core.importer import import_directory
    from tests.slack_harness import SIGNING_SECRET, BotServer, SlackStandIn

    data = ROOT / "bench" / "data" / f"load-{args.size}"
    if not (data / "individuals.csv").exists():
        write_demo_data(data, individuals=args.size, years=5, seed=1, until=dt.date(2026, 11, 26))
    dbfile = ROOT / "bench" / "data" / f"load-{args.size}.db"
    dbfile.unlink(missing_ok=True)
    engine = db.make_engine(f"sqlite:///{dbfile}")
    db.ensure_schema(engine)
    assert import_directory(engine, data).ok
    stand_in = SlackStandIn()
    settings = Settings(slack_bot_token="xoxb-load", slack_signing_secret=SIGNING_SECRET,
                        slack_api_url=stand_in.api_url())
    server = BotServer(build_asgi(settings, engine, today=lambda: dt.date(2026, 11, 26)))
    from sqlalchemy import text

    with engine.connect() as conn:
        users = list(conn.execute(text("SELECT slack_user_id FROM person WHERE slack_user_id IS NOT NULL "
                                       "AND slack_user_id != ''")).scalars())
    try:
        result = run_load(server.url, stand_in, users, args.clients, args.seconds)
    finally:
        server.close()
        stand_in.close()
    print(json.dumps(result, indent=1))
    return 0 if result["error_count"] == 0 and result["within_3s"] == result["acknowledged"] else 1


if __name__ == "__main__":
    sys.exit(main())
