"""The quarterly pack opened in a real headless Chromium: it renders to a screenshot, with
no console errors, and its ten charts are in the rendered page."""

import shutil
import subprocess

import pytest

from bot.exports import quarterly_html
from tests.rules.test_reports import _grampian_pack

pytestmark = [pytest.mark.process, pytest.mark.browser]

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


A4_POINTS = (595.28, 841.89)   # 210 x 297 mm
FIRST_SCREEN = (1280, 800)     # a laptop's screen: the pack must open with its indicators on it


def _demo_region_pack(tmp_path, as_of=None):
    """The pack of the synthetic demo data (`mappa demo-data`'s default: ten areas, 7,000
    individuals, seed 1), 2026-27-Q3: hundreds of exceptions and dozens of agencies, so that
    commonalities, the appendix, the agencies' tables and page breaks are all exercised. As
    of 8 January 2027 (the quarter ended) unless `as_of` says otherwise."""
    import datetime as dt

    from mappa_core.synthetic_region import write_demo_data
    from mappa_core.rules.periods import parse_period
    from mappa_core.rules.reports import pack_since, quarterly_pack
    from mappa_core.storage import db
    from mappa_core.storage.importer import import_directory
    from mappa_core.storage.queries import load_records

    as_of = as_of or dt.date(2027, 1, 8)
    write_demo_data(tmp_path / "data", individuals=7000, years=3, seed=1, until=as_of)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'mappa.db'}")
    try:
        db.ensure_schema(engine)
        assert import_directory(engine, tmp_path / "data").ok
        period = parse_period("2026-27-Q3")
        records = load_records(engine, since=pack_since(period, as_of))
        names = dict(zip(records.agencies["agency"], records.agencies["name"]))
        return quarterly_pack(records, period, as_of), names
    finally:
        engine.dispose()


def _first_screen(html, tmp_path):
    """The pack written to pack.html and its first screen shot as a person opening the file
    sees it, with the indicator table wholly on it: (page, Chromium's command, the run)."""
    import json
    import re

    page = tmp_path / "pack.html"
    page.write_text(html, encoding="utf-8")
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
              "--enable-logging=stderr", "--v=0"]
    width, height = FIRST_SCREEN
    shot = tmp_path / "first-screen.png"
    run = subprocess.run([*common, f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", run.stderr[-2000:]
    # The PNG's own size is the screen's (IHDR: width and height, big-endian, at bytes 16-24).
    png = shot.read_bytes()
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == FIRST_SCREEN

    # Where the indicator table lies on that screen, measured by Chromium's own layout (a
    # copy of the page with a measuring script; the pack itself has no script).
    measure = tmp_path / "measure.html"
    measure.write_text(html.replace("</body>", (
        "<script>var r = document.getElementById('indicators').getBoundingClientRect();"
        "document.body.setAttribute('data-box', JSON.stringify("
        "{top: r.top, bottom: r.bottom, right: r.right, rows: document.querySelectorAll("
        "'#indicators tbody tr').length, width: innerWidth}));</script></body>")), encoding="utf-8")
    dom = subprocess.run([*common, f"--window-size={width},{height}", "--dump-dom", measure.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'data-box="([^"]+)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    box = json.loads(found.group(1).replace("&quot;", '"'))
    assert box["width"] == width and box["rows"] >= 10
    assert 0 < box["top"] and box["bottom"] <= height and box["right"] <= width, box
    return page, common, run


def _page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    """Each page's MediaBox (width, height) in points, as Chromium's PDF writes them."""
    import re

    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    return [(float(w), float(h)) for w, h in boxes]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_demo_region_pack_first_screen_and_a4_print(tmp_path):

    from markupsafe import escape

    pack, names = _demo_region_pack(tmp_path)
    assert len(pack.exceptions) > 100  # a pack whose rows would bury the pattern
    # 1. The first screen, as a person opening the file sees it. The ten areas' dozens of
    # agencies are in their own tables below the indicators, not among them.
    html = quarterly_html(pack, names)
    dtc = next(i for i in pack.indicators if i["id"] == "dtc-attendance")
    assert len(dtc["breakdown"]) > 20 and html.count('<table class="by-agency">') == 2
    listed = html.split('<table class="by-agency">')[1]
    assert all(str(escape(names[b["agency"]])) in listed for b in dtc["breakdown"])
    page, common, run = _first_screen(html, tmp_path)

    # 2. Printed: every page is A4, and the appendix makes it more than one page.
    pdf = tmp_path / "pack.pdf"
    printed = subprocess.run([*common, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-", printed.stderr[-2000:]
    sizes = _page_sizes(pdf.read_bytes())
    assert len(sizes) > 3
    for w, h in sizes:
        assert abs(w - A4_POINTS[0]) < 2 and abs(h - A4_POINTS[1]) < 2, sizes[:3]

    # 3. No console errors while showing or printing the page.
    console = [line for line in (run.stderr + printed.stderr).splitlines() if "CONSOLE" in line]
    assert not console, console


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_demo_region_pack_of_a_quarter_in_progress_says_so_on_its_first_screen(tmp_path):
    """The pack made on Friday 27 November 2026, two thirds into 2026-27-Q3: its title and first
    screen say the quarter is in progress, and the indicator table, with its margins, still
    fits that screen."""
    import datetime as dt

    pack, names = _demo_region_pack(tmp_path, as_of=dt.date(2026, 11, 27))
    assert pack.in_progress == {"to": dt.date(2026, 11, 27), "done": 42, "total": 63, "kind": "quarter"}
    page, common, run = _first_screen(quarterly_html(pack, names), tmp_path)
    width, height = FIRST_SCREEN
    dom = subprocess.run([*common, f"--window-size={width},{height}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert ("<title>MAPPA quarterly pack: all areas, 2026-27-Q3, to 27 November 2026 "
            "(quarter in progress: 42 of 63 working days)</title>") in dom.stdout
    first = dom.stdout.split('<table id="indicators">')[0]
    assert "to 27 November 2026 (in progress)</h1>" in first
    assert "Quarter in progress: 42 of 63 working days." in first
    console = [line for line in (run.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
    assert not console, console


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_annual_report_prints_on_a4_with_each_tables_header_in_its_thead(grampian_cli, tmp_path):
    """The annual report as `mappa report annual` writes it, like the pack: A4 pages when
    printed, and each table's header row in a <thead> that print repeats on every page."""
    import json
    import re

    from bot.cli import main

    out = tmp_path / "annual"
    assert main(["report", "annual", "--year", "2026-27", "--out", str(out)]) == 0
    page = out / "annual.html"
    html = page.read_text(encoding="utf-8")
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
              "--enable-logging=stderr", "--v=0"]

    pdf = tmp_path / "annual.pdf"
    printed = subprocess.run([*common, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-", printed.stderr[-2000:]
    sizes = _page_sizes(pdf.read_bytes())
    assert sizes
    for w, h in sizes:
        assert abs(w - A4_POINTS[0]) < 2 and abs(h - A4_POINTS[1]) < 2, sizes[:3]

    # Each table as Chromium parsed and styled it (a copy with a measuring script).
    measure = tmp_path / "measure.html"
    measure.write_text(html.replace("</body>", (
        "<script>document.body.setAttribute('data-tables', JSON.stringify("
        "Array.from(document.querySelectorAll('table')).map(function (t) { return {"
        "head: t.tHead ? t.tHead.querySelectorAll('th').length : 0,"
        "display: t.tHead ? getComputedStyle(t.tHead).display : null,"
        "rows: t.tBodies.length ? t.tBodies[0].rows.length : 0,"
        "th_in_body: t.tBodies.length ? t.tBodies[0].querySelectorAll('th').length : 0}; })));"
        "</script></body>")), encoding="utf-8")
    dom = subprocess.run([*common, "--dump-dom", measure.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'data-tables="([^"]+)"', dom.stdout)
    assert found, dom.stderr[-2000:]
    tables = json.loads(found.group(1).replace("&quot;", '"'))
    assert [t["head"] for t in tables] == [6, 4], tables  # Annex 3 Tables 1 and 2
    for t in tables:
        assert t["display"] == "table-header-group" and t["rows"] >= 2 and t["th_in_body"] == 0, tables

    console = [line for line in (printed.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
    assert not console, console
