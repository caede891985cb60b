"""Real parts for the Slack tests: the bot's HTTP endpoint served by uvicorn on a local
port, requests signed exactly as Slack signs them, a local stand-in for Slack's Web API
and response_url that records every call, and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import uvicorn
from aiosmtpd.controller import Controller

SIGNING_SECRET = "test-signing-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlackStandIn:
    """Answers Slack Web API methods under /api/ and records response_url posts. Each call
    is kept with what the stand-in answered (`reply`: chat.postMessage's channel and ts)."""

    def __init__(self, answers: dict[str, dict] | None = None) -> None:
        self.calls: list[dict] = []
        self.fail_status: int | None = None
        # Fields added to every answer of a method: {"/api/apps.connections.open": {...}}
        self.answers = answers or {}
        # Scripted answers, used before the normal ones: path -> [(status, headers, json)]
        self.script: dict[str, list[tuple[int, dict, dict]]] = {}
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    body = json.loads(raw or "{}")
                else:
                    body = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                    for key in ("blocks", "view"):
                        if isinstance(body.get(key), str):
                            body[key] = json.loads(body[key])
                call = {"path": self.path, "body": body, "at": time.monotonic()}
                with stand_in._lock:
                    stand_in.calls.append(call)
                with stand_in._lock:
                    scripted = stand_in.script.get(self.path)
                    answer = scripted.pop(0) if scripted else None
                if answer is not None:
                    status, headers, payload = answer
                    out = json.dumps(payload).encode()
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                if stand_in.fail_status and self.path.startswith("/api/chat."):
                    self.send_response(stand_in.fail_status)
                    self.end_headers()
                    return
                reply: dict = {"ok": True, **stand_in.answers.get(self.path, {})}
                if self.path == "/api/auth.test":
                    reply.update(user_id="UBOT", bot_id="BBOT", team_id="T1", user="mappa-bot")
                elif self.path == "/api/chat.postMessage":
                    # As Slack answers a post to a user id: the DM's own channel id (D...).
                    channel = str(body.get("channel") or "")
                    if channel[:1] in ("U", "W"):
                        channel = "D" + channel[1:]
                    reply.update(channel=channel, ts=f"{time.time():.6f}")
                call["reply"] = reply
                out = b"ok" if self.path.startswith("/response/") else json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain" if out == b"ok" else "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        class Server(ThreadingHTTPServer):
            request_queue_size = 512  # socketserver's default of 5 drops connections under load
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    def posts(self, prefix: str) -> list[dict]:
        with self._lock:
            return [c for c in self.calls if c["path"].startswith(prefix)]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.posts(prefix)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no {count} call(s) to {prefix} within {timeout}s: {self.calls}")

    def close(self) -> None:
        self.server.shutdown()


class BotServer:
    """The real ASGI app under uvicorn in a thread (`lifespan="on"`: with its start-up and
    shut-down, the scheduler's among them)."""

    def __init__(self, asgi, lifespan: str = "off") -> None:
        self.port = free_port()
        config = uvicorn.Config(asgi, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan=lifespan)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class SocketModeStandIn:
    """A local stand-in for Slack's Socket Mode endpoint: a websocket server (aiohttp) at
    `url`, which apps.connections.open on the Web API stand-in hands out. Each connection
    is greeted with Slack's `hello` and its pings answered; `stop()` closes every
    connection and stops listening (reconnecting then fails, as when Slack cannot be
    reached), `start()` listens again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/link"
        self.connections = 0  # accepted so far
        self.sockets: set = set()
        self.runner = None
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.start()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _connect(self, request):
        from aiohttp import web

        ws = web.WebSocketResponse()  # answers pings itself
        await ws.prepare(request)
        self.connections += 1
        self.sockets.add(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A1"}}))
        async for _ in ws:  # nothing is sent to the bot here
            pass
        self.sockets.discard(ws)
        return ws

    async def _start(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/link", self._connect)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        for ws in list(self.sockets):
            await ws.close()
        await self.runner.cleanup()
        self.runner = None

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        if self.runner is not None:
            self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def post(url: str, body: str, headers: dict, content_type="application/x-www-form-urlencoded"):
    """POST and return (status, body text, seconds)."""
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": content_type, **headers})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), time.perf_counter() - start
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), time.perf_counter() - start


_ONCE = itertools.count()


def once() -> str:
    """What Slack makes unique for each act (a trigger_id's tail, an action_ts's
    fraction): two requests built here never share one, even at the same nanosecond."""
    return f"{time.time_ns()}{next(_ONCE):06d}"


def command_body(user_id: str, text: str, response_url: str, trigger_id: str | None = None) -> str:
    return urllib.parse.urlencode({
        "token": "unused", "team_id": "T1", "team_domain": "mappa", "channel_id": "C1",
        "channel_name": "mappa-grampian", "user_id": user_id, "user_name": "someone",
        "command": "/mappa", "text": text, "api_app_id": "A1", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id or f"trig-{once()}",
    })


def action_body(user_id: str, action_id: str, value: str, response_url: str,
                message: dict | None = None, channel: str = "D1", state: dict | None = None,
                **extra) -> str:
    """A button press. `message` ({"ts", "blocks"}) is the message the button is on, as
    Slack sends it back with the press (for a message the bot posted); `state` the values
    of the message's menus ({block_id: {action_id: {...}}}), as Slack sends them."""
    action = {"action_id": action_id, "block_id": value, "type": "button", "value": value,
              "action_ts": f"{time.time():.0f}.{once()[-12:]}"}
    action.update(extra)
    payload = {
        "type": "block_actions", "user": {"id": user_id, "team_id": "T1"},
        "api_app_id": "A1", "team": {"id": "T1", "domain": "mappa"},
        "container": {"type": "message", "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"trig-{once()}", "channel": {"id": channel},
        "response_url": response_url, "actions": [action],
    }
    if message is not None:
        payload["message"] = {"type": "message", "user": "UBOT", **message}
        payload["container"]["message_ts"] = message["ts"]
    if state is not None:
        payload["state"] = {"values": state}
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def view_body(user_id: str, item_key: str, code: str | None, text: str = "",
              agency: str | None = None) -> str:
    values = {"reason": {"code": {"type": "static_select",
                                  "selected_option": {"value": code} if code else None}},
              "note": {"text": {"type": "plain_text_input", "value": text}}}
    if agency is not None:  # the form's optional agency (reviews only)
        values["agency"] = {"agency": {"type": "static_select",
                                       "selected_option": {"value": agency}}}
    payload = {
        "type": "view_submission", "user": {"id": user_id, "team_id": "T1"},
        "team": {"id": "T1", "domain": "mappa"}, "api_app_id": "A1",
        "trigger_id": f"trig-{once()}",
        "view": {"id": "V1", "hash": "1700000000.abc", "type": "modal",
                 "callback_id": "record_reason_modal", "private_metadata": item_key,
                 "state": {"values": values}},
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def event_body(user_id: str, event_type: str = "app_home_opened", **event) -> str:
    """An Events API request (JSON), as Slack sends `app_home_opened` when a person opens
    the app's Home tab."""
    inner = {"type": event_type, "user": user_id, "channel": "D1", "tab": "home",
             "event_ts": f"{time.time():.6f}"}
    inner.update(event)
    return json.dumps({
        "token": "unused", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
        "event_id": f"Ev{time.time_ns()}", "event_time": int(time.time()), "event": inner,
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
    })


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a local port that keeps what it receives: the one
    SMTP sink of the tests and the benchmark. `delay` slows each message down; `tls_context`
    offers STARTTLS with that certificate and requires it; `on_message` is called with each
    envelope as it arrives (bench/smtp_sink.py counts them in a file)."""

    def __init__(self, port: int | None = None, delay: float = 0.0, tls_context=None,
                 on_message=None) -> None:
        self.messages: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                if delay:
                    await asyncio.sleep(delay)
                sink.messages.append(envelope)
                if on_message is not None:
                    on_message(envelope)
                return "250 Message accepted for delivery"

        tls = {"tls_context": tls_context, "require_starttls": True} if tls_context else {}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port or free_port(),
                                     **tls)
        self.controller.start()
        self.port = self.controller.port

    def groups(self) -> list[str]:
        """The X-Mappa-Group header of every message received (duplicates included)."""
        import email

        return [email.message_from_bytes(m.original_content)["X-Mappa-Group"]
                for m in list(self.messages)]

    def close(self) -> None:
        self.controller.stop()


class Bot:
    """The bot (build_asgi) served over HTTP with its stand-ins for Slack and SMTP, as of
    `today`; every request is signed like Slack's and each helper waits for its answer."""

    def __init__(self, engine, today, wait: float = 60.0, **settings):
        import itertools

        from bot.server import build_asgi
        from bot.settings import Settings

        self.stand_in, self.smtp = SlackStandIn(), SmtpSink()
        settings = Settings(
            work_processes=0, database_url=str(engine.url), slack_bot_token="xoxb-test",
            slack_signing_secret=SIGNING_SECRET, slack_api_url=self.stand_in.api_url(),
            smtp_host="127.0.0.1", smtp_port=self.smtp.port, smtp_starttls=False,
            mail_from="mappa-bot@example.org", smtp_timeout=5, **settings)
        self.server = BotServer(build_asgi(settings, engine, today=lambda: today))
        self.n = itertools.count()
        self.wait = wait  # seconds to wait for each answer

    def _send(self, body: str, name: str, ctype="application/x-www-form-urlencoded"):
        status, out, _ = post(self.server.url + "/slack/events", body, sign(body), ctype)
        assert status == 200, out
        if out:  # answered in the acknowledgement itself ("still working", "busy")
            return json.loads(out)
        return self.stand_in.wait_for(f"/response/{name}", timeout=self.wait)[0]["body"]

    def command(self, user: str, text: str) -> dict:
        name = f"c{next(self.n)}"
        return self._send(command_body(user, text, self.stand_in.response_url(name)), name)

    def act(self, user: str, action_id: str, value: str, **extra) -> dict:
        name = f"a{next(self.n)}"
        return self._send(action_body(user, action_id, value, self.stand_in.response_url(name),
                                      **extra), name)

    def calls(self, path: str) -> int:
        return len(self.stand_in.posts(path))

    def reason(self, user: str, key: str, note: str = "") -> None:
        """Press Record reason, then submit the modal it opened."""
        opened, posted = self.calls("/api/views.open"), self.calls("/api/chat.postMessage")
        name = f"m{next(self.n)}"
        body = action_body(user, "record_reason", key, self.stand_in.response_url(name))
        assert post(self.server.url + "/slack/events", body, sign(body))[0] == 200
        self.stand_in.wait_for("/api/views.open", opened + 1, timeout=self.wait)
        body = view_body(user, key, "information_late", note)
        assert post(self.server.url + "/slack/events", body, sign(body))[0] == 200
        self.stand_in.wait_for("/api/chat.postMessage", posted + 1, timeout=self.wait)

    def home(self, user: str) -> dict:
        before = self.calls("/api/views.publish")
        body = event_body(user)
        assert post(self.server.url + "/slack/events", body, sign(body), "application/json")[0] == 200
        return self.stand_in.wait_for("/api/views.publish", before + 1,
                                      timeout=self.wait)[-1]["body"]

    def sent(self) -> list[tuple[str, object]]:
        """Every payload that left the bot: (where, blocks or view)."""
        out = []
        for i, c in enumerate(self.stand_in.calls):
            path, body = c["path"], c["body"]
            if path.startswith("/response/") and "blocks" in body:
                out.append((f"{i} reply {path}", body["blocks"]))
            elif path in ("/api/chat.postMessage", "/api/chat.update"):
                out.append((f"{i} {path.removeprefix('/api/')}", body["blocks"]))
            elif path in ("/api/views.open", "/api/views.publish"):
                out.append((f"{i} {path}", body["view"]))
        return out

    def close(self) -> None:
        self.server.close()
        self.stand_in.close()
        self.smtp.close()


def wait_until_up(port: int, process=None, path: str = "/healthz", timeout: float = 60.0,
                  output=None) -> dict:
    """Poll http://127.0.0.1:PORT/PATH of a server starting in `process` (a Popen) until it
    answers 2xx, and return its JSON body. Fails with the reason (and `output()`, say the
    server's log) if the process exits first or `timeout` seconds pass."""
    url = f"http://127.0.0.1:{port}{path}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return json.loads(resp.read() or b"{}")
        except OSError as exc:  # refused, timed out, or not 2xx yet (503 until ready)
            if process is not None and process.poll() is not None:
                why = f"the server exited (status {process.returncode}) before {url} answered"
            elif time.monotonic() > deadline:
                why = f"{url} did not answer within {timeout:g} s"
            else:
                time.sleep(0.2)
                continue
            raise AssertionError(why + (f"\n{output()}" if output else "")) from exc


def stop(process, timeout: float = 15.0) -> None:
    """Terminate a server process and wait for it; kill it if it does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def run(coro):
    return asyncio.run(coro)
