"""`mappa config`: every setting in force and where it came from; secrets as ***.

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

from bot.cli.common import Col, loaded, table


def config_arguments(p) -> None:
    p.set_defaults(func=cmd_config)


def cmd_config(args) -> int:
    from bot.settings import Settings, _meta

    found = loaded()
    rows = [(f"{_meta(n)['env']}={found.settings.shown(n)}", f"# {found.sources[n]}")
            for n in Settings.model_fields]
    file_note = f"{found.env_file}" if found.env_file else "no settings file (.env) found"
    print(f"# settings in force: environment, then {file_note}, then the defaults")
    print(table([Col(width=None), Col(gap="  ")], rows, header=False))
    return 0


ARGUMENTS = {"config": config_arguments}
