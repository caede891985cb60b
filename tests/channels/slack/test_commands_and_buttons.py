"""The Slack bot over real HTTP: signed requests to the served endpoint, a local Web API
stand-in, a real SMTP server, the Grampian records in a real database."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pandas as pd
import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from bot.cli import main
from bot.server import build_asgi
from bot.settings import Settings
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import db
from mappa_core.storage.importer import import_directory
from tests.conftest import GRAMPIAN
from tests.slack_harness import (
    SIGNING_SECRET, BotServer, SlackStandIn, SmtpSink, action_body, command_body, post, sign,
    view_body,
)

TODAY = dt.date(2026, 11, 26)
STAFF, CHAIR1, CHAIR2, SOG, COORD = "U1STAFF1", "U1CHAIR1", "U1CHAIR2", "U1SOG001", "U1COORD1"


@pytest.fixture
def slack(engine):
    """The bot serving the Grampian records (as of 2026-11-26), with its stand-ins."""
    assert import_directory(engine, GRAMPIAN).ok
    stand_in, smtp = SlackStandIn(), SmtpSink()
    settings = Settings(work_processes=0,
        database_url=str(engine.url), slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET, slack_api_url=stand_in.api_url(),
        smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False,
        mail_from="mappa-bot@grampian.example", smtp_timeout=5,
    )
    server = BotServer(build_asgi(settings, engine, today=lambda: TODAY))

    class Harness:
        pass

    h = Harness()
    h.engine, h.stand_in, h.smtp, h.server = engine, stand_in, smtp, server
    h.n = 0

    def command(user, text_, trigger_id=None):
        h.n += 1
        name = f"r{h.n}"
        body = command_body(user, text_, stand_in.response_url(name), trigger_id)
        status, out, _ = post(server.url + "/slack/events", body, sign(body))
        assert status == 200, out
        if out:  # answered in the acknowledgement itself (a replay: "already done")
            return json.loads(out)
        return stand_in.wait_for(f"/response/{name}")[0]["body"]

    def act(user, action_id, value, **extra):
        h.n += 1
        name = f"r{h.n}"
        body = action_body(user, action_id, value, stand_in.response_url(name), **extra)
        status, out, _ = post(server.url + "/slack/events", body, sign(body))
        assert status == 200, out
        return name

    h.command, h.act = command, act
    yield h
    server.close()
    stand_in.close()
    smtp.close()


def text_of(reply: dict) -> str:
    """Everything a person would read in a reply."""
    return json.dumps(reply.get("blocks", [])) + reply.get("text", "")


def audit_rows(engine, at_least: int = 1):
    """The audit log, once it holds at_least rows (it is written just after the answer)."""
    audit = SQLModel.metadata.tables["audit_log"]
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(audit).order_by(audit.c.id)).mappings()]
        if len(rows) >= at_least or time.monotonic() > deadline:
            return rows


# ------------------------------------------------------------------ signatures


@pytest.mark.http
def test_unsigned_stale_and_tampered_requests_are_rejected(slack):
    body = command_body(STAFF, "status", slack.stand_in.response_url("x"))
    url = slack.server.url + "/slack/events"
    assert post(url, body, {})[0] == 401
    assert post(url, body, sign(body, timestamp=int(time.time()) - 301))[0] == 401
    headers = sign(body)
    assert post(url, body.replace("status", "due"), headers)[0] == 401
    assert post(url, body, sign(body, secret="wrong-secret"))[0] == 401
    assert post(url, body, headers)[0] == 200
    slack.stand_in.wait_for("/response/x")
    time.sleep(0.2)
    assert len(slack.stand_in.posts("/response/x")) == 1  # only the genuine request answered


@pytest.mark.http
def test_acknowledgement_is_an_empty_200_before_the_answer(slack):
    body = command_body(STAFF, "status", slack.stand_in.response_url("ack"))
    status, out, _ = post(slack.server.url + "/slack/events", body, sign(body))
    assert status == 200 and out == ""
    slack.stand_in.wait_for("/response/ack")


@pytest.mark.http
def test_health_check_reports_the_database(slack, tmp_path):
    import urllib.request

    with urllib.request.urlopen(slack.server.url + "/healthz") as resp:
        assert json.loads(resp.read()) == {"ok": True, "database": "ok"}
    broken = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    server = BotServer(build_asgi(Settings(work_processes=0, slack_bot_token="xoxb-t", slack_signing_secret="s"), broken))
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "/healthz")
        assert err.value.code == 503
    finally:
        server.close()


# ------------------------------------------------------------------ commands


@pytest.mark.http
def test_unknown_user_is_not_authorised_and_audited(slack):
    reply = slack.command("U999NOBODY", "status")
    assert "not authorised" in text_of(reply)
    assert "indicator" not in text_of(reply).lower().replace("not authorised", "")
    assert audit_rows(slack.engine)[-1]["outcome"] == "denied:unknown-user"


@pytest.mark.http
def test_status_shows_every_indicator_with_tick_cross_margin_and_pending(slack):
    reply = slack.command(STAFF, "status")
    assert reply["response_type"] == "ephemeral"
    body = text_of(reply)
    assert "MAPPA indicators: Grampian" in body
    # l3-reviews quarter to date: 2 of 3, margin -1, pending 2 (hand-computed in expected.json)
    assert "66.7% (2/3) against 95%; margin -1; pending 2" in body
    assert ":x: *Level 3 cases reviewed at least every 6 weeks*" in body
    assert ":white_check_mark: *Minutes issued and RMP updated" in body
    assert "GRA-0" not in body  # aggregates only


@pytest.mark.http
def test_status_topic_and_period(slack):
    body = text_of(slack.command(STAFF, "status level2 2026-27"))
    assert "2026-04-01 to 2027-03-31" in body
    assert "Level 2 cases" in body and "Level 3 cases" not in body


@pytest.mark.http
def test_status_compare_sets_areas_side_by_side(slack):
    body = text_of(slack.command(STAFF, "status compare 2026-27-Q3"))
    assert "MAPPA areas side by side" in body and "GRA-0" not in body
    # Indicators by name, each with its target and whether it is met (issue 23.7); before,
    # "l3-reviews 66.7%, l2-reviews ...".
    assert "*Grampian*: 2 of 9 indicators met (Level 2 cases 4, Level 3 cases 4)" in body
    assert ":x: Level 3 reviews: 66.7% against 95%" in body
    assert "l3-reviews" not in body


@pytest.mark.http
def test_scr_list_and_update_from_slack(slack):
    from mappa_core.storage import audits_and_scrs

    scr = audits_and_scrs.add_scr(slack.engine, "Review <A>", "Grampian", None)
    rec = audits_and_scrs.add_recommendation(slack.engine, scr, "R")
    action = audits_and_scrs.add_action(slack.engine, rec, "em-provider", dt.date(2026, 11, 1), "Protocol")
    body = text_of(slack.command(STAFF, "scr"))
    assert f"#{action} *Review &lt;A&gt;*" in body and "overdue" in body
    assert "Only the co-ordinator" in text_of(slack.command(STAFF, f"scr done {action}"))
    assert "closed" in text_of(slack.command(COORD, f"scr done {action} signed off"))
    assert "No open actions" in text_of(slack.command(STAFF, "scr"))


@pytest.mark.http
@pytest.mark.parametrize("text_", ["frobnicate", "status nonsense", "due many", "case", "case a b",
                                   "<script>", "status level2 2026-27 extra"])
def test_unknown_or_malformed_commands_get_the_help_text(slack, text_):
    body = text_of(slack.command(STAFF, text_))
    assert "/mappa status [topic] [period]" in body
    assert "Traceback" not in body
    assert "<script>" not in body


@pytest.mark.http
def test_help(slack):
    assert "/mappa escalate TEXT" in text_of(slack.command(STAFF, "help"))
    assert "/mappa escalate TEXT" in text_of(slack.command(STAFF, ""))


@pytest.mark.http
def test_due_for_a_chair_lists_only_their_cases(slack):
    body = text_of(slack.command(CHAIR1, "due"))
    assert "cases you chair" in body
    assert "GRA-0103" in body            # g-chair-1's overdue Level 2 review
    assert "GRA-0102" not in body        # g-chair-2's case
    # The agency by its display name (agencies.csv), as the digests and chasers name it.
    assert "meeting G2 (Electronic Monitoring Scotland)" in body and "em-provider" not in body


@pytest.mark.http
def test_due_for_the_coordinator_covers_the_area(slack):
    body = text_of(slack.command(COORD, "due 14"))
    assert "all cases in Grampian" in body
    assert "GRA-0103" in body and "GRA-0102" in body


@pytest.mark.http
def test_staff_get_no_case_lists(slack):
    body = text_of(slack.command(STAFF, "due"))
    assert "Due lists are for meeting chairs" in body and "GRA-" not in body


@pytest.mark.http
def test_overdue_shows_only_breaches(slack):
    body = text_of(slack.command(COORD, "overdue"))
    assert "Overdue MAPPA items" in body
    assert "GRA-0103" in body                # review due 2026-11-12, not held
    assert "large_yellow_circle" not in body  # nothing merely due soon


@pytest.mark.parametrize("user, allowed", [
    (COORD, True), (SOG, True), (CHAIR2, True), (CHAIR1, False), (STAFF, False),
])
@pytest.mark.http
def test_case_detail_only_for_coordinator_sog_chair_and_the_cases_chair(slack, user, allowed):
    reply = slack.command(user, "case GRA-0102")
    body = text_of(reply)
    assert reply["response_type"] == "ephemeral"
    if allowed:
        assert "Case GRA-0102" in body and "G6" not in body  # G6 is after 2026-11-26
        assert "L3 due 2026-10-26: met" in body and "G5" in body
    else:
        assert "not authorised to see case" in body and "Category" not in body


@pytest.mark.http
def test_unknown_case_gives_the_same_answer_as_a_forbidden_one(slack):
    assert "not authorised to see case" in text_of(slack.command(COORD, "case GRA-9999"))


# ------------------------------------------------------------------ escalate


@pytest.mark.http
def test_escalate_reaches_the_sog_chair_at_once_and_only_the_agencies_chosen(slack):
    reply = slack.command(CHAIR1, "escalate Housing placement for em-provider tag failed <@U0>",
                          trigger_id="trig-esc-1")
    body = text_of(reply)
    assert "Raised as urgent issue #1" in body and "Kirsty SOG (Slack)" in body
    dm = slack.stand_in.wait_for("/api/chat.postMessage")[0]["body"]
    assert dm["channel"] == SOG
    assert "&lt;@U0&gt;" in json.dumps(dm["blocks"])  # user text cannot ping anyone
    # em-provider is a word of the text, not a choice: nothing is e-mailed until chosen.
    assert slack.smtp.messages == []
    state = {"escalate:1": {"escalate_choose": {"type": "multi_static_select",
                                                "selected_options": [{"value": "em-provider"}]}}}
    r = slack.act(CHAIR1, "escalate_agencies", "1", state=state)
    assert "e-mailed whole to Electronic Monitoring Scotland (ops@em.example)" in text_of(
        slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
    addresses = sorted(r for m in slack.smtp.messages for r in m.rcpt_tos)
    assert addresses == ["ops@em.example"]  # one e-mail an agency
    mail = slack.smtp.messages[0].content.decode()
    assert "multipart/alternative" in mail and "text/html" in mail
    # The same request again (its trigger_id) raises nothing new.
    again = slack.command(CHAIR1, "escalate Housing placement for em-provider tag failed <@U0>",
                          trigger_id="trig-esc-1")
    assert "Already done" in text_of(again)
    assert len(slack.stand_in.posts("/api/chat.postMessage")) == 1
    assert len(slack.smtp.messages) == 1


# ------------------------------------------------------------------ buttons


def _meeting(engine, mid):
    m = SQLModel.metadata.tables["meeting"]
    with engine.connect() as conn:
        return dict(conn.execute(select(m).where(m.c.meeting_id == mid)).mappings().one())


@pytest.mark.http
def test_minutes_and_rmp_buttons_record_today_once(slack):
    # G12's minutes are dated 2026-11-27 in the files; clear them as if not yet issued.
    with slack.engine.begin() as conn:
        conn.execute(text("UPDATE meeting SET minutes_issued = NULL, rmp_ratified = NULL WHERE meeting_id = 'G12'"))
    r1 = slack.act(CHAIR2, "minutes_issued", "minutes:G12")
    assert "Minutes issued for `GRA-0105` (meeting G12): recorded on 2026-11-26" in text_of(slack.stand_in.wait_for(f"/response/{r1}")[0]["body"])
    r2 = slack.act(CHAIR2, "minutes_issued", "minutes:G12")  # a retry or a double click
    assert "already recorded on 2026-11-26; nothing changed" in text_of(slack.stand_in.wait_for(f"/response/{r2}")[0]["body"])
    r3 = slack.act(COORD, "rmp_ratified", "minutes:G12")
    slack.stand_in.wait_for(f"/response/{r3}")
    m = _meeting(slack.engine, "G12")
    assert (m["minutes_issued"], m["rmp_ratified"]) == (TODAY, TODAY)


@pytest.mark.http
def test_contribution_received_button(slack):
    r = slack.act(CHAIR1, "contribution_received", "contribution:G2:em-provider")
    assert "Written contribution from Electronic Monitoring Scotland" in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
    inv = SQLModel.metadata.tables["invitation"]
    with slack.engine.connect() as conn:
        assert conn.execute(select(inv.c.written_contribution).where(
            (inv.c.meeting_id == "G2") & (inv.c.agency == "em-provider"))).scalar() is True


@pytest.mark.parametrize("action_id, extra, until", [
    ("snooze_1wd", {}, dt.date(2026, 11, 27)),
    ("snooze_3wd", {}, dt.date(2026, 12, 2)),   # 27 Nov, (30 Nov St Andrew's Day), 1, 2 Dec
    ("snooze_until", {"type": "datepicker", "selected_date": "2026-12-10"}, dt.date(2026, 12, 10)),
])
@pytest.mark.http
def test_snooze_buttons(slack, action_id, extra, until):
    r = slack.act(CHAIR1, action_id, "review:GRA-0103:L2:2026-11-12", **extra)
    assert "Escalations to the SOG chair are not silenced" in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
    snooze = SQLModel.metadata.tables["snooze"]
    with slack.engine.connect() as conn:
        assert conn.execute(select(snooze.c.until)).scalar() == until


@pytest.mark.http
def test_record_reason_opens_a_modal_and_saves_the_submission(slack):
    slack.act(CHAIR1, "record_reason", "minutes:G8")
    view = slack.stand_in.wait_for("/api/views.open")[0]["body"]["view"]
    assert view["callback_id"] == "record_reason_modal" and view["private_metadata"] == "minutes:G8"
    body = view_body(CHAIR1, "minutes:G8", "information_late", "Police report arrived late")
    status, out, _ = post(slack.server.url + "/slack/events", body, sign(body))
    assert status == 200 and out == ""
    assert _meeting(slack.engine, "G8")["reason"] == "information_late"
    # The confirmation names the reason in words, as the form offered it.
    confirmed = slack.stand_in.wait_for("/api/chat.postMessage")[0]["body"]["text"]
    assert confirmed.startswith(':memo: Reason "Information late" recorded for ')
    note = SQLModel.metadata.tables["item_note"]
    with slack.engine.connect() as conn:
        assert conn.execute(select(note.c.text)).scalar() == "Police report arrived late"
    # Retried submission: still one note.
    post(slack.server.url + "/slack/events", body, sign(body))
    with slack.engine.connect() as conn:
        assert len(conn.execute(select(note.c.id)).all()) == 1


@pytest.mark.http
def test_reason_modal_without_a_reason_shows_an_error_in_the_modal(slack):
    body = view_body(CHAIR1, "minutes:G8", None)
    status, out, _ = post(slack.server.url + "/slack/events", body, sign(body))
    assert status == 200 and json.loads(out)["response_action"] == "errors"


@pytest.mark.http
@pytest.mark.parametrize("user", [STAFF, CHAIR1, "U999NOBODY"])
def test_buttons_refuse_people_who_may_not_act_on_the_case(slack, user):
    # GRA-0102 / G5 is chaired by g-chair-2.
    r = slack.act(user, "minutes_issued", "minutes:G5")
    body = text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
    assert "Only the case's chair" in body or "not authorised" in body
    assert _meeting(slack.engine, "G5")["minutes_issued"] == dt.date(2026, 11, 6)


def escalate(engine) -> None:
    """The day's escalations planned into the outbox: an acknowledgement is only of an
    item escalated to the SOG chair (bot/commands/actions.py)."""
    from zoneinfo import ZoneInfo

    from bot.jobs.ticks import run_planning_job
    now = dt.datetime.combine(TODAY, dt.time(9), tzinfo=ZoneInfo("Europe/London"))
    assert not run_planning_job(engine, "escalations", now, NudgeRules()).planned.empty


@pytest.mark.http
def test_sog_chair_acknowledges_an_escalation_once(slack):
    value = "review:GRA-0103:L2:2026-11-12|breach"
    r = slack.act(SOG, "ack_escalation", value)  # not escalated yet: not acknowledged
    assert "not sent to you" in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
    escalate(slack.engine)
    r = slack.act(CHAIR1, "ack_escalation", value)
    assert "Only a SOG chair" in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
    for _ in range(2):  # a retry changes nothing
        r = slack.act(SOG, "ack_escalation", value)
        assert "Acknowledged" in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
    ack = SQLModel.metadata.tables["escalation_ack"]
    with slack.engine.connect() as conn:
        assert conn.execute(select(ack.c.item_key, ack.c.stage, ack.c.person_id)).all() == [
            ("review:GRA-0103:L2:2026-11-12", "breach", "g-sog")]


@pytest.mark.http
def test_acknowledge_all_shown_records_what_the_sog_chair_was_shown(slack):
    """The real escalation's bulk button, pressed over signed HTTP: exactly the shown items
    are acknowledged, once; a stale key in the value is named, not fatal; a chair may not."""
    from bot.channels import render
    from mappa_core.rules.planner import plan_escalations
    from mappa_core.rules.indicators import compute_deadlines
    from mappa_core.storage.queries import load_records
    from tests.channels.test_escalation import slack_problems

    records = load_records(slack.engine)
    planned = plan_escalations(compute_deadlines(records, TODAY), records.people,
                               NudgeRules())
    blocks = render(planned.to_dict("records")).blocks
    assert slack_problems(blocks, "Grampian escalation") == []
    (button,) = [e for b in blocks if b["type"] == "actions" for e in b["elements"]
                 if e["action_id"] == "ack_escalation_shown"]
    shown = sorted(zip(planned["item_key"], planned["stage"]))
    assert len(shown) == 3 and button["text"]["text"] == "Acknowledge all 3 shown"
    r = slack.act(CHAIR1, "ack_escalation_shown", button["value"])
    assert "Only a SOG chair" in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
    escalate(slack.engine)
    for _ in range(2):  # a retry changes nothing
        r = slack.act(SOG, "ack_escalation_shown", button["value"] + "|minutes:NO-SUCH|breach")
        reply = text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])
        assert "Acknowledged 3 of 4" in reply and "minutes:NO-SUCH" in reply
    ack = SQLModel.metadata.tables["escalation_ack"]
    with slack.engine.connect() as conn:
        rows = conn.execute(select(ack.c.item_key, ack.c.stage, ack.c.person_id)).all()
    assert sorted(rows) == [(k, s, "g-sog") for k, s in shown]
    # Once acknowledged, the next escalation run plans none of them.
    acks = pd.DataFrame(rows, columns=["item_key", "stage", "person_id"])
    assert plan_escalations(compute_deadlines(records, TODAY), records.people, NudgeRules(),
                            acks).empty
    r = slack.act(SOG, "ack_escalation_shown", "not|a|pair")
    assert "no longer matches" in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])


@pytest.mark.http
def test_stale_button_is_explained(slack):
    r = slack.act(CHAIR1, "minutes_issued", "minutes:NO-SUCH")
    assert "no longer matches a record" in text_of(slack.stand_in.wait_for(f"/response/{r}")[0]["body"])


# ------------------------------------------------------------------ failures and audit


@pytest.mark.http
def test_handler_failure_apologises_with_an_error_id_that_the_log_holds(slack, caplog):
    with slack.engine.begin() as conn:
        conn.execute(text("DROP TABLE invitation"))
    with caplog.at_level(logging.ERROR, logger="mappa.slack"):
        body = text_of(slack.command(STAFF, "status"))
    assert "Sorry, something went wrong" in body
    error_id = body.split("error id `")[1].split("`")[0]
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert audit_rows(slack.engine)[-1]["outcome"] == f"error:{error_id}"


@pytest.mark.http
def test_every_command_is_audited(slack):
    slack.command(STAFF, "status level3")
    slack.command(CHAIR1, "case GRA-0102")
    rows = audit_rows(slack.engine, 2)
    assert [(r["person_id"], r["action"], r["outcome"]) for r in rows[-2:]] == [
        ("g-staff", "command:status", "ok"), ("g-chair-1", "command:case", "ok"),
    ]
    assert rows[-1]["detail"] == "case GRA-0102"


def test_serve_without_the_signing_secret_names_it(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-x")
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["serve"])
    assert exc.value.code == 2
    assert "SLACK_SIGNING_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("SLACK_BOT_TOKEN", "not-a-token")
    with pytest.raises(SystemExit):
        main(["serve"])
    err = capsys.readouterr().err  # one line: the variable, its value (a secret: ***), what is expected
    assert "SLACK_BOT_TOKEN=***: does not start with xoxb-" in err and "not-a-token" not in err


@pytest.mark.http
def test_a_snooze_counts_the_working_days_of_the_case_s_area(slack):
    # Grampian keeps 27 November as a local holiday: one working day on from Thursday 26th
    # is then Tuesday 1 December (28-29 weekend, 30 St Andrew's Day).
    holiday = SQLModel.metadata.tables["local_holiday"]
    with slack.engine.begin() as conn:
        conn.execute(holiday.insert().values(area="Grampian", date=dt.date(2026, 11, 27), name="local"))
    r = slack.act(CHAIR1, "snooze_1wd", "review:GRA-0103:L2:2026-11-12")
    slack.stand_in.wait_for(f"/response/{r}")
    snooze = SQLModel.metadata.tables["snooze"]
    with slack.engine.connect() as conn:
        assert conn.execute(select(snooze.c.until)).scalar() == dt.date(2026, 12, 1)
