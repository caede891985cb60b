"""`mappa serve`: the Bolt app over HTTP (ASGI: /slack/events, /healthz, /readyz, /metrics)
or Socket Mode (with the same three operator endpoints on a small HTTP port)."""

from __future__ import annotations

import asyncio
import json
import re
import logging
import signal
import sys
import time
import urllib.parse

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import channels, metrics
from bot.settings import Settings
from bot.channels.slack.app import build_app
from mappa_core.storage import db

log = logging.getLogger("mappa.server")
WARMING = "worker processes still starting"  # /readyz's reason while they start


def make_deliver(settings: Settings, engine, client=None):
    """The delivery callable the scheduler runs: Slack through the Web API, email by SMTP."""
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.channels.slack import SlackTransport
    from bot.delivery.worker import deliver_pending

    client = client or AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    transport = SlackTransport(client)

    async def deliver(now):
        return await deliver_pending(engine, settings, transport, now)

    return deliver


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


async def read_bounded(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed `limit`: from the declared
    Content-Length before reading anything, else by counting while it streams in."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise Refused(400, "malformed Content-Length")
        if int(declared) > limit:
            raise Refused(413, f"body of {int(declared)} bytes declared (limit {limit})")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def check_slack_request(body: bytes, headers, verifier: SignatureVerifier | None) -> None:
    """Refuse what Bolt should never see: unsigned or badly signed requests (401), and
    bodies that are not the form or JSON object Slack sends (400)."""
    try:
        text_ = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
    form = urllib.parse.parse_qs(text_, keep_blank_values=True) if ctype != "application/json" else {}
    if verifier is not None and not form.get("ssl_check"):
        timestamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not timestamp or not signature:
            raise Refused(401, "no Slack signature")
        if not re.fullmatch(r"[0-9]{1,12}", timestamp.strip()):
            raise Refused(401, "malformed X-Slack-Request-Timestamp")
        if not verifier.is_valid(body=text_, timestamp=timestamp.strip(), signature=signature):
            raise Refused(401, "invalid or stale Slack signature")
    try:
        if ctype == "application/json":
            if not isinstance(json.loads(text_ or "null"), dict):
                raise Refused(400, "JSON body is not an object")
        elif "payload" in form:
            if not isinstance(json.loads(form["payload"][0]), dict):
                raise Refused(400, "payload is not a JSON object")
    except ValueError:  # json.JSONDecodeError
        raise Refused(400, "payload is not JSON") from None


class OpsState:
    """What /readyz reports on: set by the lifespan (HTTP) or by `serve` (Socket Mode)."""

    def __init__(self, expect_scheduler: bool):
        self.expect_scheduler = expect_scheduler
        self.scheduler = None
        self.bot = None  # the MappaSlack whose worker processes must have started


def ops_routes(engine, state: OpsState, cache=None) -> list[Route]:
    """/healthz (the database answers), /readyz (database, schema, scheduler), /metrics."""

    async def _database() -> tuple[bool, str | None]:
        def check() -> str | None:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
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
        scheduler = state.scheduler
        if state.expect_scheduler and not (scheduler is not None and scheduler.running):
            problems.append("scheduler not running")
        body = {"ready": not problems, "database": "ok" if ok else "unreachable",
                "schema": revision, "scheduler": (
                    "running" if scheduler is not None and scheduler.running else
                    "not running" if state.expect_scheduler else "not run in this process")}
        if problems:
            body["reasons"] = problems
            # Warming up is expected at every start: a load balancer polling /readyz would
            # otherwise write a warning a second until the workers are up.
            level = logging.INFO if problems == [WARMING] else logging.WARNING
            log.log(level, "not ready: %s", "; ".join(problems))
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    async def metrics_endpoint(request: Request):
        out = await asyncio.to_thread(metrics.exposition, engine, cache)
        return Response(out, media_type=metrics.CONTENT_TYPE)

    return [Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"])]


def build_asgi(settings: Settings, engine, today=None, scheduler_rules=None) -> Starlette:
    """The ASGI app; with `scheduler_rules` the job scheduler runs in the same process."""
    app = build_app(settings, engine, today)
    handler = AsyncSlackRequestHandler(app)
    verifier = SignatureVerifier(settings.slack_signing_secret) if settings.slack_signing_secret else None
    limit = settings.max_body_bytes
    state = OpsState(expect_scheduler=scheduler_rules is not None)
    bot = state.bot = app.mappa

    async def events(request: Request):
        try:
            body = await read_bounded(request, limit)
            check_slack_request(body, request.headers, verifier)
        except Refused as exc:
            # One line per refused request; nothing of the body (it may be anything).
            client = request.client.host if request.client else "?"
            log.warning("refused %d %s from %s: %s", exc.status, request.url.path, client,
                        exc.reason)
            metrics.HTTP_REFUSED.labels(str(exc.status)).inc()
            return PlainTextResponse(exc.reason, status_code=exc.status,
                                     headers={"Connection": "close"} if exc.status == 413 else None)

        # A person who already has a command being worked on, or anyone while the work
        # queue is full, is answered at once in the acknowledgement itself: a flood costs
        # almost nothing and never reaches the handlers.
        early = bot.refuse_early(body)
        if early:
            user, answer, outcome = early
            metrics.COMMANDS_REFUSED.labels(outcome.split(":")[1]).inc()
            await bot.audit(user, None, "command", "(refused at once)", outcome)
            return JSONResponse({"response_type": "ephemeral", "text": answer})

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            return await handler.handle(Request(request.scope, replay))
        except Exception as exc:  # a signed request Bolt cannot make sense of
            log.warning("refused 400 %s: Bolt could not handle the request (%s)",
                        request.url.path, type(exc).__name__)
            log.debug("Bolt's error", exc_info=True)
            metrics.HTTP_REFUSED.labels("400").inc()
            return PlainTextResponse("malformed Slack request", status_code=400)

    lifespan = None
    if scheduler_rules is not None:
        from contextlib import asynccontextmanager

        from bot.jobs.schedule import build_scheduler

        @asynccontextmanager
        async def lifespan(_app):
            scheduler = build_scheduler(engine, scheduler_rules,
                                        make_deliver(settings, engine, app.client), settings.tz,
                                        channels.area_channels(settings))
            scheduler.start()
            state.scheduler = scheduler
            log.info("scheduler started: %s", ", ".join(j.id for j in scheduler.get_jobs()))
            try:
                yield
            finally:
                scheduler.shutdown(wait=False)
                app.mappa.close()

    asgi = Starlette(routes=[
        Route("/slack/events", events, methods=["POST"]),
        *ops_routes(engine, state, app.mappa.cache),
    ], lifespan=lifespan)
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
    import uvicorn

    from bot.logs import configure_logging

    configure_logging(settings.log_format)
    # The event loop (acknowledgements, help) shares the GIL with the threads computing
    # answers; a shorter switch interval hands it back within a millisecond, not five.
    sys.setswitchinterval(0.001)
    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        from bot.jobs.schedule import build_scheduler

        async def run() -> None:
            loop, main = asyncio.get_running_loop(), asyncio.current_task()

            def stop(name: str) -> None:  # Socket Mode runs until its task is cancelled
                log.info("stopping on %s", name)
                loop.call_soon_threadsafe(main.cancel)

            _on_stop_signals(stop)  # serve() puts the handlers back
            app = build_app(settings, engine)
            state = OpsState(expect_scheduler=True)
            state.bot = app.mappa
            state.scheduler = build_scheduler(engine, rules, make_deliver(settings, engine, app.client),
                                              settings.tz, channels.area_channels(settings))
            state.scheduler.start()
            tasks = [AsyncSocketModeHandler(app, settings.slack_app_token).start_async()]
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
