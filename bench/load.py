"""Load: 50 clients sending a mix of `/mappa` commands to `mappa serve` (loopback only).

    python bench/load.py [--db sqlite|postgres] [--clients 50] [--seconds 60] [--size 7000]

`mappa serve` runs in its own process on the synthetic region (SQLite file or a fresh
PostgreSQL database). Each client is a different person (national and Grampian
co-ordinators, SOG chairs, chairs and staff: different scopes) and sends signed commands
back to back, waiting only for the acknowledgement: `status` with a period no one asked
for before (a random range, quarter or year), topics, `status compare`, `due N` with
random N, `overdue`, `case REF` and `help`. One more person, otherwise idle, asks `help`
every second throughout. Checks: every acknowledgement within 3 s, every answer within
10 s, the server's resident memory below 1 GB, the idle person's help within 2 s. Slack's
side is a local stand-in; nothing leaves the machine.

The product's modules, SQLAlchemy, pandas and the tests' Slack stand-in are imported inside
the functions that measure with them: the driver that starts every measurement stays
small, and each measuring process loads only what it measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script (`python bench/load.py`): make `bench` importable
    sys.path.insert(0, str(ROOT))

from bench.regions import drop_database, ensure_data, make_database  # noqa: E402

TOPICS = ("all", "level2", "level3", "attendance", "contributions", "custody", "minutes",
          "disclosure")
LIMITS = {"ack_s": 3.0, "answer_s": 10.0, "rss_mb": 1024.0, "idle_help_s": 2.0}


def command_mix(rng: random.Random, refs: list[str]) -> str:
    """One command: most ask for something no one asked for before."""
    roll = rng.random()
    if roll < 0.40:  # a period no one has asked for: a range, a quarter or a year
        start = dt.date(2021, 4, 1) + dt.timedelta(days=rng.randrange(0, 5 * 365))
        kind = rng.random()
        if kind < 0.7:
            end = start + dt.timedelta(days=rng.randrange(7, 800))
            period = f"{start}..{end}"
        elif kind < 0.85:
            period = f"{start.year}-{(start.year + 1) % 100:02d}-Q{rng.randrange(1, 5)}"
        else:
            period = f"{start.year}-{(start.year + 1) % 100:02d}"
        return f"status {rng.choice(TOPICS)} {period}"
    if roll < 0.55:
        return f"status {rng.choice(TOPICS)}"
    if roll < 0.62:
        return f"status compare {rng.choice(['2024-25', '2025-26', '2026-27-Q2', '2026-27-Q3'])}"
    if roll < 0.77:
        return f"due {rng.randrange(0, 90)}"
    if roll < 0.85:
        return "overdue"
    if roll < 0.95:
        return f"case {rng.choice(refs)}"
    return "help"


def run_load(server_url: str, stand_in, users: list[str], clients: int, seconds: float,
             refs: list[str] | None = None, idle_user: str | None = None,
             max_requests: int = 100_000, mix: bool = True, rss_of: int | None = None,
             seed: int = 1) -> dict:
    """Drive the server; `users[k % len(users)]` is client k's person. With `mix`, the
    command mix above (else `status` and every fourth `due`). With `idle_user`, that person
    asks `help` every second. With `rss_of`, that process's resident memory is sampled."""
    from tests.slack_harness import command_body, post, sign

    acks: list[float] = []
    errors: list[str] = []
    sent: dict[str, float] = {}
    in_ack: list[tuple[float, str]] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    counter = iter(range(max_requests))
    refs = refs or ["GRA-0101"]
    rss: list[float] = []
    help_times: list[tuple[float, float]] = []  # (seconds into the run, answer time)
    begun = time.monotonic()

    def client(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        while time.monotonic() < stop:
            try:
                i = next(counter)
            except StopIteration:
                return
            text = command_mix(rng, refs) if mix else ("due" if i % 4 == 3 else "status")
            name = f"load{i}"
            body = command_body(users[k % len(users)], text, stand_in.response_url(name))
            t = time.monotonic()
            try:
                status, out, took = post(server_url + "/slack/events", body, sign(body))
            except Exception as exc:  # noqa: BLE001  (counted, not raised)
                with lock:
                    errors.append(type(exc).__name__)
                continue
            with lock:
                if status == 200:
                    acks.append(took)
                    if out:  # answered in the acknowledgement itself
                        in_ack.append((took, json.loads(out).get("text", "")))
                    else:
                        sent[name] = t
                else:
                    errors.append(f"HTTP {status}")

    def prober() -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            name = f"idle{n}"
            body = command_body(idle_user, "help", stand_in.response_url(name))
            t = time.monotonic()
            status, _, _ = post(server_url + "/slack/events", body, sign(body))
            if status == 200:
                try:
                    got = stand_in.wait_for(f"/response/{name}", timeout=30)[0]["at"]
                    help_times.append((t - begun, got - t))
                except AssertionError:
                    help_times.append((t - begun, float("inf")))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))

    def sampler() -> None:
        while time.monotonic() < stop + 15:
            total = sum(_status_mb(pid, "VmRSS") for pid in process_tree(rss_of))
            if not total:
                return
            rss.append(total)
            time.sleep(0.25)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    if idle_user:
        threads.append(threading.Thread(target=prober))
    if rss_of:
        threading.Thread(target=sampler, daemon=True).start()
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(stand_in.posts("/response/load")) < len(sent):
        time.sleep(0.1)
    answers = {c["path"].rsplit("/", 1)[1]: c for c in stand_in.posts("/response/load")}
    waits = sorted([answers[n]["at"] - t for n, t in sent.items() if n in answers]
                   + [took for took, _ in in_ack])
    kinds: dict[str, int] = {}
    for said in [c["body"].get("text", "") for c in answers.values()] + [s for _, s in in_ack]:
        kind = ("still working" if said.startswith("Still working") else
                "busy" if said.startswith("mappa-bot is busy") else
                "late" if said.startswith("This is taking longer") else
                "error" if said.startswith("Sorry, something went wrong") else "answered")
        kinds[kind] = kinds.get(kind, 0) + 1
    acks_sorted = sorted(acks)
    helps = [h for _, h in help_times]
    q = lambda xs, p: xs[min(len(xs) - 1, int(p * (len(xs) - 1)))] if xs else None  # noqa: E731
    return {
        "clients": clients, "seconds": round(elapsed, 1), "requests": len(acks) + len(errors),
        "acknowledged": len(acks), "within_3s": sum(1 for a in acks if a < LIMITS["ack_s"]),
        "ack_p50": statistics.median(acks) if acks else None, "ack_p95": q(acks_sorted, 0.95),
        "ack_max": max(acks) if acks else None,
        "answered": len(waits), "answer_kinds": kinds,
        "answer_p50": statistics.median(waits) if waits else None,
        "answer_p95": q(waits, 0.95), "answer_max": waits[-1] if waits else None,
        "within_10s": sum(1 for w in waits if w < LIMITS["answer_s"]),
        "idle_help_n": len(helps), "idle_help_max": max(helps) if helps else None,
        "idle_help_p50": statistics.median(helps) if helps else None,
        "rss_max_mb": max(rss) if rss else None,
        "errors": errors[:20], "error_count": len(errors),
    }


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (the server and its worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]
        except OSError:
            pass
    return out


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def passed(r: dict) -> bool:
    return (r["error_count"] == 0 and r["within_3s"] == r["acknowledged"] > 0
            and r["answered"] == r["acknowledged"] == r["within_10s"]
            and (r["rss_max_mb"] or 0) < LIMITS["rss_mb"]
            and r["idle_help_n"] > 0 and r["idle_help_max"] < LIMITS["idle_help_s"]
            and r["answer_kinds"].get("error", 0) == 0)


LOAD_PEOPLE = [  # (roles, area): national and regional scopes, every role that may ask
    ("coordinator", None), ("coordinator", "Grampian"), ("sog_chair", None),
    ("sog_chair", "Grampian"), ("chair", "Grampian"), ("staff", "Grampian"), ("staff", None),
]


def add_load_people(engine, clients: int) -> tuple[list[str], str]:
    """One person per client (cycling through LOAD_PEOPLE's scopes and roles), and one idle
    person; returns their Slack ids."""
    from sqlalchemy import text

    users = []
    with engine.begin() as conn:
        for k in range(clients + 1):
            roles, area = LOAD_PEOPLE[k % len(LOAD_PEOPLE)]
            slack = f"ULOAD{k:04d}"
            conn.execute(text("INSERT INTO person (person_id, name, email, slack_user_id, roles, "
                              "area, agency) VALUES (:p, :n, NULL, :s, :r, :a, NULL)"),
                         {"p": f"load-{k}", "n": f"Load {k}", "s": slack, "r": roles, "a": area})
            users.append(slack)
    return users[:-1], users[-1]


def serve_and_load(url: str, data: Path, clients: int, seconds: float) -> dict:
    """Import `data` into the database at `url`, start `mappa serve` on it, drive it."""
    from sqlalchemy import text

    from mappa_core.storage import db
    from mappa_core.storage.importer import import_directory
    from tests.slack_harness import SIGNING_SECRET, SlackStandIn, free_port, stop, wait_until_up

    engine = db.make_engine(url)
    db.ensure_schema(engine)
    assert import_directory(engine, data).ok
    users, idle = add_load_people(engine, clients)
    with engine.connect() as conn:
        refs = list(conn.execute(text("SELECT ref FROM individual ORDER BY ref")).scalars())
    engine.dispose()
    stand_in, port = SlackStandIn(), free_port()
    env = {**os.environ, "MAPPA_DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-load",
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": stand_in.api_url(),
           "SMTP_HOST": ""}
    log = data.parent / f"load-serve-{os.getpid()}.log"
    server = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port),
                               "--env-file", os.devnull], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        wait_until_up(port, server, output=lambda: log.read_text()[-3000:])
        result = run_load(f"http://127.0.0.1:{port}", stand_in, users, clients, seconds,
                          refs=refs, idle_user=idle, rss_of=server.pid)
        tree = process_tree(server.pid)
        # Each process's own peak, summed: an upper bound on the whole server's peak.
        result["peak_mb"] = sum(_status_mb(pid, "VmHWM") for pid in tree)
        result["processes"] = len(tree)
    finally:
        stop(server)
        stand_in.close()
    text_ = log.read_text()
    result["server_tracebacks"] = text_.count("Traceback")
    log.unlink(missing_ok=True)
    result["passed"] = passed(result) and result["server_tracebacks"] == 0
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--size", type=int, default=7000)
    args = p.parse_args()
    data = ensure_data(args.size)
    url = make_database(args.db, args.size) if args.db == "postgres" else \
        f"sqlite:///{data.parent / f'load-{args.size}-{uuid.uuid4().hex[:6]}.db'}"
    try:
        result = serve_and_load(url, data, args.clients, args.seconds)
    finally:
        drop_database(url)
        if url.startswith("sqlite"):
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    print(json.dumps({"db": args.db, "size": args.size, **result}, indent=1))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
