"""Database URLs: which the product takes, in the form the engine is given, and as a
person may read them (never with the password).

bot/settings.py checks MAPPA_DATABASE_URL here; the CLI names a database with `describe`.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

POSTGRESQL_DRIVERS = ("postgresql", "postgres", "postgresql+psycopg")
SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")


def database_url(value: str) -> str:
    """A database URL as the engine takes it: PostgreSQL through psycopg (3), SQLite as
    given. Raises ValueError saying why for one that does not parse or names another
    database."""
    value = value.strip()
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        port = re.search(r"@[^/:]*:([^/]*)", value)
        why = " (the port is not a number)" if port and not port.group(1).isdigit() else ""
        raise ValueError(f"cannot be parsed{why}") from None
    driver = url.drivername
    if driver in POSTGRESQL_DRIVERS:
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if driver not in SQLITE_DRIVERS:
        raise ValueError(f"unsupported database {url.get_backend_name()!r}")
    return value


def hide_password(url: str) -> str:
    """The URL with any password as ***, even one that does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def describe(engine: Engine) -> str:
    """The engine's database as a person finds it: its URL without the password, and for a
    SQLite file named by a relative path, the absolute path too."""
    url = engine.url
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        where += "" if path.is_absolute() else f" ({path.resolve()})"
    return where


def sqlite_file_missing(url: str) -> bool:
    """True when `url` is a SQLite database whose file does not exist (or an in-memory
    one): connecting to it would create it."""
    if not url.startswith("sqlite"):
        return False
    path = make_url(url).database
    return not path or path == ":memory:" or not Path(path).exists()
