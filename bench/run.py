"""Benchmark mappa-bot at regional, national and ten-times-national scale.

    python bench/run.py [--sizes 7000,100000,1000000] [--dbs sqlite,postgres] [--runs 5]
    python bench/run.py --load [--sizes 7000] [--dbs sqlite,postgres] [--seconds 60]

Synthetic data comes from `mappa demo-data` (five years of history). For each size and
database it measures the import, `status all` in-process and as a whole command, the Slack
endpoint (acknowledgement and answer, p95, signed requests; every kind of answer and
the App Home from three kinds of person, issue 13's Speed), a day's digest planning,
1,000 emails to a local SMTP server (aiosmtpd in its own process, bench/smtp_sink.py), and
a hand-written SQL baseline for `l2-reviews`.
Each timing runs in a fresh subprocess so that its peak memory (max RSS) is its own.
Times are the median of --runs runs after a warm-up, with min and max. Results go to
bench/RESULTS.md (and bench/results.json).

`--imports` measures only the import: a fresh import and a re-import of the same unchanged
files, each in its own process (seconds and peak memory), with the machine's load average
as each began and ended (the machine may be shared); figures in the Import table of
bench/RESULTS.md (and bench/import_results.json).

The product's modules, SQLAlchemy, pandas and the tests' Slack stand-in are imported inside
the functions that measure with them: the driver that starts every measurement stays
small, and each measuring process loads only what it measures.

`--load` measures instead the minute of load of bench/load.py (50 people sending a mix of
commands to `mappa serve`, an idle person's `help`, the server's memory) for each size and
database; its figures go to bench/LOAD.md (and bench/load_results.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script (`python bench/run.py`): make `bench` importable
    sys.path.insert(0, str(ROOT))

from bench.regions import (  # noqa: E402
    DATA, PG_ADMIN, UNTIL, drop_database, ensure_data, make_database,
)

AS_OF = UNTIL.isoformat()

TARGETS = {  # SPEC benchmark issue: (7k, 100k, 1M)
    "status_inprocess": (0.3, 2, 20),
    "slack_answer_p95": (0.3, 2.5, None),
    "slack_ack_p95": (0.1, 0.1, 0.1),
    # Issue 13's Speed section: every answer (due, overdue, status, case) within 3 s of the
    # command, the acknowledgement within 100 ms, and an App Home open within 2 s.
    "slack_every_answer_max": (3, 3, None),
    "slack_every_ack_p95": (0.1, 0.1, 0.1),
    "home_open_max": (2, 2, None),
    "digest_planning": (1, 10, 100),
    "import": (5, 60, 600),
    "peak_mb": (300, 1024, 4096),
    "baseline_ratio": (3, 3, 3),
    "emails_1000": (10, 10, 10),
    "pack": (5, 30, None),
}
# Issue 26, item 5: a fresh import and a re-import of the same unchanged files, seconds.
IMPORT_TARGETS = {100000: {"import": 8, "reimport": 5, "peak_mb": 1024},
                  1000000: {"import": 60, "peak_mb": 1024}}


# --------------------------------------------------------------------------- helpers


def run_child(*args: str, env: dict | None = None, timeout: float = 3600) -> dict:
    """Run `python bench/run.py --child ...` and return its JSON answer."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "--child", *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def maxrss_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage: ru_maxrss survives exec,
    so a child would report its parent's peak from before the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summary(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "runs": len(times)}


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


# --------------------------------------------------------------------------- children


def child(args: list[str]) -> dict:
    """One measurement in this (fresh) process."""
    what, url = args[0], args[1]
    runs = int(args[2]) if len(args) > 2 and args[2].isdigit() else 5
    from mappa_core.storage import db

    engine = db.make_engine(url)
    as_of = dt.date.fromisoformat(AS_OF)
    if what == "import":
        from mappa_core.storage.importer import import_directory

        db.ensure_schema(engine)
        t = time.perf_counter()
        report = import_directory(engine, Path(args[2]))
        took = time.perf_counter() - t
        assert report.ok, report.errors[:5]
        return {"seconds": took, "rows": sum(f.rows for f in report.files), "peak_mb": maxrss_mb()}
    if what == "status":
        from mappa_core.answers import status

        status(engine, as_of)  # warm-up
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            data = status(engine, as_of)
            times.append(time.perf_counter() - t)
        l2 = next(i for i in data["indicators"] if i["id"] == "l2-reviews")
        return {**summary(times), "peak_mb": maxrss_mb(),
                "l2": [l2["numerator"], l2["denominator"]]}
    if what == "l2only":
        from mappa_core.answers import status

        def once():  # what `mappa status level2` does
            res = status(engine, as_of, "level2")["indicators"][0]
            return res["numerator"], res["denominator"]

        once()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            nd = once()
            times.append(time.perf_counter() - t)
        return {**summary(times), "l2": list(nd), "peak_mb": maxrss_mb()}
    if what == "baseline":
        from bench.baseline import l2_reviews_sql

        l2_reviews_sql(engine, as_of)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            nd = l2_reviews_sql(engine, as_of)
            times.append(time.perf_counter() - t)
        return {**summary(times), "l2": list(nd), "peak_mb": maxrss_mb()}
    if what == "digest":
        from zoneinfo import ZoneInfo

        from bot.jobs.ticks import plan_job
        from mappa_core.rules.planner import NudgeRules

        now = dt.datetime(2026, 11, 26, 8, 30, tzinfo=ZoneInfo("Europe/London"))
        plan_job(engine, "digest", now, NudgeRules())
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            notes = plan_job(engine, "digest", now, NudgeRules())
            times.append(time.perf_counter() - t)
        return {**summary(times), "notifications": len(notes), "peak_mb": maxrss_mb()}
    if what == "pack":
        from bot.exports import quarterly_html
        from mappa_core.rules import reports
        from mappa_core.rules.periods import quarter_of
        from mappa_core.storage.queries import load_records
        from mappa_core.rules.reports import quarterly_pack

        period = quarter_of(as_of)

        def once():
            records = load_records(engine, since=reports.pack_since(period, as_of))
            return quarterly_html(quarterly_pack(records, period, as_of), {})

        once()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            html = once()
            times.append(time.perf_counter() - t)
        return {**summary(times), "kb": len(html) // 1024, "peak_mb": maxrss_mb()}
    if what == "email":
        return email_child(engine, runs)
    if what == "slack":
        return slack_child(engine, url, runs)
    raise SystemExit(f"unknown child {what}")


def email_child(engine, runs: int) -> dict:
    import asyncio
    from zoneinfo import ZoneInfo

    import pandas as pd

    from bot.delivery.worker import deliver_pending
    from bot.settings import Settings
    from mappa_core.storage import db, outbox
    from mappa_core.rules.planner import NudgeRules

    db.ensure_schema(engine)
    now = dt.datetime(2026, 11, 26, 9, 0, tzinfo=ZoneInfo("Europe/London"))
    times = []
    received = DATA / f"smtp-{os.getpid()}.log"
    received.write_text("")
    sink = subprocess.Popen([sys.executable, str(ROOT / "bench" / "smtp_sink.py"), str(received)],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())
        settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                            mail_from="bench@example.org", smtp_timeout=10)
        for run in range(runs + 1):
            notes = pd.DataFrame([{
                "rule": "chaser", "item_key": f"contribution:B{run}-{i}:housing", "stage": "missing",
                "recipient_id": f"email:c{i}@example.org", "channel": "email",
                "address": f"c{i}@example.org", "urgency": "normal",
                "group_key": f"chaser|bench{run}|c{i}", "dedupe_key": f"bench|{run}|{i}",
                "area": "Bench", "payload": {"kind": "contribution", "level": None,
                "ref": f"B-{i}", "meeting_id": f"M{i}", "agency": "housing",
                "deadline": "2026-11-20", "overdue": True, "working_days_left": -4,
                "detail": None, "item_key": f"contribution:M{i}:housing", "stage": "missing",
                "area": "Bench"}} for i in range(1000)])
            outbox.plan(engine, notes, now, NudgeRules())
            before = len(received.read_text().splitlines())
            t = time.perf_counter()
            report = asyncio.run(deliver_pending(engine, settings, None, now))
            took = time.perf_counter() - t
            arrived = len(received.read_text().splitlines()) - before
            assert arrived == 1000 == report.rows_sent, (arrived, report)
            if run:  # the first is the warm-up
                times.append(took)
    finally:
        sink.terminate()
        sink.wait()
        received.unlink(missing_ok=True)
    return {**summary(times), "peak_mb": maxrss_mb()}


def slack_child(engine, url: str, runs: int) -> dict:
    from bot.server import build_asgi
    from bot.settings import Settings
    from tests.slack_harness import (
        SIGNING_SECRET, BotServer, SlackStandIn, command_body, post, sign,
    )

    stand_in = SlackStandIn()
    settings = Settings(database_url=url, slack_bot_token="xoxb-bench",
                        slack_signing_secret=SIGNING_SECRET, slack_api_url=stand_in.api_url())
    server = BotServer(build_asgi(settings, engine, today=lambda: dt.date.fromisoformat(AS_OF)))
    # A co-ordinator of the synthetic region (national) asking for `status all`.
    from sqlalchemy import text

    with engine.begin() as conn:
        conn.execute(text("UPDATE person SET area = NULL WHERE roles LIKE '%coordinator%'"))
        user = conn.execute(text("SELECT slack_user_id FROM person WHERE roles LIKE '%coordinator%' "
                                 "AND slack_user_id IS NOT NULL")).scalars().first()
    acks, answers, cold = [], [], None
    try:
        # As a deployment routes requests only once /readyz says ready: the worker
        # processes have started and warmed up (bot.commands.home.warm).
        bot = server.server.config.app.state.bolt.mappa
        started = time.monotonic()
        while not bot.workers_ready() and time.monotonic() - started < 300:
            time.sleep(0.05)
        ready = time.monotonic() - started
        every = every_answer(engine, server, stand_in, runs)
        for i in range(max(runs, 20) + 1):
            name = f"b{i}"
            body = command_body(user, "status all", stand_in.response_url(name))
            t = time.perf_counter()
            status, out, ack = post(server.url + "/slack/events", body, sign(body))
            assert status == 200
            if not out:  # else refused in the acknowledgement ("still working")
                stand_in.wait_for(f"/response/{name}", timeout=300)
            answer = time.perf_counter() - t
            # A late answer's work goes on: let it end, or the next is refused at once.
            settled(server.server.config.app.state.bolt.mappa, user)
            if i == 0:
                cold = answer  # computes; later calls within a minute use the cache
                continue
            acks.append(ack)
            answers.append(answer)
            if i % 5 == 0:  # every fifth request finds the cache cleared: the worst case
                server.server.config.app.state.bolt.mappa.cache.clear()
    finally:
        server.close()
        stand_in.close()
    return {"ack_p95": p95(acks), "answer_p95": p95(answers), "answer_cold": cold,
            "answer_median": statistics.median(answers), "requests": len(acks),
            "ready_s": ready, **every, "peak_mb": maxrss_mb()}


def settled(bot, user: str) -> None:
    """Wait until `user`'s work is over (after a late answer it goes on), so that their
    next command is not refused as "still working"."""
    deadline = time.monotonic() + 300
    while bot.in_flight.get(user) and time.monotonic() < deadline:
        time.sleep(0.02)


def every_answer(engine, server, stand_in, runs: int) -> dict:
    """Issue 13's Speed: the answer to each kind of command, from three kinds of person
    (the national co-ordinator, whose lists are the longest, an area's SOG chair and a
    chair), and the App Home each opens, timed from the signed request to what the bot
    sends (the response_url post, the views.publish call, as the stand-in records them).
    Every fifth round starts with the change stamp bumped, so that every process's
    answer cache (the worker processes' too) starts again: the worst case."""
    from sqlalchemy import text

    from mappa_core.storage import db
    from tests.slack_harness import command_body, event_body, post, sign

    with engine.connect() as conn:
        people = dict(conn.execute(text(
            "SELECT roles, MIN(slack_user_id) FROM person WHERE slack_user_id IS NOT NULL "
            "AND slack_user_id != '' AND area IS NOT NULL GROUP BY roles")).all())
        national = conn.execute(text("SELECT slack_user_id FROM person WHERE area IS NULL "
                                     "AND roles LIKE '%coordinator%'")).scalars().first()
        ref = conn.execute(text("SELECT MIN(ref) FROM individual WHERE level > 1")).scalar()
    users = [national, people["sog_chair"], people["chair"]]
    texts = ["due", "overdue", "due 365", "status level2", f"case {ref}"]
    acks, answers, homes, home_acks, cold_home = [], [], [], [], None
    kinds: dict[str, int] = {}
    url = server.url + "/slack/events"
    bot = server.server.config.app.state.bolt.mappa
    for round_ in range(max(runs, 5)):
        if round_ % 5 == 0:
            with engine.begin() as conn:
                db.bump_change_stamp(conn)
        for user in users:
            before = len(stand_in.posts("/api/views.publish"))
            body = event_body(user)
            t = time.monotonic()
            status, _, ack = post(url, body, sign(body), "application/json")
            assert status == 200
            took = stand_in.wait_for("/api/views.publish", before + 1, timeout=300)[-1]["at"] - t
            home_acks.append(ack)
            homes.append(took)
            cold_home = took if cold_home is None else cold_home
            for i, words in enumerate(texts):
                name = f"e{round_}-{user}-{i}"  # a path: no spaces
                body = command_body(user, words, stand_in.response_url(name))
                t = time.monotonic()
                status, out, ack = post(url, body, sign(body))
                assert status == 200
                acks.append(ack)
                if out:  # refused in the acknowledgement: counted, and not an answer
                    kinds["refused"] = kinds.get("refused", 0) + 1
                    settled(bot, user)
                    continue
                reply = stand_in.wait_for(f"/response/{name}", timeout=300)[0]
                answers.append(reply["at"] - t)
                late = "taking longer than usual" in json.dumps(reply["body"])
                kinds["late" if late else "answered"] = kinds.get(
                    "late" if late else "answered", 0) + 1
                settled(bot, user)
    return {"every_ack_p95": p95(acks + home_acks), "every_ack_max": max(acks + home_acks),
            "every_answer_p95": p95(answers), "every_answer_max": max(answers),
            "every_requests": len(acks), "every_kinds": kinds, "home_p95": p95(homes),
            "home_max": max(homes),
            "home_cold": cold_home, "home_opens": len(homes)}


# --------------------------------------------------------------------------- driver


START_JSON = ROOT / "bench" / "start_results.json"


def start_cost(runs: int, tree: Path = ROOT) -> dict:
    """What a command pays before it does anything (issue 27: a command pays only for what
    it uses). Bare Python and `import pandas, sqlalchemy` (the yardstick: the two libraries
    any answer from the records needs), then `mappa --version`, `mappa status --help` and
    `mappa status all` at 7,000 individuals (SQLite), each a whole process. They run in
    turn, round after round, so that the machine's changing speed touches all alike; each
    figure is the median of `runs` rounds after a warm-up, and each mappa command's ratio to
    the yardstick is the median of its round-by-round ratios. `tree`: the checkout whose
    code the mappa commands run (its directory first on PYTHONPATH), to measure an earlier
    commit with this script."""
    db_path = DATA / "start-7000.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    run_child("import", f"sqlite:///{db_path}", str(ensure_data(7000)))
    mappa = [sys.executable, "-m", "bot.cli"]
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "pandas_sqlalchemy": [sys.executable, "-c", "import pandas, sqlalchemy"],
        "version": [*mappa, "--version"],
        "status_help": [*mappa, "status", "--help"],
        "status_all_7000": [*mappa, "status", "all", "--as-of", AS_OF],
    }
    env = {**os.environ, "MAPPA_DATABASE_URL": f"sqlite:///{db_path}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)  # as an operator's shell would have it

    def once(argv: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run(argv, env=env, cwd=tree, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t

    for argv in commands.values():
        once(argv)  # warm-up: the files in the page cache
    rounds = [{name: once(argv) for name, argv in commands.items()} for _ in range(runs)]
    db_path.unlink(missing_ok=True)
    out = {name: summary([r[name] for r in rounds]) for name in commands}
    for name in ("version", "status_help", "status_all_7000"):
        out[name]["ratio"] = statistics.median(r[name] / r["pandas_sqlalchemy"] for r in rounds)
    out["load_average"] = os.getloadavg()[0]
    return out


def whole_command(url: str, runs: int) -> dict:
    env = {**os.environ, "MAPPA_DATABASE_URL": url}
    cmd = [sys.executable, "-m", "bot.cli", "status", "all", "--as-of", AS_OF, "--json"]
    def once() -> tuple[float, float]:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, code, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak memory
        took = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(code)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read().decode()[-2000:]}")
        proc.stderr.close()
        return took, usage.ru_maxrss / 1024

    once()
    measured = [once() for _ in range(runs)]
    return {**summary([t for t, _ in measured]), "peak_mb": max(m for _, m in measured)}


def versions(pg_url: str | None) -> dict:
    out = {"python": platform.python_version(), "cores": os.cpu_count(),
           "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
           "machine": platform.machine()}
    import sqlite3

    out["sqlite"] = sqlite3.sqlite_version
    try:
        from sqlalchemy import create_engine, text

        with create_engine(pg_url or PG_ADMIN).connect() as conn:
            out["postgresql"] = conn.execute(text("SHOW server_version")).scalar()
    except Exception as exc:  # noqa: BLE001
        out["postgresql"] = f"unavailable ({type(exc).__name__})"
    out["commit"] = commit()
    return out


def commit(tree: Path = ROOT) -> str:
    """The commit measured; `+changes` when the measured code differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "mappa_core", "bot",
                                "bench/run.py", "bench/regions.py", "pyproject.toml"], cwd=tree,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"
    if not head:  # not a git checkout (an exported tree): name it by hand in the JSON
        return "?"
    return f"{head}+changes" if dirty else head


def measure(size: int, kind: str, runs: int, skip: set[str], measured_commit: str) -> dict:
    data = ensure_data(size)
    url = make_database(kind, size)
    result: dict = {"size": size, "db": kind, "commit": measured_commit,
                    "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                    "generate_s": float((data / ".done").read_text().strip().rstrip("s"))}
    try:
        print(f"[{size} {kind}] import ...", flush=True)
        result["import"] = run_child("import", url, str(data))
        print(f"[{size} {kind}] status ...", flush=True)
        result["status"] = run_child("status", url, str(runs))
        result["status_command"] = whole_command(url, runs)
        result["l2only"] = run_child("l2only", url, str(runs))
        result["baseline"] = run_child("baseline", url, str(runs))
        print(f"[{size} {kind}] digest ...", flush=True)
        result["digest"] = run_child("digest", url, str(runs))
        print(f"[{size} {kind}] quarterly pack ...", flush=True)
        result["pack"] = run_child("pack", url, str(runs))
        if "slack" not in skip:
            print(f"[{size} {kind}] slack ...", flush=True)
            result["slack"] = run_child("slack", url, str(runs))
            result["slack"]["load_average"] = os.getloadavg()[0]  # a busy machine shows here
        if "email" not in skip:
            print(f"[{size} {kind}] email ...", flush=True)
            result["email"] = run_child("email", url, str(runs))
        result["load_average"] = os.getloadavg()[0]  # the machine is shared: say how busy
    finally:
        drop_database(url)
    return result


def measure_imports(size: int, kind: str, runs: int, measured_commit: str) -> dict:
    """A fresh import then a re-import of the same files, `runs` times, each pair on a new
    database and each import in its own process (its peak memory is its own)."""
    data = ensure_data(size)
    fresh, again, loads = [], [], []
    for _ in range(runs):
        url = make_database(kind, size)
        try:
            print(f"[{size} {kind}] import ...", flush=True)
            before = os.getloadavg()[0]
            fresh.append(run_child("import", url, str(data)))
            print(f"[{size} {kind}] re-import ...", flush=True)
            again.append(run_child("import", url, str(data)))
            loads.append((before, os.getloadavg()[0]))
        finally:
            drop_database(url)

    def of(results: list[dict]) -> dict:
        return {**summary([r["seconds"] for r in results]),
                "peak_mb": max(r["peak_mb"] for r in results), "rows": results[0]["rows"]}

    return {"size": size, "db": kind, "commit": measured_commit,
            "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "import": of(fresh),
            "reimport": of(again), "load": [min(a for a, _ in loads), max(b for _, b in loads)]}


def import_lines(results: list[dict]) -> list[str]:
    """The Import section of RESULTS.md."""
    lines = ["", "## Import", "",
             "`mappa import` of the synthetic region's CSV files into an empty database, then a "
             "re-import of the same unchanged files (`python bench/run.py --imports`). Seconds: "
             "median of the runs (min-max), each import in its own process; peak MB its VmHWM. "
             "Load avg: the machine's 1-minute load average, lowest as a run began and highest "
             "as one ended: the machine (2 cores) is shared with other engineers' work, so a "
             "high figure means a slower import than a quiet machine gives. Targets (issue 26): "
             "1,000,000 under 60 s with a peak under 1 GB; 100,000 under 8 s, its re-import "
             "under 5 s.", "",
             "| size | db | commit, date | rows | import s | import peak MB | re-import s | "
             "re-import peak MB | load avg | targets |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        targets = IMPORT_TARGETS.get(r["size"], {})
        checks = []
        for key, label in (("import", "import"), ("reimport", "re-import")):
            if key in targets:
                value = r[key]["median"]
                checks.append(f"{label} {value:.1f} {'<' if value < targets[key] else '>='} "
                              f"{targets[key]} {'ok' if value < targets[key] else 'MISSED'}")
        if "peak_mb" in targets:
            peak = max(r["import"]["peak_mb"], r["reimport"]["peak_mb"])
            ok = peak < targets["peak_mb"]
            checks.append(f"peak {peak:.0f} {'<' if ok else '>='} {targets['peak_mb']} "
                          f"{'ok' if ok else 'MISSED'}")
        lines.append(
            f"| {r['size']:,} | {r['db']} | `{r['commit']}` {r['date']} | {r['import']['rows']:,} | "
            f"{fmt(r['import'])} | {r['import']['peak_mb']:.0f} | "
            f"{fmt(r['reimport'])} | {r['reimport']['peak_mb']:.0f} | "
            f"{r['load'][0]:.1f}-{r['load'][1]:.1f} | {'; '.join(checks) or '-'} |")
    return lines


def peak_of(r: dict) -> float:
    """The largest peak memory of one size and database's measurements."""
    return max(v.get("peak_mb", 0) for v in r.values() if isinstance(v, dict))


def ratio_of(r: dict) -> float:
    """The engine's l2-reviews time over the SQL baseline's."""
    return r["l2only"]["median"] / r["baseline"]["median"]


def fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def fmt(s: dict | None, key: str = "median") -> str:
    if not s:
        return "-"
    if "min" in s:
        return f"{s[key]:.3f} ({s['min']:.3f}-{s['max']:.3f})"
    return f"{s[key]:.3f}"


def start_lines(start: list[dict]) -> list[str]:
    """The start-cost table (bench/start_results.json), oldest row first."""
    if not start:
        return []
    lines = ["", "Start-up cost: what a command pays before it does anything, each a whole "
             "process (wall seconds, median of the rounds after a warm-up; the commands run "
             "in turn, round after round). The yardstick is `python -c \"import pandas, "
             "sqlalchemy\"`; × is a mappa command's time over it, the median of the rounds' "
             "ratios. Targets (issue 27): `mappa --version` and `mappa <command> --help` under "
             "0.3 ×; `mappa status all` at 7,000 individuals (SQLite) under 0.6 s on a quiet "
             "machine. Load avg: the machine's (1 min) as the measurement ended (2 cores). "
             "`python bench/run.py --start-only` measures this alone.", "",
             "| commit, date | rounds | bare Python s | pandas + SQLAlchemy s | `--version` s (×) | "
             "`status --help` s (×) | `status all` 7,000 s (×) | load avg |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in start:
        lines.append(
            f"| `{r.get('commit', '?')}` {r.get('date', '')} | {r['python']['runs']} | "
            f"{r['python']['median']:.3f} | {r['pandas_sqlalchemy']['median']:.3f} | "
            + " | ".join(f"{r[k]['median']:.3f} ({r[k]['ratio']:.2f})"
                         for k in ("version", "status_help", "status_all_7000"))
            + f" | {r['load_average']:.1f} |")
    return lines


def write_results(results: list[dict], env: dict, path: Path,
                  start: list[dict] | None = None) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {env['cores']} cores, {env['memory_gb']} GiB, {env['machine']}, "
        f"Python {env['python']}, SQLite {env['sqlite']}, PostgreSQL {env['postgresql']}. "
        "Each row gives the commit it measured and when.",
        "Synthetic data: `mappa demo-data --years 5 --seed 1 --until 2026-11-26`; as of "
        f"{AS_OF}, period 2026-27-Q3. Seconds: median of the runs after a warm-up (min-max); "
        "the Slack endpoint's figures are the 95th percentile of 20 signed requests, every "
        "fifth with the answer cache cleared. Peak MB: the largest of the measurements "
        "below. demo-data s: writing the size's CSV files (`mappa demo-data`, once per size). "
        "Load avg: the machine's (1 min) as the row's measurements ended; the machine is "
        "shared with other work, so where it is above the cores the figures are pessimistic. "
        "Produced by `make bench` (`python bench/run.py`); what was changed after "
        "profiling, with figures before and after, is in [PROFILING.md](PROFILING.md).",
        "",
        "| size | db | commit, date | import s | status all in-process s | status all command s | "
        "/mappa ack p95 s | /mappa answer p95 s | digest planning s | 1,000 emails s | "
        "quarterly pack s | engine l2 s | SQL l2 s | ratio | peak MB | demo-data s | load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- | --- |",
    ]
    for r in results:
        slack = r.get("slack") or {}
        lines.append(
            f"| {r['size']:,} | {r['db']} | `{r.get('commit', '?')}` {r.get('date', '')} | "
            f"{r['import']['seconds']:.1f} | {fmt(r['status'])} | "
            f"{fmt(r['status_command'])} | "
            f"{slack.get('ack_p95', float('nan')):.3f} | {slack.get('answer_p95', float('nan')):.3f} | "
            f"{fmt(r['digest'])} | {fmt(r.get('email'))} | {fmt(r.get('pack'))} | {fmt(r['l2only'])} | "
            f"{fmt(r['baseline'])} | {ratio_of(r):.1f} | {peak_of(r):.0f} | "
            f"{fmt_seconds(r.get('generate_s'))} | {fmt_seconds(r.get('load_average'))} |"
        )
    lines += ["", "Checks against the targets of the benchmark issue:", ""]
    for r in results:
        idx = {7000: 0, 100000: 1, 1000000: 2}.get(r["size"])
        if idx is None:
            continue
        checks = []
        def check(name, value, key, idx=idx, checks=checks):  # noqa: E306
            target = TARGETS[key][idx]
            if target is None or value is None:
                return
            checks.append(f"{name} {value:.3g} {'<' if value < target else '>='} {target} "
                          f"{'ok' if value < target else 'MISSED'}")
        slack = r.get("slack") or {}
        check("status in-process", r["status"]["median"], "status_inprocess")
        check("answer p95", slack.get("answer_p95"), "slack_answer_p95")
        check("ack p95", slack.get("ack_p95"), "slack_ack_p95")
        check("every answer max", slack.get("every_answer_max"), "slack_every_answer_max")
        check("every ack p95", slack.get("every_ack_p95"), "slack_every_ack_p95")
        check("App Home open max", slack.get("home_max"), "home_open_max")
        check("digest planning", r["digest"]["median"], "digest_planning")
        check("import", r["import"]["seconds"], "import")
        check("peak MB", peak_of(r), "peak_mb")
        check("engine/SQL ratio", ratio_of(r), "baseline_ratio")
        if r.get("email"):
            check("1,000 emails", r["email"]["median"], "emails_1000")
        if r.get("pack"):
            check("quarterly pack", r["pack"]["median"], "pack")
        lines.append(f"- {r['size']:,} on {r['db']}: " + "; ".join(checks))
    lines += start_lines(start or [])
    lines += ["", "Slack at scale (issue 13's Speed): `due`, `overdue`, `due 365`, `status level2` "
              "and `case REF` from the national co-ordinator, an area's SOG chair and a chair, "
              "and the App Home each opens (`app_home_opened` to `views.publish`), 5 rounds, "
              "the first with every answer cache emptied (the change stamp bumped). Limits: "
              "acknowledgement 0.1 s, every answer 3 s, the App Home 2 s. Commands: how many, "
              "and how many were answered, answered late (\"taking longer than usual\", "
              "at MAPPA_ANSWER_SECONDS) or refused. Ready: seconds from the server's start "
              "until /readyz would say ready (the worker processes started and warmed up); "
              "measuring starts then, as a deployment routes requests. Load avg: the "
              "machine's (1 min) as the measurement ended (2 cores).", "",
              "| size | db | commit, date | ready s | commands | ack p95 / max s | "
              "answer p95 / max s | Home opens | Home first / p95 / max s | load avg |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        sl = r.get("slack") or {}
        if "every_answer_max" not in sl:
            continue
        lines.append(
            f"| {r['size']:,} | {r['db']} | `{r.get('commit', '?')}` {r.get('date', '')} | "
            f"{fmt_seconds(sl.get('ready_s'))} | {sl['every_requests']} ({', '.join(f'{v} {k}' for k, v in sl['every_kinds'].items())}) | "
            f"{sl['every_ack_p95']:.3f} / {sl['every_ack_max']:.3f} | "
            f"{sl['every_answer_p95']:.3f} / {sl['every_answer_max']:.3f} | {sl['home_opens']} | "
            f"{sl['home_cold']:.3f} / {sl['home_p95']:.3f} / {sl['home_max']:.3f} | "
            f"{sl.get('load_average', float('nan')):.1f} |")
    parts = [("import", "import"), ("status", "status in-process"),
             ("status_command", "status command"), ("l2only", "engine l2"),
             ("baseline", "SQL l2"), ("digest", "digest planning"), ("pack", "quarterly pack"),
             ("slack", "/mappa endpoint"), ("email", "1,000 emails")]
    lines += ["", "Peak memory (MB) of each measurement, each in its own process (VmHWM; the "
              "whole command's from its rusage):", "",
              "| size | db | " + " | ".join(label for _, label in parts) + " |",
              "| --- | --- |" + " --- |" * len(parts)]
    for r in results:
        cells = [f"{r[k]['peak_mb']:.0f}" if (r.get(k) or {}).get("peak_mb") else "-"
                 for k, _ in parts]
        lines.append(f"| {r['size']:,} | {r['db']} | " + " | ".join(cells) + " |")
    lines += ["", "l2-reviews numerator/denominator, engine vs the SQL baseline (an independent "
              "implementation of the chain rules; they should agree):", ""]
    for r in results:
        lines.append(f"- {r['size']:,} {r['db']}: engine {r['l2only']['l2']}, SQL {r['baseline']['l2']}")
    imports = ROOT / "bench" / "import_results.json"
    if imports.exists():
        lines += import_lines(json.loads(imports.read_text()))
    path.write_text("\n".join(lines) + "\n")


def measure_load(args, env: dict) -> int:
    """bench/load.py for each size and database, each in its own process; the figures go
    to bench/LOAD.md and bench/load_results.json."""
    json_path = ROOT / "bench" / "load_results.json"
    results = json.loads(json_path.read_text()) if json_path.exists() and not args.fresh else []
    ok = True
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in args.dbs.split(","):
            print(f"[{size} {kind}] load: {args.clients} clients for {args.seconds:.0f} s ...",
                  flush=True)
            load = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "load.py"), "--db", kind, "--size", str(size),
                 "--clients", str(args.clients), "--seconds", str(args.seconds)],
                cwd=ROOT, capture_output=True, text=True, timeout=args.seconds + 900)
            try:
                new = json.loads(load.stdout)
            except ValueError:
                raise RuntimeError(f"bench/load.py failed:\n{load.stderr[-3000:]}") from None
            ok &= bool(new["passed"])
            new.update(commit=env["commit"], date=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                       load_average=os.getloadavg()[0])
            results = [r for r in results if (r["size"], r["db"]) != (size, kind)] + [new]
            results.sort(key=lambda r: (r["size"], r["db"]))
            json_path.write_text(json.dumps(results, indent=1))
            write_load(results, env, ROOT / "bench" / "LOAD.md")
    print((ROOT / "bench" / "LOAD.md").read_text())
    return 0 if ok else 1


def write_load(results: list[dict], env: dict, path: Path) -> None:
    from bench.load import LIMITS

    lines = [
        "# Load: 50 people at once (bench/load.py)",
        "",
        f"Machine: {env['cores']} cores, {env['memory_gb']} GiB, Python {env['python']}, "
        f"SQLite {env['sqlite']}, PostgreSQL {env['postgresql']}. `mappa serve` in its own "
        "process (with its worker processes) on the synthetic region; each client a "
        "different person (national and regional co-ordinators and SOG chairs, chairs, staff) "
        "sending signed commands back to back, waiting only for the acknowledgement: 40% "
        "`status` with a period no one asked for before, the rest topics, `status compare`, "
        "`due N`, `overdue`, `case REF`, `help`. One more person asks `help` every second. "
        "Answers: the time from sending to the answer (at response_url, or in the "
        "acknowledgement for 'still working' and 'busy'). Memory: the server's processes' "
        "resident memory summed, sampled every 0.25 s. Load average: the machine's (1 min) "
        "as the run ended. Produced by `make bench BENCH_ARGS=--load` "
        "(`python bench/run.py --load`).",
        "",
        f"Limits: acknowledgement < {LIMITS['ack_s']:.0f} s, answer < {LIMITS['answer_s']:.0f} s, "
        f"resident memory < {LIMITS['rss_mb']:.0f} MB, idle person's help < "
        f"{LIMITS['idle_help_s']:.0f} s.",
        "",
        "| size | db | commit, date | s | requests | ack p50 / p95 / max s | answer p50 / p95 / "
        "max s | answered, still working, busy, late | idle help p50 / max s | RSS max MB | "
        "load avg | passed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        k = r["answer_kinds"]
        lines.append(
            f"| {r['size']:,} | {r['db']} | `{r.get('commit', '?')}` {r.get('date', '')} | "
            f"{r['seconds']:.0f} | {r['requests']:,} | {r['ack_p50']:.2f} / {r['ack_p95']:.2f} / "
            f"{r['ack_max']:.2f} | {r['answer_p50']:.2f} / {r['answer_p95']:.2f} / "
            f"{r['answer_max']:.2f} | {k.get('answered', 0)}, {k.get('still working', 0)}, "
            f"{k.get('busy', 0)}, {k.get('late', 0)} | {r['idle_help_p50']:.2f} / {r['idle_help_max']:.2f} | "
            f"{r['rss_max_mb']:.0f} | {r.get('load_average', float('nan')):.1f} | "
            f"{'yes' if r['passed'] else 'NO'} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2:])))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="7000,100000,1000000")
    p.add_argument("--dbs", default="sqlite,postgres")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--skip", default="", help="comma list: slack,email")
    p.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    p.add_argument("--fresh", action="store_true", help="forget earlier results")
    p.add_argument("--imports", action="store_true",
                   help="measure only a fresh import and a re-import (the Import table)")
    p.add_argument("--load", action="store_true",
                   help="measure bench/load.py's mix of commands instead (bench/LOAD.md)")
    p.add_argument("--seconds", type=float, default=60, help="--load: how long")
    p.add_argument("--clients", type=int, default=50, help="--load: how many people")
    p.add_argument("--report-only", action="store_true",
                   help="measure nothing: rewrite RESULTS.md from bench/results.json")
    p.add_argument("--start-only", action="store_true",
                   help="measure only the start-up cost (a row of its own in RESULTS.md)")
    p.add_argument("--tree", type=Path, default=ROOT,
                   help="--start-only: the checkout whose code to measure (default this one)")
    args = p.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    json_path = ROOT / "bench" / "results.json"
    # Earlier sizes stay in the table: a run replaces only the sizes and databases it measures.
    results = json.loads(json_path.read_text()) if json_path.exists() and not args.fresh else []
    env = versions(None)  # the commit as the run starts: what the children will import
    if args.load:
        return measure_load(args, env)
    if args.imports:
        start = json.loads(START_JSON.read_text()) if START_JSON.exists() else []
        imports_path = ROOT / "bench" / "import_results.json"
        done = json.loads(imports_path.read_text()) if imports_path.exists() else []
        for size in (int(s) for s in args.sizes.split(",")):
            for kind in args.dbs.split(","):
                new = measure_imports(size, kind, args.runs, env["commit"])
                done = [r for r in done if (r["size"], r["db"]) != (size, kind)] + [new]
                done.sort(key=lambda r: (r["size"], r["db"]))
                imports_path.write_text(json.dumps(done, indent=1))
                write_results(results, env, Path(args.out), start)
        print(Path(args.out).read_text())
        return 0
    start = json.loads(START_JSON.read_text()) if START_JSON.exists() else []
    if not args.report_only:
        # First, and quick: the start-up cost, one row per run (earlier rows stay).
        print("start-up cost ...", flush=True)
        row = start_cost(max(args.runs, 9), args.tree.resolve())
        row.update(commit=commit(args.tree.resolve()),
                   date=dt.datetime.now().strftime("%Y-%m-%d %H:%M"))
        start.append(row)
        START_JSON.write_text(json.dumps(start, indent=1))
    if args.report_only or args.start_only:
        write_results(results, env, Path(args.out), start)
        print(Path(args.out).read_text())
        return 0
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in args.dbs.split(","):
            new = measure(size, kind, args.runs, set(filter(None, args.skip.split(","))),
                          env["commit"])
            results = [r for r in results if (r["size"], r["db"]) != (size, kind)] + [new]
            results.sort(key=lambda r: (r["size"], r["db"]))
            json_path.write_text(json.dumps(results, indent=1))
            write_results(results, env, Path(args.out), start)
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
