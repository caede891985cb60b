"""Indicators and item kinds are each declared once (issue 15 item 3): the declarations in
mappa_core/rules/indicators.py and mappa_core/rules/kinds.py are complete, true to what
the code reads, and the only table of them anywhere in the code or the templates."""

from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

import bot
import mappa_core
from bot.channels import rendering
from bot.channels.slack import nudge_buttons
from bot.channels.slack.listeners.actions import ACTION_IDS
from mappa_core.rules import indicators as ind_mod
from mappa_core.rules.due import open_items
from mappa_core.rules.indicators import (
    DATA_QUALITY_CHECKS, FRAMES, INDICATORS, TOPICS, Topic, compute_deadlines,
    compute_indicators, reads_invitations,
)
from mappa_core.rules.kinds import (
    EVERY_ITEM_BUTTONS, ITEM_KINDS, ItemKind, item_keys, key_part, read_key, urgency_ranks,
)
from mappa_core.rules.periods import parse_period
from mappa_core.rules.records import window_start
from mappa_core.storage.importer import import_directory
from mappa_core.storage.queries import load_records
from tests.conftest import GRAMPIAN

ROOT = Path(mappa_core.__file__).parent.parent
CONTRACT = ROOT / "docs" / "data-contract.md"
AS_OF = dt.date(2026, 11, 26)
PERIOD = parse_period("2026-27")


def _contract_indicators() -> list[tuple[str, int]]:
    """(id, target) of each row of the indicator table of docs/data-contract.md, the
    published form of SPEC section 3."""
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| [^|]+ \| [^|]+ \| [^|]+ \| (\d+)%", CONTRACT.read_text(),
                      re.MULTILINE)
    return [(i, int(t)) for i, t in rows]


def test_every_indicator_of_section_3_is_declared_once_in_its_order_with_its_target():
    rows = _contract_indicators()
    assert len(rows) == 10
    assert [i for i, _ in rows] == list(INDICATORS)
    assert {i: t for i, t in rows} == {i: d.target for i, d in INDICATORS.items()}
    for ind_id, d in INDICATORS.items():
        assert d.id == ind_id and d.title and d.short and d.reads <= set(FRAMES)
        assert set(d.data_quality) <= set(DATA_QUALITY_CHECKS)
    with pytest.raises(ValueError, match="declared twice"):
        ind_mod._declare(INDICATORS["disclosure"])
    assert len(INDICATORS) == 10


def test_topics_are_read_from_the_declarations():
    assert list(TOPICS) == [t.value for t in Topic]
    assert TOPICS["all"] == tuple(INDICATORS)
    for ind_id, d in INDICATORS.items():
        # in "all" and in exactly the one topic it declares
        assert [t for t, ids in TOPICS.items() if ind_id in ids] == ["all", d.topic.value]
    assert all(TOPICS[t.value] for t in Topic)  # no topic without an indicator


@pytest.fixture(scope="module")
def grampian(tmp_path_factory):
    from mappa_core.storage import db

    path = tmp_path_factory.mktemp("registry") / "grampian.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.ensure_schema(engine)
    assert import_directory(engine, GRAMPIAN).ok
    yield engine
    engine.dispose()


def test_each_indicator_reads_the_frames_it_declares_and_no_other(grampian):
    records = load_records(grampian)
    needs = {"invitations": {"meetings"}}  # the invitation frame is built on the meetings'
    for ind_id, d in INDICATORS.items():
        c = compute_deadlines(records, AS_OF)
        compute_indicators(c, PERIOD, (ind_id,))
        built = set(c._frames)
        allowed = set(d.reads).union(*(needs.get(f, set()) for f in d.reads))
        assert d.reads <= built <= allowed, (ind_id, built)


def test_what_an_answer_loads_follows_the_declarations(grampian):
    """Without the invitation records, the indicators that do not declare them answer the
    same; those that do come out empty (so the answers load them for exactly those)."""
    since = window_start(AS_OF, PERIOD.start)  # as mappa_core.answers loads
    full = compute_deadlines(load_records(grampian, since=since), AS_OF)
    lean = compute_deadlines(load_records(grampian, since=since, with_invitations=False), AS_OF)
    emptied = []
    for a, b in zip(compute_indicators(full, PERIOD), compute_indicators(lean, PERIOD)):
        if reads_invitations([a.id]):
            assert b.denominator == 0
            emptied.append(a.denominator > 0)
        else:
            assert a.to_dict() == b.to_dict(), a.id
    assert any(emptied)  # the fixture has invitations: the check above has teeth
    assert reads_invitations(TOPICS["attendance"]) and not reads_invitations(TOPICS["level3"])


# --------------------------------------------------------------------------- item kinds


def test_every_kind_is_declared_once_with_labels_urgency_and_buttons():
    assert list(ITEM_KINDS) == [k.value for k in ItemKind]
    for name, spec in ITEM_KINDS.items():
        assert spec.kind == name and spec.label and spec.noun and spec.line and spec.plural
        assert spec.key
        assert spec.all_buttons[-len(EVERY_ITEM_BUTTONS):] == EVERY_ITEM_BUTTONS
        # every button has a listener in the Slack app
        assert {b.action_id for b in spec.all_buttons} <= set(ACTION_IDS), name
    assert len({s.label for s in ITEM_KINDS.values()}) == len(ITEM_KINDS)
    ranks = [r for s in ITEM_KINDS.values()
             for r in (s.urgency.values() if isinstance(s.urgency, dict) else [s.urgency])]
    assert sorted(ranks) == list(range(len(ranks)))  # a strict order, most urgent 0


ODD = {"ref": "R:1|x é", "meeting_id": "T1:9%", "agency": "hous:ing|é"}


def _one_of_each() -> pd.DataFrame:
    rows = []
    for kind in ItemKind:
        for level in ((2, 3) if kind == ItemKind.REVIEW else (None,)):
            rows.append({"kind": kind.value, "level": level, **ODD,
                         "deadline": pd.Timestamp("2026-12-01")})
    return pd.DataFrame(rows)


def test_each_kind_key_is_written_and_read_back_as_declared():
    items = _one_of_each()
    keys = item_keys(items)
    assert keys.is_unique
    for item, key in zip(items.to_dict("records"), keys):
        spec, parts = read_key(key)
        assert spec.kind == item["kind"] and key.startswith(item["kind"] + ":")
        written = {"ref": item["ref"], "meeting_id": item["meeting_id"],
                   "agency": item["agency"], "deadline": "2026-12-01",
                   "level": "" if pd.isna(item["level"]) else f"L{int(item['level'])}"}
        assert parts == {f.column: written[f.column] for f in spec.key}
        # one part short or over, or an unknown kind, is not a key of ours
        assert read_key(key.rsplit(":", 1)[0]) is None
        assert read_key(key + ":x") is None
        assert read_key("x" + key) is None
    assert read_key(f"review:{key_part(ODD['ref'])}:L9:2026-12-01") is None
    assert read_key(f"pre_release:{key_part(ODD['ref'])}:someday") is None
    with pytest.raises(ValueError, match="undeclared"):
        item_keys(pd.DataFrame([{"kind": "holiday", "level": None, **ODD,
                                 "deadline": pd.Timestamp("2026-12-01")}]))


def test_urgency_ranks_follow_the_declarations():
    items = _one_of_each()
    got = dict(zip(zip(items["kind"], items["level"].fillna(0)), urgency_ranks(items)))
    for (kind, level), rank in got.items():
        urgency = ITEM_KINDS[kind].urgency
        assert rank == (urgency[int(level)] if isinstance(urgency, dict) else urgency)


def test_labels_buttons_and_lines_come_from_the_declarations():
    items = _one_of_each()
    items["item_key"] = item_keys(items)
    for row in items.to_dict("records"):
        spec = ITEM_KINDS[row["kind"]]
        elements = nudge_buttons(row["item_key"], row["kind"])[0]["elements"]
        assert [(e["action_id"], (e.get("text") or e["placeholder"])["text"]) for e in elements] \
            == [(b.action_id, b.label) for b in spec.all_buttons]
        level = None if pd.isna(row["level"]) else int(row["level"])
        payload = {**row, "level": level, "deadline": "2026-12-01", "overdue": False,
                   "working_days_left": 3, "detail": "the detail", "stage": "due"}
        (section,) = rendering.sections("digest", [{"item_key": row["item_key"],
                                                 "payload": payload}])
        assert section["text"].startswith(spec.line_for(level, row["agency"]) + " for ")
        assert section["text"].endswith("; the detail") == spec.line_detail


def test_open_items_are_of_declared_kinds(grampian):
    items = open_items(compute_deadlines(load_records(grampian), AS_OF))
    assert not items.empty and set(items["kind"]) <= set(ITEM_KINDS)


# --------------------------------------------------------------------------- one source


def _tables(tree: ast.AST, names: set[str]):
    """Collections written out in code (dict keys, set, tuple or list items) that name
    two or more of `names`: a second table of them."""
    for node in ast.walk(tree):
        items = node.keys if isinstance(node, ast.Dict) else (
            node.elts if isinstance(node, (ast.Set, ast.Tuple, ast.List)) else [])
        named = {n.value for n in items if isinstance(n, ast.Constant) and n.value in names}
        if len(named) >= 2:
            yield node.lineno, sorted(named)


@pytest.mark.parametrize("names, home", [
    ({k.value for k in ItemKind}, "mappa_core/rules/kinds.py"),
    (set(INDICATORS), "mappa_core/rules/indicators.py"),
], ids=["kinds", "indicators"])
def test_no_module_or_template_keeps_a_table_of_its_own(names, home):
    found = []
    for package in (bot, mappa_core):
        for path in Path(package.__file__).parent.rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel == home or "/migrations/" in rel:
                continue
            found += [(rel, line, named) for line, named in _tables(ast.parse(path.read_text()), names)]
    pattern = "|".join(re.escape(n) for n in names)
    for path in (ROOT / "templates").rglob("*.j2"):
        named = set(re.findall(rf"[\"']({pattern})[\"']", path.read_text()))
        if len(named) >= 2:
            found.append((path.relative_to(ROOT).as_posix(), 0, sorted(named)))
    assert not found, found
