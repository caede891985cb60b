"""Socket Mode's readiness (issue 22, item 7): `/readyz` tells the truth about the
connection to Slack. `mappa serve --socket-mode` in its own process, with local stand-ins
for Slack's Web API (apps.connections.open hands out the websocket's URL) and for its
Socket Mode endpoint (a websocket server the test stops and starts again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from mappa_core.storage import db
from tests.slack_harness import SlackStandIn, SocketModeStandIn, free_port, stop, wait_until_up

pytestmark = [pytest.mark.http, pytest.mark.process]


def readyz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def readyz_until(port: int, wanted, timeout: float, output) -> tuple[int, dict]:
    """Poll /readyz until `wanted(status, body)`; fail with what it last said."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = readyz(port)
        if wanted(status, body):
            return status, body
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz still {status} {body} after {timeout:g} s\n"
                                 + output())
        time.sleep(0.2)


def serve_socket_mode(sqlite_url, tmp_path, stand_in, port, grace="2"):
    db.ensure_schema(db.make_engine(sqlite_url))
    (tmp_path / "none.env").write_text("")
    env = {**os.environ, "MAPPA_DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": "xoxb-sock",
           "SLACK_APP_TOKEN": "xapp-sock", "SLACK_API_URL": stand_in.api_url(),
           "MAPPA_HTTP_PORT": str(port), "MAPPA_LOG_FORMAT": "json",
           "MAPPA_WORK_PROCESSES": "0", "MAPPA_SOCKET_GRACE_SECONDS": grace}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--socket-mode",
                             "--env-file", str(tmp_path / "none.env")],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "serve.log", "w"))


def test_readyz_reports_not_ready_while_the_socket_mode_connection_is_down(sqlite_url,
                                                                           tmp_path):
    """On main /readyz said ready while the Socket Mode connection failed and slack_sdk
    retried every 10 s. Now: ready once connected; with Slack's endpoint gone, not ready
    after the grace period (2 s here), saying for how long; ready again once slack_sdk
    has reconnected. /healthz (the process and its database) stays 200 throughout."""
    socket = SocketModeStandIn()
    stand_in = SlackStandIn(answers={"/api/apps.connections.open": {"url": socket.url}})
    port = free_port()
    server = serve_socket_mode(sqlite_url, tmp_path, stand_in, port)
    log = tmp_path / "serve.log"
    output = lambda: log.read_text()[-3000:]  # noqa: E731
    try:
        ready = wait_until_up(port, server, "/readyz", timeout=60, output=output)
        assert ready["ready"] and socket.connections == 1, ready

        socket.stop()
        t = time.monotonic()
        status, body = readyz_until(port, lambda s, b: s == 503, 60, output)
        assert time.monotonic() - t >= 2  # not before the grace period
        assert body["ready"] is False and body["socket_mode"] == "down", body
        assert ready["socket_mode"] == "connected", ready  # as it was before
        [reason] = body["reasons"]
        assert reason.startswith("Slack Socket Mode connection down for "), reason
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert json.loads(resp.read())["ok"] is True

        socket.start()  # slack_sdk retries every 10 s
        status, body = readyz_until(port, lambda s, b: s == 200, 60, output)
        assert body["socket_mode"] == "connected" and socket.connections == 2
    finally:
        stop(server)
        socket.close()
        stand_in.close()
    messages = [json.loads(line)["message"] for line in log.read_text().splitlines()
                if line.strip()]
    assert sum("Socket Mode connection lost" in m for m in messages) == 1, messages
    assert sum("Socket Mode connection back after" in m for m in messages) == 1, messages


def test_readyz_is_not_ready_until_the_first_connection_is_made(sqlite_url, tmp_path):
    """Slack's endpoint unreachable from the start (here: apps.connections.open hands out
    a websocket nobody listens on): not ready, "not made yet", and after the grace period
    for how long; as soon as Slack can be reached, ready."""
    socket = SocketModeStandIn()
    socket.stop()
    stand_in = SlackStandIn(answers={"/api/apps.connections.open": {"url": socket.url}})
    port = free_port()
    server = serve_socket_mode(sqlite_url, tmp_path, stand_in, port)
    output = lambda: (tmp_path / "serve.log").read_text()[-3000:]  # noqa: E731
    try:
        wait_until_up(port, server, "/healthz", timeout=60, output=output)
        status, body = readyz_until(
            port, lambda s, b: "after" in " ".join(b.get("reasons", [])), 60, output)
        assert status == 503 and body["socket_mode"] == "connecting", body
        assert body["reasons"][0].startswith("Slack Socket Mode connection not made yet after")
        socket.start()
        status, body = readyz_until(port, lambda s, b: s == 200, 60, output)
        assert body["socket_mode"] == "connected"
    finally:
        stop(server)
        socket.close()
        stand_in.close()
