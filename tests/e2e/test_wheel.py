"""The installed package works, and the locks are what the project says they are.

The slow test builds the wheel, installs it with requirements.lock into a new virtualenv in a
temporary directory and, from a directory outside the checkout, runs what an operator runs:
demo data, import, status, the quarterly pack, the digest and its delivery to a real SMTP
server (aiosmtpd) and a local stand-in for Slack's Web API, and `mappa serve`'s /healthz.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.slack_harness import SlackStandIn, SmtpSink, free_port, stop, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(text)}


# ------------------------------------------------------------------------- fast checks


def test_every_dependency_is_locked_within_its_range():
    """pyproject.toml keeps ranges; requirements.lock pins a release inside each of them, with
    hashes for every package; requirements-test.lock pins the same releases plus the test
    tools and the build backend."""
    runtime, test = pins("requirements.lock"), pins("requirements-test.lock")
    for spec in PYPROJECT["project"]["dependencies"]:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in runtime, f"{name} is not in requirements.lock: run make lock"
        assert req.specifier.contains(runtime[name], prereleases=True), (name, runtime[name])
    for spec in PYPROJECT["project"]["optional-dependencies"]["test"]:
        req = Requirement(spec)
        assert req.specifier.contains(test[req.name.lower()], prereleases=True), req.name
    build = Requirement(PYPROJECT["build-system"]["requires"][0])
    assert build.specifier.contains(test[build.name]), "the locked setuptools builds the package"
    assert {k: v for k, v in test.items() if k in runtime} == runtime, "the two locks disagree"
    for lock in ("requirements.lock", "requirements-test.lock"):
        text = (ROOT / lock).read_text()
        hashed = re.findall(r"^[A-Za-z0-9._-]+==\S+(?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+", text, re.M)
        assert len(hashed) == len(PIN.findall(text)) > 30, f"{lock}: a pin without its hashes"
        assert not re.search(r"^--(extra-index-url|index-url|find-links)", text, re.M), \
            f"{lock} names this machine's package indexes"


def test_every_package_folder_is_listed_for_the_wheel():
    """pyproject.toml lists the packages by name (templates/ is mapped onto mappa_templates);
    a new package folder must be added there or the wheel leaves it out."""
    found = sorted(
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("bot", "mappa_core")
        for p in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in p.parts
    )
    listed = PYPROJECT["tool"]["setuptools"]["packages"]
    assert sorted(p for p in listed if p != "mappa_templates") == found
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"mappa_templates": "templates"}


# ------------------------------------------------------------------------- the wheel


def _run(args, cwd, env=None, timeout=600, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def _clean_env(bindir: Path) -> dict[str, str]:
    """The machine's environment without this checkout's virtualenv or any mappa settings."""
    drop = ("PYTHON", "VIRTUAL_ENV", "MAPPA_", "SLACK_", "SMTP_", "MAIL_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = os.pathsep.join([str(bindir), *[p for p in env.get("PATH", "").split(os.pathsep)
                                                   if not p.startswith(str(ROOT))]])
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin directory, the wheel): the wheel and requirements.lock in a new virtualenv."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    try:
        import setuptools  # noqa: F401  (the locked one builds it, as in `make test`)
        isolation = ["--no-build-isolation"]
    except ImportError:
        isolation = []
    _run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", *isolation, "-q", "-w", dist],
         cwd=base)
    (wheel,) = dist.glob("mappa_bot-*.whl")
    venv.EnvBuilder(with_pip=True).create(base / "venv")
    bindir = base / "venv" / "bin"
    env = _clean_env(bindir)
    _run([bindir / "pip", "install", "-q", "--require-hashes", "-r", ROOT / "requirements.lock"],
         cwd=base, env=env, timeout=900)
    _run([bindir / "pip", "install", "-q", "--no-deps", wheel], cwd=base, env=env)
    _run([bindir / "pip", "check"], cwd=base, env=env)
    return bindir, wheel


@pytest.mark.process
@pytest.mark.slow
def test_the_wheel_carries_every_template_and_migration(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {"mappa_templates/" + p.relative_to(ROOT / "templates").as_posix()
                 for p in (ROOT / "templates").rglob("*.j2")}
    migrations = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mappa_core" / "storage" / "migrations").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts}
    assert len(templates) > 30 and len(migrations) > 6
    assert templates <= names, sorted(templates - names)
    assert migrations <= names, sorted(migrations - names)


@pytest.mark.http
@pytest.mark.process
@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(installed, tmp_path):
    bindir, _ = installed
    work = tmp_path / "operator"
    work.mkdir()
    env = _clean_env(bindir)
    env["MAPPA_DATABASE_URL"] = f"sqlite:///{work / 'mappa.db'}"

    def mappa(*args, **kw):
        return _run([bindir / "mappa", *args], cwd=work, env=kw.pop("env", env), **kw)

    # The code and the words come from the virtualenv, not from this checkout.
    where = _run([bindir / "python", "-c",
                  "import bot, mappa_core, mappa_templates; "
                  "print(bot.__file__, mappa_core.__file__, mappa_templates.__file__)"],
                 cwd=work, env=env).stdout.split()
    assert all(str(bindir.parent) in w and str(ROOT) not in w for w in where), where

    # Seed 3: on 2026-11-26 two of its agencies owe written contributions, so the day has
    # email chasers as well as Slack digests (not every seed's small region does).
    mappa("demo-data", "data", "--individuals", "300", "--years", "3", "--seed", "3",
          "--until", "2026-11-26")
    assert "individuals.csv" in mappa("import", "data").stdout
    status = json.loads(mappa("status", "--json", "--as-of", "2026-11-26").stdout)
    assert len(status["indicators"]) == 10
    assert sum(i["denominator"] for i in status["indicators"]) > 0
    assert "wd left" in mappa("due", "--days", "14", "--as-of", "2026-11-26").stdout

    mappa("report", "quarterly", "--period", "2026-27-Q3", "--as-of", "2026-11-26", "--out", "pack.html")
    pack = (work / "pack.html").read_text()
    assert pack.count("<svg") == 10 and "Exceptions and their reasons" in pack
    assert not re.search(r">\s*(nan|NaN|NaT|None)\s*<", pack), "the pack shows nan/None"
    mappa("report", "annual", "--year", "2025-26", "--out", "annual")
    table1 = list(csv.DictReader(io.StringIO((work / "annual" / "table1.csv").read_text())))
    assert table1[-1]["area"] == "Total" and table1[-1]["rso_at_liberty_31_march"].isdigit()

    # A simulated day, on a copy of the database (it sends that day's notifications).
    shutil.copy(work / "mappa.db", work / "copy.db")
    day = mappa("demo-day", "--as-of", "2026-11-26", "--show", "0",
                env={**env, "MAPPA_DATABASE_URL": f"sqlite:///{work / 'copy.db'}"}).stdout
    assert "Summary of the day" in day and "; 0 given up" in day, day[-2000:]
    assert re.search(r"[1-9]\d* Slack message\(s\).*[1-9]\d* email\(s\)", day), day[-500:]

    planned = mappa("jobs", "run", "digest", "--as-of", "2026-11-26").stdout
    assert "chaser" in planned and "digest" in planned, planned
    smtp, slack = SmtpSink(), SlackStandIn()
    try:
        send_env = {**env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
                    "SMTP_STARTTLS": "no", "SMTP_TLS": "no", "SMTP_TIMEOUT": "10",
                    "MAIL_FROM": "mappa-bot@example.org", "SLACK_BOT_TOKEN": "xoxb-test",
                    "SLACK_API_URL": slack.api_url()}
        out = mappa("jobs", "run", "deliver", "--as-of", "2026-11-26T09:05", env=send_env).stdout
        assert "0 given up" in out, out
        dms = slack.posts("/api/chat.postMessage")
        assert len(smtp.messages) >= 2 and len(dms) >= 2, (out, len(smtp.messages), len(dms))
        assert all(m.mail_from == "mappa-bot@example.org" for m in smtp.messages)
        assert any("contribution" in m.original_content.decode(errors="replace").lower()
                   for m in smtp.messages)
        assert all(d["body"].get("blocks") for d in dms)
        # Delivered once: a second run finds nothing to send.
        again = mappa("jobs", "run", "deliver", "--as-of", "2026-11-26T09:10", env=send_env).stdout
        assert again.startswith("delivered 0 item(s)"), again

        # `mappa serve` from the wheel answers /healthz.
        port = free_port()
        serve_env = {**send_env, "SLACK_SIGNING_SECRET": "wheel-test-secret"}
        proc = subprocess.Popen([str(bindir / "mappa"), "serve", "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=work, env=serve_env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            body = wait_until_up(port, proc, output=lambda: proc.stdout.read())
            assert body.get("ok") is True, body
        finally:
            stop(proc)
    finally:
        smtp.close()
        slack.close()
