"""The one settings object: the process environment and `.env`, the environment winning.

Every `mappa` command and the bot read their settings here, once, at start (`load_settings`);
the pure core never reads the environment and receives values as arguments (the bot builds
`NudgeRules` with `Settings.nudge_rules()`, the database engine from `database_url`).

Each setting is one line below: a typed field whose default is `setting(...)`, naming the
environment variable, the default, what a good value looks like (for the one-line error:
`MAPPA_REVIEW_NUDGE_WD=abc: expected a whole number of working days`), whether it is a
secret (shown as `***` by `mappa config`) and any bound pydantic checks (`ge=`, `le=`...).

To add a setting:
  1. one line here, e.g.
     `smtp_ca_file: str = setting("SMTP_CA_FILE", "", "a readable PEM file of CA certificates")`
     (a check beyond the type and bounds goes in a `@field_validator` that raises ValueError);
  2. the variable, its default and a comment in `.env.example`
     (tests/cli/test_settings.py fails until the two list the same names and defaults).
It then shows in `mappa config` and is `settings.smtp_ca_file` everywhere.

`Settings(...)` built directly (tests, the demo) takes only its arguments and defaults; it
never reads the environment. `load_settings()` is what reads the environment and `.env`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    SettingsConfigDict,
)

from mappa_core.rules.values import parse_yes_no

DEFAULT_DATABASE_URL = "sqlite:///mappa.db"
DEFAULT_ENV_FILE = ".env"
WD = "a whole number of working days"
DAYS = "a whole number of days"
HHMM = "a time of day as HH:MM"
YES_NO = "yes or no"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one line naming it."""


def setting(env: str, default: Any, expected: str, *, secret: bool = False, **checks: Any) -> Any:
    """A field read from the environment variable `env` (see the module docstring)."""
    return Field(default, validation_alias=env,
                 json_schema_extra={"env": env, "expected": expected, "secret": secret}, **checks)


class Settings(BaseSettings):
    """Every setting of mappa-bot (see the module docstring for how to add one)."""

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True,
        validate_by_name=True, validate_by_alias=True, validate_default=False,
    )

    # Storage
    database_url: str = setting("MAPPA_DATABASE_URL", DEFAULT_DATABASE_URL,
                                "a sqlite:///FILE or postgresql+psycopg://user@host:port/db URL")
    # Slack
    slack_bot_token: str = setting("SLACK_BOT_TOKEN", "", "a bot token starting xoxb-", secret=True)
    slack_signing_secret: str = setting("SLACK_SIGNING_SECRET", "", "the app's signing secret",
                                        secret=True)
    slack_app_token: str = setting("SLACK_APP_TOKEN", "", "an app-level token starting xapp-",
                                   secret=True)
    slack_api_url: str = setting("SLACK_API_URL", "https://slack.com/api/", "an http(s) URL")
    # Email
    smtp_host: str = setting("SMTP_HOST", "", "a host name (empty: no email is sent)")
    smtp_port: int = setting("SMTP_PORT", 587, "a port number from 1 to 65535", ge=1, le=65535)
    smtp_username: str = setting("SMTP_USERNAME", "", "a user name")
    smtp_password: str = setting("SMTP_PASSWORD", "", "a password", secret=True)
    smtp_starttls: bool = setting("SMTP_STARTTLS", True, YES_NO)
    smtp_tls: bool = setting("SMTP_TLS", False, YES_NO)
    smtp_timeout: float = setting("SMTP_TIMEOUT", 30.0, "a number of seconds above 0", gt=0)
    smtp_ca_file: str = setting("SMTP_CA_FILE", "", "a readable PEM file of CA certificates")
    mail_from: str = setting("MAIL_FROM", "mappa-bot@localhost", "an email address")
    # Microsoft Teams: each area's channel (indicator figures only, never a case reference)
    teams_webhooks: str = setting(
        "MAPPA_TEAMS_WEBHOOKS", "",
        'a JSON object from area name to a Teams Workflows webhook URL, e.g. '
        '{"Grampian": "https://..."}', secret=True)
    # Clock
    timezone: str = setting("MAPPA_TIMEZONE", "Europe/London",
                            "an IANA time zone such as Europe/London")
    # Nudge and escalation thresholds (SPEC section 4): mappa_core.rules.planner.NudgeRules.
    review_nudge_wd: int = setting("MAPPA_REVIEW_NUDGE_WD", 10, WD, ge=0)
    l3_review_escalate_days: int = setting("MAPPA_L3_REVIEW_ESCALATE_DAYS", 1, DAYS, ge=0)
    l2_review_escalate_wd: int = setting("MAPPA_L2_REVIEW_ESCALATE_WD", 5, WD, ge=0)
    minutes_nudge_wd: int = setting("MAPPA_MINUTES_NUDGE_WD", 7, WD, ge=0)
    minutes_escalate_wd: int = setting("MAPPA_MINUTES_ESCALATE_WD", 11, WD, ge=0)
    contribution_nudge_wd: int = setting("MAPPA_CONTRIBUTION_NUDGE_WD", 1, WD, ge=0)
    contribution_escalate_wd: int = setting("MAPPA_CONTRIBUTION_ESCALATE_WD", 5, WD, ge=0)
    disclosure_nudge_wd: int = setting("MAPPA_DISCLOSURE_NUDGE_WD", 1, WD, ge=0)
    disclosure_escalate_wd: int = setting("MAPPA_DISCLOSURE_ESCALATE_WD", 5, WD, ge=0)
    pre_release_nudge_days: int = setting("MAPPA_PRE_RELEASE_NUDGE_DAYS", 84, DAYS, ge=0)
    pre_release_escalate_days: int = setting("MAPPA_PRE_RELEASE_ESCALATE_DAYS", 35, DAYS, ge=0)
    escalation_repeat_wd: int = setting("MAPPA_ESCALATION_REPEAT_WD", 5, WD, ge=1)
    lookback_days: int = setting("MAPPA_LOOKBACK_DAYS", 90, DAYS, ge=0)
    work_start: str = setting("MAPPA_WORK_START", "08:30", HHMM)
    work_end: str = setting("MAPPA_WORK_END", "17:30", HHMM)
    # Serving (`mappa serve`): logs, operator endpoints, limits that keep one user from
    # starving the others (see docs/RELIABILITY.md).
    log_format: Literal["text", "json"] = setting("MAPPA_LOG_FORMAT", "text", "text or json")
    http_port: int | None = setting(
        "MAPPA_HTTP_PORT", None,
        "a port number from 1 to 65535 (Socket Mode: /healthz, /readyz, /metrics)", ge=1, le=65535)
    socket_grace_seconds: float = setting(
        "MAPPA_SOCKET_GRACE_SECONDS", 30.0,
        "a number of seconds of at least 0 (Socket Mode: /readyz)", ge=0)
    max_body_bytes: int = setting("MAPPA_MAX_BODY_BYTES", 1_000_000,
                                  "a number of bytes of at least 1024", ge=1024)
    commands_per_user: int = setting("MAPPA_COMMANDS_PER_USER", 1,
                                     "a whole number of commands of at least 1", ge=1)
    max_queued_commands: int = setting("MAPPA_MAX_QUEUED_COMMANDS", 8,
                                       "a whole number of commands of at least 1", ge=1)
    max_wait_seconds: float = setting("MAPPA_MAX_WAIT_SECONDS", 3.0,
                                      "a number of seconds above 0", gt=0)
    answer_seconds: float = setting("MAPPA_ANSWER_SECONDS", 8.0, "a number of seconds above 0",
                                    gt=0)
    work_processes: int = setting("MAPPA_WORK_PROCESSES", 2,
                                  "a whole number of processes (0: threads in the server)", ge=0)
    heartbeat_url: str = setting(
        "MAPPA_HEARTBEAT_URL", "",
        "an http(s) URL to ping after each job run, such as a Healthchecks.io check's ping URL "
        "(empty: no ping)", secret=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_other):
        # Only the arguments: reading the environment and .env is load_settings' job.
        return (init_settings,)

    # ------------------------------------------------------------------ checks

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # Storage decides which databases it takes; imported here, not at the top, so that
        # reading the settings pays for SQLAlchemy only when a database URL is checked.
        from mappa_core.storage.urls import database_url

        return database_url(value)

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        value = value.strip()
        p = urlparse(value)
        if p.scheme not in ("http", "https") or not p.netloc:
            raise ValueError("not an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("heartbeat_url")
    @classmethod
    def _heartbeat_url(cls, value: str) -> str:
        from urllib.parse import urlparse

        value = value.strip()
        p = urlparse(value)
        if value and (p.scheme not in ("http", "https") or not p.netloc):
            raise ValueError("not an http(s) URL")
        return value.rstrip("/")

    @field_validator("slack_bot_token", "slack_app_token")
    @classmethod
    def _token(cls, value: str, info) -> str:
        prefix = "xoxb-" if info.field_name == "slack_bot_token" else "xapp-"
        value = value.strip()
        if value and not value.startswith(prefix):
            raise ValueError(f"does not start with {prefix}")
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        value = value.strip()
        if "@" not in value or " " in value:
            raise ValueError("not an email address")
        return value

    @field_validator("smtp_ca_file")
    @classmethod
    def _ca_file(cls, value: str) -> str:
        value = value.strip()
        if value and not Path(value).is_file():
            raise ValueError("no such file")
        return value

    @field_validator("teams_webhooks")
    @classmethod
    def _teams_webhooks(cls, value: str) -> str:
        value = value.strip()
        if value:
            _webhook_map(value)
        return value

    @field_validator("smtp_starttls", "smtp_tls", mode="before")
    @classmethod
    def _yes_no(cls, value: Any) -> Any:
        # The product's one yes/no parser (the CSV import and `mappa` read it the same way).
        if not isinstance(value, str):
            return value
        try:
            return parse_yes_no(value)
        except ValueError:
            raise PydanticCustomError("bool_parsing", "not yes or no") from None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        value = value.strip()
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a known time zone") from None
        return value

    @field_validator("work_start", "work_end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        value = value.strip()
        try:
            if len(value) != 5:
                raise ValueError
            dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError("not a time of day") from None
        return value

    @model_validator(mode="after")
    def _working_hours(self) -> Settings:
        if self.work_start >= self.work_end:
            raise ValueError(f"MAPPA_WORK_END={self.work_end}: expected a time after "
                             f"MAPPA_WORK_START={self.work_start}")
        return self

    # ------------------------------------------------------------------ uses

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def nudge_rules(self):
        """The thresholds as the core's NudgeRules (same field names)."""
        # The planner imports pandas: only a command that plans or answers pays for it.
        from mappa_core.rules.planner import NudgeRules

        return NudgeRules(**{f.name: getattr(self, f.name) for f in dataclasses.fields(NudgeRules)})

    def teams_webhook_urls(self) -> dict[str, str]:
        """MAPPA_TEAMS_WEBHOOKS as area -> webhook URL."""
        return _webhook_map(self.teams_webhooks) if self.teams_webhooks else {}

    def shown(self, name: str) -> str:
        """A setting's value for people to read: secrets as ***, a URL's password hidden."""
        value = getattr(self, name)
        if value is None:  # an optional setting left unset: blank, as in .env.example
            return ""
        if _meta(name)["secret"]:
            return "***" if value else ""
        if name == "database_url":
            return hide_password(value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def __repr__(self) -> str:  # never print secrets
        return "Settings(" + ", ".join(f"{n}={self.shown(n)!r}" for n in type(self).model_fields) + ")"

    __str__ = __repr__


def _webhook_map(value: str) -> dict[str, str]:
    """A JSON object from area name to an http(s) URL; ValueError saying what is wrong
    (never the URLs themselves: they are secrets)."""
    try:
        found = json.loads(value)
    except ValueError:
        raise ValueError("not valid JSON") from None
    if not isinstance(found, dict):
        raise ValueError("not a JSON object")
    for area, url in found.items():
        if not area.strip():
            raise ValueError("an empty area name")
        p = urlparse(url) if isinstance(url, str) else None
        if p is None or p.scheme not in ("http", "https") or not p.netloc:
            raise ValueError(f"the value for {area!r} is not an http(s) URL")
    return {area.strip(): url.strip() for area, url in found.items()}


def _meta(name: str) -> dict:
    return Settings.model_fields[name].json_schema_extra  # type: ignore[return-value]


def env_names() -> dict[str, str]:
    """Environment variable -> field name, in the order of the fields."""
    return {_meta(n)["env"]: n for n in Settings.model_fields}


def defaults() -> dict[str, Any]:
    """Environment variable -> default value."""
    return {_meta(n)["env"]: f.default for n, f in Settings.model_fields.items()}


def hide_password(url: str) -> str:
    """The URL with any password as ***, even one that does not parse."""
    # Deferred as in _database_url: only a URL shown to a person needs SQLAlchemy.
    from mappa_core.storage import urls

    return urls.hide_password(url)


# ---------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    sources: dict[str, str]  # field name -> "environment", ".env" (the file's name) or "default"
    env_file: Path | None  # the file read, if any
    warnings: tuple[str, ...] = ()  # names in the settings file that are no setting


def _unknown_names(path: Path) -> tuple[str, ...]:
    """A misspelt setting in the file (MAPPA_DATABSE_URL) would silently be ignored and its
    default used: name each one, with the setting it probably meant."""
    known = list(env_names())
    out = []
    for name in dotenv_values(path):
        if name in env_names() or not name.startswith(("MAPPA_", "SLACK_", "SMTP_", "MAIL_")):
            continue
        if name == "MAPPA_TEST_POSTGRES_URL":  # the test suite's, not the product's
            continue
        close = difflib.get_close_matches(name, known, n=1)
        out.append(f"{path}: {name} is not a setting, and is ignored"
                   + (f" (did you mean {close[0]}?)" if close else ""))
    return tuple(out)


def _check_env_file(path: Path) -> None:
    """A settings file that exists must be readable and every line must parse."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: cannot read the settings file: it is not UTF-8 text") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the settings file: {exc.strerror or exc}") from None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = text[: text.find(binding.original.string)].count("\n") + 1
            raise SettingsError(f"{path}:{line}: cannot parse this line (expected NAME=value)")


def load(env_file: str | Path | None = None, environ: dict | None = None) -> Loaded:
    """Read the environment and the settings file (default `.env` in the working directory;
    a missing default file is fine, a missing named one is an error), the environment
    winning, and check every value. Raises SettingsError with one line."""
    path = Path(env_file) if env_file else Path(DEFAULT_ENV_FILE)
    if path.exists() or env_file:
        if not path.exists():
            raise SettingsError(f"{path}: the settings file does not exist")
        _check_env_file(path)
        file_values = dict(DotEnvSettingsSource(Settings, env_file=path)())
        used: Path | None = path
    else:
        file_values, used = {}, None
    if environ is None:
        env_values = dict(EnvSettingsSource(Settings)())
    else:
        names = env_names()
        env_values = {k: v for k, v in environ.items() if k in names and v != ""}
    file_values = {k: v for k, v in file_values.items() if k in env_names()}
    merged = {**file_values, **env_values}
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc, merged, env_values, path)) from None
    names = env_names()
    sources = {names[k]: ("environment" if k in env_values else str(path)) for k in merged}
    sources = {n: sources.get(n, "default") for n in Settings.model_fields}
    return Loaded(settings, sources, used, _unknown_names(used) if used else ())


def _one_line(exc: ValidationError, merged: dict, env_values: dict, path: Path) -> str:
    err = exc.errors()[0]
    names = env_names()
    if not err["loc"]:  # a check across settings (model validator)
        return str(err.get("ctx", {}).get("error") or err["msg"]).removeprefix("Value error, ")
    env = str(err["loc"][0])
    if env not in names:  # given by field name (Settings(...) in code)
        env = _meta(env)["env"] if env in Settings.model_fields else env
    meta = _meta(names[env]) if env in names else {"expected": "", "secret": False}
    raw = merged.get(env, err.get("input"))
    shown = "***" if meta["secret"] else (hide_password(str(raw)) if env == "MAPPA_DATABASE_URL"
                                          else str(raw))
    where = "environment" if env in env_values else str(path)
    why = ""
    if err["type"] == "value_error":
        why = str(err.get("ctx", {}).get("error") or "") + "; "
    return f"{env}={shown}: {why}expected {meta['expected']} (set in {where})"


def load_settings(mode: str = "cli", env_file: str | Path | None = None) -> Settings:
    """The settings `mode` needs (`cli`, `http` or `socket`), checked."""
    settings = load(env_file).settings
    require(settings, mode)
    return settings


def require(settings: Settings, mode: str) -> None:
    """What `mappa serve` cannot start without (HTTP mode or Socket Mode)."""
    needed = []
    if mode in ("http", "socket"):
        needed.append("slack_bot_token")
    if mode == "http":
        needed.append("slack_signing_secret")
    if mode == "socket":
        needed.append("slack_app_token")
    for name in needed:
        if not getattr(settings, name):
            env = _meta(name)["env"]
            raise SettingsError(f"{env} is not set: expected {_meta(name)['expected']} "
                                "(see .env.example)")
