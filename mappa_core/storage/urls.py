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


# Query-string keys that carry a password (psycopg/libpq's, and the common spellings).
_SECRET_KEYS = {"password", "passwd", "pass", "pwd", "sslpassword"}


def hide_password(url: str) -> str:
    """The URL for people and logs: the password as ***, whether in the user-info
    (`user:secret@`) or the query string (`?password=secret`), even when it does not parse."""
    try:
        parsed = make_url(url)
    except Exception:
        return _mask_text(url)
    query = {k: ("***" if k.lower() in _SECRET_KEYS else v) for k, v in parsed.query.items()}
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    return shown.replace("=%2A%2A%2A", "=***")  # (rendering quotes the query's values)


def _mask_text(url: str) -> str:
    url = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)
    keys = "|".join(sorted(_SECRET_KEYS))
    return re.sub(rf"(?i)([?&](?:{keys})=)[^&#]*", r"\1***", url)


def passwords(url: str) -> list[str]:
    """Every password the URL holds (to take out of a driver's error message)."""
    try:
        parsed = make_url(url)
    except Exception:
        found = re.findall(r"://[^:/@]*:([^@]*)@", url)
        keys = "|".join(sorted(_SECRET_KEYS))
        return [p for p in found + re.findall(rf"(?i)[?&](?:{keys})=([^&#]*)", url) if p]
    values = [parsed.password] + [v for k, v in parsed.query.items() if k.lower() in _SECRET_KEYS]
    out: list[str] = []
    for v in values:
        out += [v] if isinstance(v, str) else list(v or ())
    return [str(v) for v in out if v]


def redact(text: str, url: str) -> str:
    """`text` (a driver's error, say) with every password of `url` as ***."""
    for secret in sorted(passwords(url), key=len, reverse=True):
        # Where it stands alone, so that a password of one letter leaves the words alone.
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text


def describe(engine: Engine) -> str:
    """The engine's database as a person finds it: its URL without the password, and for a
    SQLite file named by a relative path, the absolute path too."""
    url = engine.url
    where = hide_password(url.render_as_string(hide_password=False))
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
