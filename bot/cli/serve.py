"""`mappa serve`: the Slack bot, in HTTP mode or Socket Mode, with the job scheduler.

Heavy libraries (pandas, SQLAlchemy, pydantic, ...) are imported inside the commands that
use them, so that `mappa <command> --help` loads none (see bot/cli/__init__.py)."""

from __future__ import annotations

from bot.cli.common import UsageError, settings


def serve_arguments(v) -> None:
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=3000)
    v.add_argument("--socket-mode", action="store_true", help="connect out to Slack (SLACK_APP_TOKEN)")
    v.add_argument("--env-file", dest="serve_env_file",
                   help="settings file (default .env in the working directory)")
    v.add_argument("--health-port", type=int, help="Socket Mode: serve /healthz, /readyz and "
                   "/metrics on this port (default MAPPA_HTTP_PORT)")
    v.set_defaults(func=cmd_serve)


ARGUMENTS = {"serve": serve_arguments}


def cmd_serve(args) -> int:
    from bot.logs import configure_logging
    from bot.server import serve
    from bot.settings import SettingsError, require

    try:
        require(settings(), "socket" if args.socket_mode else "http")
    except SettingsError as exc:
        raise UsageError(f"cannot start: {exc}") from None
    configure_logging(settings().log_format)
    serve(settings(), args.host, args.port, args.socket_mode, settings().nudge_rules(),
          args.health_port)
    return 0
