"""The synthetic regions the benchmarks measure, and the databases they are imported into.

`ensure_data(size)` writes a region's CSV files once (`mappa demo-data`, five years of
history up to UNTIL) under bench/data; `make_database` gives a fresh SQLite file or a fresh
PostgreSQL database (on MAPPA_BENCH_POSTGRES_URL's server, else MAPPA_TEST_POSTGRES_URL's)
and `drop_database` removes it. bench/run.py and bench/load.py both build on these.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
UNTIL = dt.date(2026, 11, 26)
PG_ADMIN = os.environ.get("MAPPA_BENCH_POSTGRES_URL") or os.environ.get(
    "MAPPA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def ensure_data(size: int) -> Path:
    path = DATA / f"region-{size}"
    marker = path / ".done"
    if marker.exists():
        return path
    # In a subprocess, so that this driver (which forks every measurement) stays small.
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bot.cli", "demo-data", str(path), "--individuals",
                    str(size), "--years", "5", "--seed", "1", "--until", UNTIL.isoformat()],
                   check=True, cwd=ROOT, capture_output=True)
    marker.write_text(f"{time.perf_counter() - t:.1f}s\n")
    return path


def make_database(kind: str, size: int) -> str:
    if kind == "sqlite":
        path = DATA / f"bench-{size}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return f"sqlite:///{path}"
    # SQLAlchemy here, not at the top: the driver that forks every measurement stays small.
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mappa_bench_{size}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
