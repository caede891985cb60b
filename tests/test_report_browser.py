"""The quarterly pack opened in a real headless Chromium: it renders to a screenshot, with
no console errors, and its ten charts are in the rendered page."""

import shutil
import subprocess

import pytest

from bot.exports import quarterly_html
from tests.test_reports import _grampian_pack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_pack_renders_in_chromium_with_its_charts(sqlite_engine, tmp_path):
    page = tmp_path / "pack.html"
    page.write_text(quarterly_html(_grampian_pack(sqlite_engine), {}), encoding="utf-8")
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
              "--enable-logging=stderr", "--v=0"]
    shot = tmp_path / "pack.png"
    run = subprocess.run([*common, "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.stdout.count("<svg") == 10
    assert dom.stdout.count("<circle") >= 10  # points were drawn
    console = [line for line in (run.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
    assert not console, console
