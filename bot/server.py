"""`mappa serve`: one ASGI app of the operator endpoints (/healthz, /readyz, /metrics)
and each channel's HTTP door (`channel_routes`: Slack's /slack/events), with the job
scheduler beside them; or Slack's Socket Mode, with the operator endpoints on a small
HTTP port. What a request means is the channel's business (bot/channels/<name>/)."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import sys
import time
from contextlib import asynccontextmanager

from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import channels, metrics
from bot.channels.slack import SlackTransport
from bot.channels.slack import http as slack_http
from bot.channels.slack.app import build_app
from bot.delivery.worker import deliver_pending
from bot.jobs.schedule import build_scheduler
from bot.logs import configure_logging
from bot.settings import Settings
from mappa_core.storage import db

log = logging.getLogger("mappa.server")
WARMING = "worker processes still starting"  # /readyz's reason while they start
CONNECTING = "Slack Socket Mode connection not made yet"  # and while Socket Mode connects


def make_deliver(settings: Settings, engine, client=None):
    """The delivery callable the scheduler runs: Slack through the Web API, email by SMTP."""
    client = client or AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    transport = SlackTransport(client)

    async def deliver(now):
        return await deliver_pending(engine, settings, transport, now)

    return deliver


class SocketWatch:
    """Whether Slack's Socket Mode connection is up, for /readyz. slack_sdk's client
    reconnects by itself (at once when Slack closes the connection, then every 10 s) and
    says nothing while it fails; this notes when the connection went down, and /readyz
    reports not ready once it has been down longer than MAPPA_SOCKET_GRACE_SECONDS (or
    not made yet, from the start)."""

    def __init__(self, client, grace: float):
        self.client, self.grace = client, grace
        self.connected_once = False
        self.down_since: float | None = time.monotonic()

    async def check(self) -> tuple[str, str | None]:
        """("connected" / "connecting" / "down", the reason not to be ready or None)."""
        now = time.monotonic()
        if await self.client.is_connected():
            if self.down_since is not None and self.connected_once:
                log.info("Slack Socket Mode connection back after %.0f s",
                         now - self.down_since)
            self.connected_once, self.down_since = True, None
            return "connected", None
        if self.down_since is None:
            self.down_since = now
            log.warning("Slack Socket Mode connection lost; slack_sdk is reconnecting")
        down = now - self.down_since
        if not self.connected_once:
            return "connecting", CONNECTING + (f" after {down:.0f} s" if down > self.grace
                                               else "")
        if down <= self.grace:
            return "reconnecting", None
        return "down", f"Slack Socket Mode connection down for {down:.0f} s (reconnecting)"

    async def watch(self, every: float = 1.0) -> None:
        """Note each change as it happens (and log it), not only when /readyz is asked."""
        while True:
            await self.check()
            await asyncio.sleep(every)


class OpsState:
    """What /readyz reports on: set by the lifespan (HTTP) or by `serve` (Socket Mode)."""

    def __init__(self, expect_scheduler: bool):
        self.expect_scheduler = expect_scheduler
        self.scheduler = None
        self.bot = None  # the MappaSlack whose worker processes must have started
        self.socket: SocketWatch | None = None  # Socket Mode's connection


def ops_routes(engine, state: OpsState, cache=None) -> list[Route]:
    """/healthz (the database answers), /readyz (database, schema, scheduler, worker
    processes, Socket Mode's connection), /metrics."""

    async def _database() -> tuple[bool, str | None]:
        def check() -> str | None:
            db.ping(engine)
            return db.current_revision(engine)
        try:
            return True, await asyncio.wait_for(asyncio.to_thread(check), timeout=5)
        except Exception as exc:
            log.warning("health check: database unreachable (%s)", type(exc).__name__)
            return False, None

    async def healthz(request: Request):
        ok, _ = await _database()
        if not ok:
            return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
        return JSONResponse({"ok": True, "database": "ok"})

    async def readyz(request: Request):
        ok, revision = await _database()
        problems = []
        if not ok:
            problems.append("database unreachable")
        elif revision != db.SCHEMA_REVISION:
            problems.append(f"schema at {revision}, this version needs {db.SCHEMA_REVISION} "
                            "(run `mappa db upgrade`)")
        if state.bot is not None and not state.bot.workers_ready():
            problems.append(WARMING)
        socket = None
        if state.socket is not None:
            socket, problem = await state.socket.check()
            if problem:
                problems.append(problem)
        scheduler = state.scheduler
        if state.expect_scheduler and not (scheduler is not None and scheduler.running):
            problems.append("scheduler not running")
        body = {"ready": not problems, "database": "ok" if ok else "unreachable",
                "schema": revision, "scheduler": (
                    "running" if scheduler is not None and scheduler.running else
                    "not running" if state.expect_scheduler else "not run in this process")}
        if socket is not None:
            body["socket_mode"] = socket
        if problems:
            body["reasons"] = problems
            # Warming up and connecting are expected at every start: a load balancer
            # polling /readyz would otherwise write a warning a second until they are done.
            level = logging.INFO if set(problems) <= {WARMING, CONNECTING} else logging.WARNING
            log.log(level, "not ready: %s", "; ".join(problems))
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    async def metrics_endpoint(request: Request):
        out = await asyncio.to_thread(metrics.exposition, engine, cache)
        return Response(out, media_type=metrics.CONTENT_TYPE)

    return [Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"])]


def channel_routes(settings: Settings, slack_app) -> list[Route]:
    """Each channel's HTTP door, composed into `mappa serve` here: a channel that people
    answer through (a button, a form, a link) keeps its requests' checks and handling in
    its own folder and hands over a list of routes; adding one is a line below.

    - Slack: POST /slack/events (bot/channels/slack/http.py), to the Bolt app `slack_app`.
    """
    return [*slack_http.routes(slack_app, settings)]


def build_asgi(settings: Settings, engine, today=None, scheduler_rules=None) -> Starlette:
    """The ASGI app; with `scheduler_rules` the job scheduler runs in the same process."""
    app = build_app(settings, engine, today, functools.partial(deliver_pending, engine, settings))
    state = OpsState(expect_scheduler=scheduler_rules is not None)
    state.bot = app.mappa

    lifespan = None
    if scheduler_rules is not None:
        @asynccontextmanager
        async def lifespan(_app):
            scheduler = build_scheduler(engine, scheduler_rules,
                                        make_deliver(settings, engine, app.client), settings.tz,
                                        channels.area_channels(settings), settings.heartbeat_url)
            scheduler.start()
            state.scheduler = scheduler
            log.info("scheduler started: %s", ", ".join(j.id for j in scheduler.get_jobs()))
            try:
                yield
            finally:
                scheduler.shutdown(wait=False)
                app.mappa.close()

    asgi = Starlette(routes=[*channel_routes(settings, app),
                             *ops_routes(engine, state, app.mappa.cache)], lifespan=lifespan)
    asgi.state.bolt = app
    asgi.state.ops = state
    return asgi


class _Stopped(Exception):
    """SIGTERM or SIGINT: stop cleanly (exit status 0)."""


def _on_stop_signals(stop) -> dict:
    """Handle SIGTERM and SIGINT by calling `stop(name)`; the handlers they replace.

    uvicorn handles both while it runs, shuts down, then raises the signal again for the
    handler it found: the default one killed the process (status 143 after a clean
    shutdown). This one lets `serve` return instead."""
    def handler(sig, frame) -> None:
        stop(signal.Signals(sig).name)

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


def serve(settings: Settings, host: str, port: int, socket_mode: bool, rules,
          health_port: int | None = None) -> None:
    """Run until SIGTERM or SIGINT (then return: a clean stop) or an error (raised)."""
    started = time.monotonic()

    def stopped(name: str) -> None:
        raise _Stopped(name)

    previous = _on_stop_signals(stopped)
    try:
        _serve(settings, host, port, socket_mode, rules, health_port)
    except _Stopped as exc:
        log.info("stopped by %s", exc)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped after %.0f s", time.monotonic() - started)


def _serve(settings: Settings, host: str, port: int, socket_mode: bool, rules,
           health_port: int | None = None) -> None:
    import uvicorn  # here: only a running server needs it (build_asgi's callers do not)

    configure_logging(settings.log_format)
    # The event loop (acknowledgements, help) shares the GIL with the threads computing
    # answers; a shorter switch interval hands it back within a millisecond, not five.
    sys.setswitchinterval(0.001)
    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    if socket_mode:
        # Here: only Socket Mode needs its adapter (and the websocket client it loads).
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        async def run() -> None:
            loop, main = asyncio.get_running_loop(), asyncio.current_task()

            def stop(name: str) -> None:  # Socket Mode runs until its task is cancelled
                log.info("stopping on %s", name)
                loop.call_soon_threadsafe(main.cancel)

            _on_stop_signals(stop)  # serve() puts the handlers back
            app = build_app(settings, engine,
                            deliver=functools.partial(deliver_pending, engine, settings))
            state = OpsState(expect_scheduler=True)
            state.bot = app.mappa
            state.scheduler = build_scheduler(engine, rules, make_deliver(settings, engine, app.client),
                                              settings.tz, channels.area_channels(settings),
                                              settings.heartbeat_url)
            state.scheduler.start()
            handler = AsyncSocketModeHandler(app, settings.slack_app_token)
            state.socket = SocketWatch(handler.client, settings.socket_grace_seconds)
            tasks = [handler.start_async(), state.socket.watch()]
            port_ = health_port or settings.http_port
            if port_:
                ops = Starlette(routes=ops_routes(engine, state, app.mappa.cache))
                server = uvicorn.Server(uvicorn.Config(ops, host=host, port=port_,
                                                       log_config=None, access_log=False))
                log.info("operator endpoints on http://%s:%d (/healthz /readyz /metrics)",
                         host, port_)
                tasks.append(server.serve())
            try:
                await asyncio.gather(*tasks)
            finally:
                # Closed before the event loop is: left open, its websocket's session
                # printed "Event loop is closed" with a traceback as the process ended.
                await handler.close_async()
                state.scheduler.shutdown(wait=False)
                app.mappa.close()

        try:
            asyncio.run(run())
        except asyncio.CancelledError:  # stop() above
            pass
        return

    log.info("serving HTTP on %s:%d", host, port)
    uvicorn.run(build_asgi(settings, engine, scheduler_rules=rules), host=host, port=port,
                log_config=None, access_log=False)
