"""Settings from the environment or a `.env` file (the environment wins); see .env.example."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from dotenv import dotenv_values

from mappa_core.db import DEFAULT_URL


class SettingsError(ValueError):
    """A required setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_URL
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    smtp_tls: bool = False
    smtp_timeout: float = 30.0
    mail_from: str = "mappa-bot@localhost"
    timezone: str = "Europe/London"
    log_format: str = "text"            # MAPPA_LOG_FORMAT: text | json
    http_port: int | None = None        # MAPPA_HTTP_PORT: /healthz, /readyz, /metrics in Socket Mode
    max_body_bytes: int = 1_000_000     # MAPPA_MAX_BODY_BYTES: larger requests get 413 unread
    commands_per_user: int = 1          # MAPPA_COMMANDS_PER_USER: in flight at once, per person
    max_queued_commands: int = 8        # MAPPA_MAX_QUEUED_COMMANDS: beyond this, "busy, try again"
    max_wait_seconds: float = 3.0       # MAPPA_MAX_WAIT_SECONDS: a command waiting longer is "busy"
    answer_seconds: float = 8.0         # MAPPA_ANSWER_SECONDS: past this, "taking longer, ask again"
    work_processes: int = 0             # MAPPA_WORK_PROCESSES: answers computed in N processes

    def __repr__(self) -> str:  # never print secrets
        return f"Settings(database_url={_hide(self.database_url)!r}, slack_api_url={self.slack_api_url!r}, smtp_host={self.smtp_host!r})"


def _hide(url: str) -> str:
    p = urlparse(url)
    if p.password:
        return url.replace(f":{p.password}@", ":***@")
    return url


def _bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "yes", "true", "on"):
        return True
    if low in ("0", "no", "false", "off", ""):
        return False
    raise SettingsError(f"{name} must be yes or no, not {value!r}")


def _env(env_file: str | Path | None) -> dict[str, str]:
    values: dict[str, str] = {}
    path = Path(env_file) if env_file else Path(".env")
    if path.is_file():
        values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ)
    return values


def load_settings(mode: str = "cli", env_file: str | Path | None = None) -> Settings:
    """Read and check the settings `mode` needs: `cli`, `http` or `socket`."""
    env = _env(env_file)
    get = lambda name, default="": (env.get(name) or default).strip()  # noqa: E731

    def required(name: str, prefix: str = "") -> str:
        value = get(name)
        if not value:
            raise SettingsError(f"{name} is not set (see .env.example)")
        if prefix and not value.startswith(prefix):
            raise SettingsError(f"{name} should start with {prefix!r}")
        return value

    api_url = get("SLACK_API_URL", "https://slack.com/api/")
    if urlparse(api_url).scheme not in ("http", "https") or not urlparse(api_url).netloc:
        raise SettingsError(f"SLACK_API_URL must be an http(s) URL, not {api_url!r}")
    if not api_url.endswith("/"):
        api_url += "/"
    port_text = get("SMTP_PORT", "587")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SettingsError(f"SMTP_PORT must be a port number, not {port_text!r}")
    timeout_text = get("SMTP_TIMEOUT", "30")
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise SettingsError(f"SMTP_TIMEOUT must be a number of seconds, not {timeout_text!r}") from None

    def number(name: str, default: int, low: int = 1) -> int:
        value = get(name, str(default))
        if not value.isdigit() or int(value) < low:
            raise SettingsError(f"{name} must be a whole number of at least {low}, not {value!r}")
        return int(value)

    log_format = get("MAPPA_LOG_FORMAT", "text").lower()
    if log_format not in ("text", "json"):
        raise SettingsError(f"MAPPA_LOG_FORMAT must be text or json, not {log_format!r}")
    http_port = get("MAPPA_HTTP_PORT")
    if http_port and not (http_port.isdigit() and 0 < int(http_port) < 65536):
        raise SettingsError(f"MAPPA_HTTP_PORT must be a port number, not {http_port!r}")

    bot_token = signing = app_token = ""
    if mode in ("http", "socket"):
        bot_token = required("SLACK_BOT_TOKEN", "xoxb-")
    if mode == "http":
        signing = required("SLACK_SIGNING_SECRET")
    if mode == "socket":
        app_token = required("SLACK_APP_TOKEN", "xapp-")
    return Settings(
        database_url=get("MAPPA_DATABASE_URL", DEFAULT_URL),
        slack_bot_token=bot_token or get("SLACK_BOT_TOKEN"),
        slack_signing_secret=signing or get("SLACK_SIGNING_SECRET"),
        slack_app_token=app_token or get("SLACK_APP_TOKEN"),
        slack_api_url=api_url,
        smtp_host=get("SMTP_HOST"),
        smtp_port=int(port_text),
        smtp_username=get("SMTP_USERNAME"),
        smtp_password=get("SMTP_PASSWORD"),
        smtp_starttls=_bool("SMTP_STARTTLS", get("SMTP_STARTTLS", "yes")),
        smtp_tls=_bool("SMTP_TLS", get("SMTP_TLS", "no")),
        smtp_timeout=timeout,
        mail_from=get("MAIL_FROM", "mappa-bot@localhost"),
        log_format=log_format,
        http_port=int(http_port) if http_port else None,
        max_body_bytes=number("MAPPA_MAX_BODY_BYTES", 1_000_000, 1024),
        commands_per_user=number("MAPPA_COMMANDS_PER_USER", 1),
        max_queued_commands=number("MAPPA_MAX_QUEUED_COMMANDS", 8),
        max_wait_seconds=number("MAPPA_MAX_WAIT_SECONDS", 3),
        answer_seconds=number("MAPPA_ANSWER_SECONDS", 8),
        work_processes=number("MAPPA_WORK_PROCESSES", 2, low=0),
    )
