"""The shape of the code, checked by importing it: the rules in `mappa_core.rules` load no
database library, no storage module and nothing of `bot`; storage loads nothing of `bot`;
no module under `mappa_core` reads the environment or the clock (ARCHITECTURE: a pure core,
thin edges). Each check imports the modules in a fresh interpreter and reads `sys.modules`,
so an import hidden inside a function body counts once it runs at import time, and one
pulled in through a third module counts too."""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import mappa_core
from mappa_core import rules, storage

ROOT = Path(mappa_core.__file__).parent


def _modules(pkg) -> list[str]:
    return [f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]


def _loaded_after_importing(modules: list[str]) -> set[str]:
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def _top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_the_folders_are_the_architecture_picture():
    top = {p.name for p in ROOT.iterdir() if not p.name.startswith((".", "__pycache__"))}
    assert top == {"__init__.py", "answers.py", "demo.py", "rules", "storage"}
    assert {"calendar", "deadlines", "indicators", "due", "planner", "reports", "records"} <= {
        m.rsplit(".", 1)[1] for m in _modules(rules)}
    assert {"db", "models", "queries", "importer", "outbox", "migrations"} <= {
        m.name for m in pkgutil.iter_modules(storage.__path__)} | {"migrations"}


@pytest.mark.process
def test_rules_load_no_database_library_no_storage_and_no_bot():
    loaded = _loaded_after_importing(_modules(rules))
    assert not _top(loaded) & {"sqlalchemy", "sqlmodel", "alembic", "psycopg", "bot"}, sorted(
        _top(loaded) & {"sqlalchemy", "sqlmodel", "alembic", "psycopg", "bot"})
    assert not {m for m in loaded if m.startswith(("mappa_core.storage", "mappa_core.answers"))}


@pytest.mark.process
def test_storage_loads_nothing_of_the_bot():
    loaded = _loaded_after_importing([m for m in _modules(storage) if not m.endswith("migrations")])
    assert "bot" not in _top(loaded)
    assert "mappa_core.answers" not in loaded


@pytest.mark.process
def test_the_graph_check_can_fail():
    # The same check on a module that does load a database library and the bot's code.
    loaded = _loaded_after_importing(["mappa_core.storage.queries", "bot.settings"])
    assert {"sqlalchemy", "bot"} <= _top(loaded)


CLOCK = {("date", "today"), ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
         ("time", "time"), ("time", "monotonic")}


def _clock_and_environ_reads(path: Path) -> list[str]:
    found = []
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute):
            base = node.value
            owner = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            if (owner, node.attr) in CLOCK or (owner == "os" and node.attr in ("environ", "getenv")):
                found.append(f"{where}:{node.lineno}: {owner}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            found.append(f"{where}:{node.lineno}: {node.id}")
    return found


@pytest.mark.parametrize("path", sorted(p for p in ROOT.rglob("*.py") if "versions" not in p.parts),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_core_module_reads_the_clock_or_the_environment(path):
    assert _clock_and_environ_reads(path) == []


def test_the_clock_check_can_fail(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("import datetime as dt, os\nx = dt.date.today()\ny = os.environ['A']\n")
    assert len(_clock_and_environ_reads(bad)) == 2


# The bot reaches the database only through mappa_core/storage: no module of these layers
# imports a database library or the table models (a type named for annotations only, under
# `if TYPE_CHECKING:`, is no use of the database). Other layers join the list as they keep it.
BOT = ROOT.parent / "bot"
THROUGH_STORAGE = ["commands", "channels/slack", "server.py", "templates.py"]
DATABASE = ("sqlalchemy", "sqlmodel", "psycopg", "mappa_core.storage.models")


def _database_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", None) == "TYPE_CHECKING"
                   for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):  # `from mappa_core.storage import models` too
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        hits = [n for n in names if n.split(".")[0] in DATABASE or n.startswith(DATABASE)]
        found += [f"{path.name}:{node.lineno}: {hits[0]}"] if hits else []
    return found


@pytest.mark.parametrize("path", sorted(
    p for place in THROUGH_STORAGE for p in ([BOT / place] if place.endswith(".py")
                                             else (BOT / place).rglob("*.py"))),
    ids=lambda p: str(p.relative_to(BOT)))
def test_the_bot_reaches_the_database_only_through_storage(path):
    assert _database_imports(path) == []


def test_the_storage_check_can_fail(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("from typing import TYPE_CHECKING\nfrom sqlalchemy import select\n"
                   "import sqlmodel\nfrom mappa_core.storage import models\n"
                   "from mappa_core.storage.models import Person\n"
                   "if TYPE_CHECKING:\n    from sqlalchemy.engine import Engine\n")
    assert [f.split(": ")[1] for f in _database_imports(bad)] == [
        "sqlalchemy", "sqlmodel", "mappa_core.storage.models", "mappa_core.storage.models"]
