"""`mappa demo-day` (a simulated working day of jobs, on a copy of the data) and
`mappa demo-data DIR` (a synthetic Scotland's CSV files).

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

from pathlib import Path

from bot.cli.common import UsageError, date_arg, settings, today


def demo_day_arguments(dd) -> None:
    dd.add_argument("--as-of", type=date_arg, help="the day (default today; weekends move on)")
    dd.add_argument("--show", type=int, default=3, help="Slack messages to print in full")
    dd.set_defaults(func=cmd_demo_day)


def demo_data_arguments(g) -> None:
    g.add_argument("dir")
    g.add_argument("--individuals", type=int, default=7000,
                   help="how many, spread over the areas by population (default 7000, about "
                        "Scotland's caseload)")
    g.add_argument("--years", type=int, default=5)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--until", type=date_arg, help="last day of history (default today)")
    g.add_argument("--areas", metavar="NAME[,NAME...]",
                   help="only these MAPPA areas (e.g. Grampian; default all ten)")
    g.set_defaults(func=cmd_demo_data)


ARGUMENTS = {"demo-day": demo_day_arguments, "demo-data": demo_data_arguments}


def cmd_demo_day(args) -> int:
    from bot.simulated_day import demo_day_on_copy
    from bot.settings import hide_password

    config = settings()
    print(demo_day_on_copy(config.database_url, args.as_of or today(), show=args.show,
                           rules=config.nudge_rules(), tz=config.tz,
                           shown_url=hide_password(config.database_url)), end="")
    return 0


def cmd_demo_data(args) -> int:
    from mappa_core.synthetic_region import select_areas, write_demo_data

    if args.individuals < 1 or args.years < 1:
        raise UsageError("--individuals and --years must be at least 1")
    try:
        areas = select_areas([a for a in (args.areas or "").split(",") if a.strip()])
    except ValueError as e:
        raise UsageError(f"--areas: {e}") from None
    until = args.until or today()
    counts = write_demo_data(
        Path(args.dir), individuals=args.individuals, years=args.years, seed=args.seed,
        until=until, areas=areas,
    )
    where = "Scotland's ten MAPPA areas" if len(areas) == 10 else ", ".join(areas)
    print(
        f"wrote synthetic data for {where} to {args.dir} (seed {args.seed}, up to {until}): "
        + ", ".join(f"{n} {name}" for name, n in counts.items())
    )
    return 0
