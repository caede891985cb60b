"""The deployment files follow the code: the Slack manifest, the Dockerfile and compose.yaml.

These machines cannot build images or talk to Slack, so each test checks what can be
checked from here, against the code itself rather than against a list restated here:
- the manifest's slash commands are the ones the Bolt app registers (read from the source
  and confirmed by Bolt's own listener matching), its bot scopes are exactly those that
  the Web API methods called in bot/ and mappa_core/ need (plus `commands`), its bot
  events are the ones the app listens for, and its request URLs are paths the server
  answers;
- every `mappa` command line in the Dockerfile and compose.yaml parses with the CLI's own
  argparse parser, every variable they give the bot is in .env.example, and the health
  check asks for a path the server answers.
"""

from __future__ import annotations

import ast
import asyncio
import fnmatch
import inspect
import json
import re
import shlex
import urllib.parse
from pathlib import Path

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli import build_parser
from bot.server import build_asgi
from bot.settings import Settings
from mappa_core.storage import db

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "slack" / "manifest.yml"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
PLACEHOLDER_HOST = "YOUR-HOST"

# Bot-token scopes each Slack Web API method needs (Slack's method reference pages).
# A method the code calls that is missing here fails the test: look its scopes up and add
# it, and the manifest with it. Methods that need no scope map to an empty set.
SCOPES_OF_METHOD: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "conversations.open": {"im:write"},
    "conversations.info": {"channels:read", "groups:read", "im:read", "mpim:read"},
    "users.info": {"users:read"},
    "users.lookupByEmail": {"users:read", "users:read.email"},
    "views.open": set(),
    "views.push": set(),
    "views.update": set(),
    "views.publish": set(),
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
    "files.upload": {"files:write"},
    "reactions.add": {"reactions:write"},
}
# Bolt listener kinds that need interactivity (buttons, modals, shortcuts, menus).
INTERACTIVE_LISTENERS = {"action", "block_action", "view", "view_submission", "view_closed",
                         "shortcut", "global_shortcut", "message_shortcut", "options",
                         "block_suggestion"}
EVENT_LISTENERS = {"event", "message"}


def _sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _load_yaml(path: Path) -> dict:
    # PyYAML is in the test extra; a lock file that predates it skips the YAML tests, saying why.
    yaml = pytest.importorskip("yaml", reason="PyYAML (test extra) is not installed: run make lock")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _manifest() -> dict:
    return _load_yaml(MANIFEST)



def _listener_registrations() -> dict[str, set[str]]:
    """Bolt listener registrations in bot/: kind (`command`, `action`, ...) -> the literal
    first arguments (empty when the argument is computed, as for the action loop)."""
    found: dict[str, set[str]] = {}
    for path in _sources("bot"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "app"):
                continue
            kind = node.func.attr
            if kind not in {"command"} | INTERACTIVE_LISTENERS | EVENT_LISTENERS:
                continue
            names = found.setdefault(kind, set())
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
    return found


def _web_api_methods_called() -> set[str]:
    """Slack Web API method names (`chat.postMessage`) the code calls: every attribute name
    used in bot/ and mappa_core/ that is a slack_sdk client method, mapped to the API method
    it posts to, plus any literal `api_call("...")`."""
    client_methods: dict[str, str] = {}
    for name, func in inspect.getmembers(AsyncWebClient, inspect.isfunction):
        if name.startswith("_"):
            continue
        m = re.search(r'api_call\(\s*"([A-Za-z0-9_.]+)"', inspect.getsource(func))
        if m:
            client_methods[name] = m.group(1)
    called = set()
    for path in _sources("bot", "mappa_core"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in client_methods:
                called.add(client_methods[node.attr])
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "api_call" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                called.add(node.args[0].value)
    return called


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real ASGI app (Bolt inside Starlette) on a throwaway SQLite file."""
    url = f"sqlite:///{tmp_path_factory.mktemp('deploy') / 'mappa.db'}"
    engine = db.make_engine(url)
    settings = Settings(work_processes=0, database_url=url, slack_bot_token="xoxb-test",
                        slack_signing_secret="test-secret")
    asgi = build_asgi(settings, engine)
    yield asgi
    engine.dispose()


def _routes(asgi, method: str) -> set[str]:
    return {r.path for r in asgi.routes if method in (getattr(r, "methods", None) or set())}


# ----------------------------------------------------------------------------- manifest


def test_manifest_slash_commands_are_the_ones_the_bolt_app_registers(server):
    registered = _listener_registrations().get("command", set())
    assert registered, "found no app.command(...) registration in bot/"
    commands = [c["command"] for c in _manifest()["features"]["slash_commands"]]
    assert len(commands) == len(set(commands))
    assert set(commands) == registered
    # Bolt itself routes each manifest command to a listener, and nothing else.
    listeners = server.state.bolt._async_listeners

    async def handled(command: str) -> bool:
        body = urllib.parse.urlencode({"command": command, "text": "help", "user_id": "U1",
                                       "team_id": "T1"})
        req = AsyncBoltRequest(body=body, mode="socket_mode",
                               headers={"content-type": ["application/x-www-form-urlencoded"]})
        return any([await lst.async_matches(req=req, resp=BoltResponse(status=404))
                    for lst in listeners])

    for command in commands:
        assert asyncio.run(handled(command)), f"{command} reaches no Bolt listener"
    assert not asyncio.run(handled("/not-a-mappa-command"))


def test_manifest_asks_for_exactly_the_scopes_the_code_needs():
    called = _web_api_methods_called()
    assert "chat.postMessage" in called  # the scan finds what we know is there
    unknown = called - set(SCOPES_OF_METHOD)
    assert not unknown, f"add the bot scopes of {sorted(unknown)} to SCOPES_OF_METHOD"
    needed = set().union(*(SCOPES_OF_METHOD[m] for m in called))
    if _listener_registrations().get("command"):
        needed.add("commands")
    scopes = _manifest()["oauth_config"]["scopes"]
    assert sorted(scopes["bot"]) == sorted(needed), (
        f"methods called: {sorted(called)}; scopes needed: {sorted(needed)}")
    assert not scopes.get("user"), "the bot acts only as itself: no user scopes"


def test_manifest_interactivity_and_events_match_the_listeners():
    kinds = set(_listener_registrations())
    settings = _manifest()["settings"]
    interactive = bool(kinds & INTERACTIVE_LISTENERS)
    assert interactive, "the app registers buttons and a modal"
    assert settings["interactivity"]["is_enabled"] is True
    # The events subscribed to are exactly those a listener handles: one more would only
    # make Slack send what nobody reads, one fewer would leave a listener never called.
    events = _listener_registrations().get("event", set())
    subscribed = (settings.get("event_subscriptions") or {}).get("bot_events") or []
    assert len(subscribed) == len(set(subscribed))
    assert set(subscribed) == events
    # The Home tab is on exactly when its event is listened for.
    home = _manifest()["features"]["app_home"]["home_tab_enabled"]
    assert home is ("app_home_opened" in events)


def test_manifest_urls_are_placeholders_for_paths_the_server_answers(server):
    manifest = _manifest()
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls.append(manifest["settings"]["interactivity"]["request_url"])
    if manifest["settings"].get("event_subscriptions"):
        urls.append(manifest["settings"]["event_subscriptions"]["request_url"])
    posted = _routes(server, "POST")
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        assert parts.scheme == "https", f"{url}: Slack sends requests only to HTTPS URLs"
        assert parts.hostname == PLACEHOLDER_HOST.lower(), f"{url}: use the placeholder host"
        assert parts.path in posted, f"{url}: the server answers POST only at {sorted(posted)}"


def test_manifest_socket_mode_is_off_by_default_and_the_option_is_documented():
    assert _manifest()["settings"]["socket_mode_enabled"] is False
    text = MANIFEST.read_text(encoding="utf-8")
    assert "socket_mode_enabled" in text and "--socket-mode" in text and "SLACK_APP_TOKEN" in text
    # The flag the comment names is a real option of `mappa serve`.
    assert build_parser().parse_args(["serve", "--socket-mode"]).socket_mode is True


# ----------------------------------------------------------------------------- Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that runs)."""
    ins = _dockerfile_instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def _argv_lists(command) -> list[list[str]]:
    """The simple commands in a Dockerfile/compose command: exec form (a list, or a JSON
    array) or shell form; `sh -c "..."` is looked into."""
    if isinstance(command, str):
        text = command.strip()
        if text.startswith("["):
            command = json.loads(text)
        else:
            command = ["sh", "-c", text]
    if command[:1] in (["CMD"], ["CMD-SHELL"]):
        command = command[1:] if command[0] == "CMD" else ["sh", "-c", " ".join(command[1:])]
    if len(command) >= 3 and command[0] in ("sh", "/bin/sh", "bash") and command[1] == "-c":
        lexer = shlex.shlex(command[2], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        argvs, current = [], []
        for token in lexer:
            if token in ("&&", "||", ";", "|", "&"):
                argvs.append(current)
                current = []
            else:
                current.append(token)
        argvs.append(current)
        return [a[1:] if a[:1] == ["exec"] else a for a in argvs if a]
    return [list(command)]


def _check_mappa_command(argv: list[str]) -> object:
    """Parse a `mappa ...` argv with the CLI's own parser; fail with its message."""
    parser = build_parser()
    errors: list[str] = []
    parser.error = lambda message: errors.append(message) or (_ for _ in ()).throw(
        SystemExit(2))  # type: ignore[method-assign]
    try:
        return parser.parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{shlex.join(argv)}` is not a valid mappa command: {errors}")


def _mappa_commands(commands) -> list[list[str]]:
    return [argv for c in commands for argv in _argv_lists(c) if argv and argv[0] == "mappa"]


def test_dockerfile_mappa_commands_are_real_commands_with_real_options(server):
    runtime = _runtime_stage()
    shell_lines = [arg for word, arg in _dockerfile_instructions() if word == "RUN"]
    cmd = [arg for word, arg in runtime if word in ("CMD", "ENTRYPOINT")]
    assert len(cmd) == 1, "one CMD (or ENTRYPOINT) in the runtime stage"
    argvs = _mappa_commands(cmd)
    parsed = [_check_mappa_command(a) for a in argvs + _mappa_commands(shell_lines)]
    assert parsed
    # The schema first, then the server, in that order, and nothing else in between.
    assert len(argvs) == 2, f"the image runs `mappa db upgrade` then `mappa serve`: {argvs}"
    assert argvs[0][1:] == ["db", "upgrade"] and argvs[1][1] == "serve"
    serve = _check_mappa_command(argvs[1])
    assert serve.host == "0.0.0.0", "inside a container the server must listen on all interfaces"
    assert not serve.socket_mode
    # The port it serves on is the one the image exposes and the health check asks.
    exposed = {arg.split("/")[0] for word, arg in runtime if word == "EXPOSE"}
    assert exposed == {str(serve.port)}
    health = [arg for word, arg in runtime if word == "HEALTHCHECK"]
    assert len(health) == 1
    m = re.search(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/[A-Za-z0-9_/.-]*)", health[0])
    assert m, f"the HEALTHCHECK asks no local URL: {health[0]}"
    assert int(m.group(1)) == serve.port
    assert m.group(2) in _routes(server, "GET"), f"the server does not answer GET {m.group(2)}"
    assert m.group(2) == "/healthz"


def test_dockerfile_builds_a_wheel_and_runs_as_a_non_root_user():
    ins = _dockerfile_instructions()
    froms = [arg for word, arg in ins if word == "FROM"]
    assert len(froms) >= 2 and all("slim" in f for f in froms[-1:]), "a slim runtime stage"
    build_runs = " ".join(arg for word, arg in ins[:len(ins) - len(_runtime_stage())]
                          if word == "RUN")
    assert re.search(r"pip wheel\b|-m build\b", build_runs), "the builder stage makes the wheel"
    runtime = _runtime_stage()
    runs = " ".join(arg for word, arg in runtime if word == "RUN")
    assert re.search(r"pip install [^;&]*\.whl", runs), "the runtime installs the wheel"
    assert "-e " not in runs and "--editable" not in runs
    # The lock file, when there is one, is installed with every hash checked.
    if (ROOT / "requirements.lock").exists():
        assert "requirements.lock" in runs, "the image installs the dependencies the lock pins"
    if "requirements.lock" in runs:
        lock_installs = [part for part in re.split(r";|&&", runs) if "requirements.lock" in part
                         and "pip install" in part]
        assert lock_installs and all("--require-hashes" in p for p in lock_installs)
    users = [arg for word, arg in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    cmd_index = max(i for i, (word, _) in enumerate(runtime) if word in ("CMD", "ENTRYPOINT"))
    user_index = max(i for i, (word, _) in enumerate(runtime) if word == "USER")
    assert user_index < cmd_index


def _env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.M))


# Interpreter and pip settings of the image: not mappa settings.
GENERIC_ENV = re.compile(r"^(PYTHON|PIP_)")


def test_dockerfile_variables_are_settings_in_env_example():
    known = _env_example_names()
    assert "MAPPA_DATABASE_URL" in known
    runtime = _runtime_stage()
    args = {a.split("=")[0] for word, a in _dockerfile_instructions() if word == "ARG"}
    named = set()
    for word, arg in runtime:
        if word == "ENV":
            named |= set(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", arg))
    for _, arg in _dockerfile_instructions():
        named |= set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", arg))
    named = {n for n in named if not GENERIC_ENV.match(n) and n not in args}
    assert named, "the image sets at least the database URL"
    assert named <= known, f"not in .env.example: {sorted(named - known)}"


# ----------------------------------------------------------------------------- compose


def _compose() -> dict:
    return _load_yaml(COMPOSE)


def _bot_services(compose: dict) -> dict[str, dict]:
    """Services that run this repository's image (built from its Dockerfile)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


# Variables compose itself reads from .env for the database container (not mappa settings).
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}


def test_compose_runs_postgresql_and_two_replicas_of_the_image():
    compose = _compose()
    bots = _bot_services(compose)
    servers = {n: s for n, s in bots.items() if "command" not in s}  # the image's CMD: serve
    assert len(servers) == 2, f"two bot replicas, found {sorted(servers)}"
    images = [s["image"] for s in compose["services"].values() if "build" not in s]
    assert any(i.startswith("postgres:") for i in images)
    for name, s in bots.items():
        url = s["environment"]["MAPPA_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://"), f"{name}: replicas share PostgreSQL"
    # Two replicas cannot both publish one host port.
    published = [p for s in servers.values() for p in s.get("ports", [])]
    host_ports = [str(p).rsplit(":", 1)[0] for p in published]
    assert len(host_ports) == len(set(host_ports)) == 2
    for s in servers.values():
        assert all(str(p).endswith(":3000") for p in s.get("ports", []))


def test_compose_mappa_commands_are_real_and_the_schema_comes_first():
    compose = _compose()
    bots = _bot_services(compose)
    commands = [s["command"] for s in bots.values() if "command" in s]
    argvs = _mappa_commands(commands)
    assert argvs and all(_check_mappa_command(a) for a in argvs)
    healthchecks = [s["healthcheck"]["test"] for s in compose["services"].values()
                    if "healthcheck" in s]
    for argv in _mappa_commands(healthchecks):
        _check_mappa_command(argv)
    migrators = [n for n, s in bots.items() if _mappa_commands([s.get("command", "")])[:1]
                 and _mappa_commands([s["command"]])[0][1:3] == ["db", "upgrade"]]
    assert migrators, "a service upgrades the schema before the replicas start"
    for name, s in bots.items():
        if name in migrators:
            continue
        dep = s["depends_on"][migrators[0]]
        assert dep["condition"] == "service_completed_successfully"


def test_compose_variables_are_settings_in_env_example():
    known = _env_example_names()
    compose = _compose()
    named = set()
    for s in _bot_services(compose).values():
        env = s.get("environment") or {}
        named |= set(env) if isinstance(env, dict) else {e.split("=")[0] for e in env}
    named |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text(encoding="utf-8")))
    unknown = named - known - COMPOSE_ONLY
    assert not unknown, f"not in .env.example: {sorted(unknown)}"
    assert "MAPPA_DATABASE_URL" in named


def test_dockerignore_keeps_secrets_out_and_the_wheel_sources_in():
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.split("/")[0], p)
                   for p in patterns)

    assert ignored(".env") and ignored(".git") and ignored(".venv")
    needed = ["pyproject.toml", "README.md", "bot/cli/__init__.py", "mappa_core/storage/db.py",
              "templates/_items.j2"]
    needed += [p for p in ("requirements.lock",) if (ROOT / p).exists()]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not ignored(path), f".dockerignore drops {path}, which the wheel is built from"


# ----------------------------------------------------------------------------- docs


def test_docs_explain_the_repository_from_inside_it():
    """Someone with only the repository can follow every link, and none leads outside it."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for name in ("user-guide.md", "operator-guide.md", "data-contract.md", "architecture.md"):
        assert ROOT / "docs" / name in pages, f"docs/{name} is missing"
        assert f"docs/{name}" in (ROOT / "README.md").read_text(encoding="utf-8")
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "../shared" not in text and "SPEC.md" not in text and "ARCHITECTURE.md" not in text, page
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT) and path.exists(), f"{page.name}: broken link {target}"
            if path.suffix == ".png":
                assert path.stat().st_size < 300_000, f"{target} is over 300 KB"
