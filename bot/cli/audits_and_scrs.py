"""`mappa audit` (case and meeting audits) and `mappa scr` (Significant Case Reviews:
recommendations and actions).

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

import datetime as dt

from bot.cli.common import UsageError, date_arg, engine, today
from mappa_core.rules.periods import parse_period
from mappa_core.rules.values import parse_yes_no


def audit_arguments(au) -> None:
    ausub = au.add_subparsers(dest="audit_command", required=True)
    aus = ausub.add_parser("sample", help="a reproducible random sample of cases, by level")
    aus.add_argument("--year", required=True)
    aus.add_argument("--levels", default="2,3")
    aus.add_argument("--n", type=int, default=10, help="cases per level")
    aus.add_argument("--seed", type=int, required=True)
    aus.add_argument("--area")
    aus.add_argument("--save", action="store_true", help="record the sample as the year's audit")
    aus.set_defaults(func=cmd_audit)
    aur = ausub.add_parser("record", help="record a sampled case's audit findings")
    aur.add_argument("ref")
    aur.add_argument("--year", required=True)
    for flag in ("referral-reviewed", "minutes-reviewed", "all-agencies-present", "actions-on-time"):
        aur.add_argument(f"--{flag}", metavar="yes|no")
    aur.add_argument("--rmp-quality", choices=["good", "adequate", "poor"])
    for text_flag in ("effective-practice", "improvements", "feedback-to-sog"):
        aur.add_argument(f"--{text_flag}")
    aur.add_argument("--auditor")
    aur.add_argument("--completed", type=date_arg)
    aur.set_defaults(func=cmd_audit)
    aum = ausub.add_parser("meeting", help="record a quarter's audit of a chair's meetings")
    aum.add_argument("--quarter", required=True)
    aum.add_argument("--chair", required=True)
    aum.add_argument("--meeting")
    aum.add_argument("--findings", default="")
    aum.add_argument("--auditor")
    aum.add_argument("--completed", type=date_arg)
    aum.set_defaults(func=cmd_audit)
    aul = ausub.add_parser("list", help="audits recorded")
    aul.add_argument("--year")
    aul.set_defaults(func=cmd_audit)


def scr_arguments(sc) -> None:
    scsub = sc.add_subparsers(dest="scr_command", required=True)
    sca = scsub.add_parser("add")
    sca.add_argument("title")
    sca.add_argument("--area")
    sca.add_argument("--published", type=date_arg)
    sca.set_defaults(func=cmd_scr)
    scr_ = scsub.add_parser("recommend")
    scr_.add_argument("scr_id", type=int)
    scr_.add_argument("text")
    scr_.set_defaults(func=cmd_scr)
    scac = scsub.add_parser("action")
    scac.add_argument("recommendation_id", type=int)
    scac.add_argument("text")
    scac.add_argument("--owner", required=True, help="owner agency id")
    scac.add_argument("--due", type=date_arg, required=True)
    scac.set_defaults(func=cmd_scr)
    scu = scsub.add_parser("update")
    scu.add_argument("action_id", type=int)
    scu.add_argument("text")
    scu.add_argument("--done", action="store_true")
    scu.set_defaults(func=cmd_scr)
    scl = scsub.add_parser("list")
    scl.add_argument("--area")
    scl.add_argument("--overdue", action="store_true")
    scl.add_argument("--as-of", type=date_arg)
    scl.set_defaults(func=cmd_scr)


ARGUMENTS = {"audit": audit_arguments, "scr": scr_arguments}


def _yes_no(text: str) -> bool:
    try:
        return parse_yes_no(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_audit(args) -> int:
    from mappa_core.storage import audits_and_scrs

    store = engine()
    try:
        if args.audit_command == "sample":
            year = parse_period(args.year)
            if year.label != args.year:
                raise UsageError("--year is a reporting year such as 2026-27")
            levels = [int(x) for x in args.levels.split(",") if x.strip()]
            if not levels or set(levels) - {1, 2, 3}:
                raise UsageError("--levels is a comma list of 1, 2, 3")
            if args.n < 1:
                raise UsageError("--n must be at least 1")
            sample = audits_and_scrs.sample_cases(store, year, levels, args.n, args.seed, args.area)
            print(f"{args.year} case audit sample (seed {args.seed}), {args.n} per level:")
            for level in levels:
                sub = sample[sample["level"] == level]
                pop = int(sub["population"].iloc[0]) if len(sub) else 0
                print(f"  Level {level}: {len(sub)} of {pop}: {', '.join(sub['ref']) or '(none)'}")
            if args.save:
                n = audits_and_scrs.save_sample(store, args.year, sample, args.seed,
                                                dt.datetime.now(dt.UTC))
                print(f"saved {n} new case(s) to the {args.year} audit")
            return 0
        if args.audit_command == "record":
            findings = {k: _yes_no(getattr(args, k)) for k in audits_and_scrs.FINDING_FLAGS
                        if getattr(args, k) is not None}
            findings.update({k: getattr(args, k) for k in audits_and_scrs.FINDING_TEXTS
                             if getattr(args, k) is not None})
            if args.rmp_quality:
                findings["rmp_quality"] = args.rmp_quality
            audits_and_scrs.record_case_audit(store, args.year, args.ref, findings,
                                              args.completed or today(), args.auditor)
            print(f"recorded the {args.year} audit of {args.ref}")
            return 0
        if args.audit_command == "meeting":
            quarter = parse_period(args.quarter)
            if "-Q" not in args.quarter:
                raise UsageError("--quarter is a quarter such as 2026-27-Q3")
            audits_and_scrs.record_meeting_audit(store, quarter.label, args.chair, args.findings,
                                                 args.completed or today(), args.meeting, args.auditor)
            print(f"recorded the {quarter.label} meeting audit of {args.chair}")
            return 0
        cases, meetings = audits_and_scrs.audits_frames(store)
        if args.year:
            cases = cases[cases["year"] == args.year]
        print(cases[["year", "ref", "level", "completed_on", "rmp_quality"]].to_string(index=False)
              if not cases.empty else "no case audits")
        print(meetings[["quarter", "chair_id", "meeting_id", "completed_on"]].to_string(index=False)
              if not meetings.empty else "no meeting audits")
        return 0
    except audits_and_scrs.OversightError as exc:
        raise UsageError(str(exc)) from None


def cmd_scr(args) -> int:
    from mappa_core.storage import audits_and_scrs

    store = engine()
    try:
        if args.scr_command == "add":
            print(f"SCR {audits_and_scrs.add_scr(store, args.title, args.area, args.published)} added")
        elif args.scr_command == "recommend":
            print(f"recommendation {audits_and_scrs.add_recommendation(store, args.scr_id, args.text)} added")
        elif args.scr_command == "action":
            aid = audits_and_scrs.add_action(store, args.recommendation_id, args.owner, args.due, args.text)
            print(f"action {aid} added, owned by {args.owner}, due {args.due}")
        elif args.scr_command == "update":
            audits_and_scrs.add_update(store, args.action_id, args.text, dt.datetime.now(dt.UTC),
                                       done_on=today() if args.done else None)
            print(f"action {args.action_id} updated" + (" and closed" if args.done else ""))
        else:
            actions = audits_and_scrs.scr_actions(store, args.as_of or today(), args.area)
            if args.overdue:
                actions = actions[actions["overdue"]]
            if actions.empty:
                print("no SCR actions")
            for a in actions.itertuples(index=False):
                flag = "OVERDUE " if a.overdue else ""
                print(f"{flag}#{a.id} {a.title} | {a.owner_agency} | due {a.due} | {a.status}: {a.description}")
        return 0
    except audits_and_scrs.OversightError as exc:
        raise UsageError(str(exc)) from None
