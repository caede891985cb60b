"""`mappa config`: every setting in force and where it came from; secrets as ***."""

from __future__ import annotations

from bot.cli.common import Col, loaded, table


def register(sub) -> None:
    sub.add_parser("config", help="the settings in force and where each came from").set_defaults(
        func=cmd_config)


def cmd_config(args) -> int:
    from bot.settings import Settings, _meta

    found = loaded()
    rows = [(f"{_meta(n)['env']}={found.settings.shown(n)}", f"# {found.sources[n]}")
            for n in Settings.model_fields]
    file_note = f"{found.env_file}" if found.env_file else "no settings file (.env) found"
    print(f"# settings in force: environment, then {file_note}, then the defaults")
    print(table([Col(width=None), Col(gap="  ")], rows, header=False))
    return 0
