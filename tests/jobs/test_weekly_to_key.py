# ruff: noqa: F811  (the `tayside` fixture is imported from tests.storage.test_recorded_base)
"""The co-ordinator's weekly summary says how many values recorded through the bot wait to
be keyed into ViSOR (issue 26, item 2): by e-mail with the list attached as CSV, in Slack
with the command that prints it. On the Tayside scenario, with the value recorded by a real
button press, the summary planned by `mappa jobs run weekly-summary` and delivered by
`mappa jobs run deliver` to a real SMTP server and the Slack stand-in."""

from __future__ import annotations

import csv
import email
import io

import pytest

from bot.cli import main
from tests.helpers import run_cli
from tests.slack_harness import SlackStandIn, SmtpSink
from tests.storage.test_recorded_base import (  # noqa: F401  (the fixture)
    _export, _import, _press_received, tayside,
)

MONDAY = "2026-12-07"


def _deliver(monkeypatch, capsys):
    stand_in, smtp = SlackStandIn(), SmtpSink()
    try:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_API_URL", stand_in.api_url())
        monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SMTP_PORT", str(smtp.port))
        monkeypatch.setenv("SMTP_STARTTLS", "no")
        code, out, err = run_cli(capsys, "jobs", "run", "deliver", "--as-of", f"{MONDAY}T10:00")
        assert code == 0, err
        return ([email.message_from_bytes(m.original_content) for m in smtp.messages],
                [c["body"] for c in stand_in.posts("/api/chat.postMessage")])
    finally:
        stand_in.close()
        smtp.close()


def _to_iain(mails):
    [mail] = [m for m in mails if m["To"] == "iain@tayside.example"]
    body = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    files = {p.get_filename(): p.get_payload(decode=True).decode()
             for p in mail.walk() if p.get_filename()}
    return body.get_payload(decode=True).decode(), files


@pytest.mark.http
def test_the_weekly_summary_says_how_many_wait_and_attaches_the_list(tayside, tmp_path,
                                                                     monkeypatch, capsys):
    _press_received(tayside)
    assert _import(_export(tmp_path, "tuesday"), capsys)["kept"] == 1  # the export lags
    code, out, err = run_cli(capsys, "jobs", "run", "weekly-summary", "--as-of",
                             f"{MONDAY} 09:30", "--dry-run")
    assert code == 0, err
    line = ('To key into ViSOR: 1 value recorded through the bot that the latest export '
            'does not show yet; "mappa recorded --pending" lists it by case and meeting')
    assert line in out
    assert main(["jobs", "run", "weekly-summary", "--as-of", f"{MONDAY} 09:30"]) == 0
    capsys.readouterr()
    mails, posts = _deliver(monkeypatch, capsys)
    text, files = _to_iain(mails)
    name = f"mappa-to-key-into-visor-tayside-{MONDAY}.csv"
    assert f"then the values to key into ViSOR (listed in the attached {name})" in text
    assert line in text
    [row] = list(csv.DictReader(io.StringIO(files[name])))
    assert (row["ref"], row["meeting_id"], row["agency_name"], row["column"], row["value"],
            row["export_value"], row["recorded_by"]) == (
        "TAY-0002", "M4", "Police Scotland", "written_contribution", "yes", "no", "Morag Chair")
    # Slack (the other co-ordinator): the count and the command, no list of cases.
    [aileen] = [p for p in posts if p["channel"] == "U1TAYCO2"]
    assert "To key into ViSOR: 1 value recorded through the bot" in str(aileen["blocks"])
    assert "mappa recorded --pending" in str(aileen["blocks"])


def test_nothing_waiting_says_nothing(tayside, tmp_path, capsys):
    code, out, err = run_cli(capsys, "jobs", "run", "weekly-summary", "--as-of",
                             f"{MONDAY} 09:30", "--dry-run")
    assert code == 0, err
    assert "To key into ViSOR" not in out and "key into ViSOR" not in out
