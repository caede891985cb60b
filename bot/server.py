"""`mappa serve`: the Bolt app over HTTP (ASGI, /slack/events and /healthz) or Socket Mode."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.settings import Settings
from bot.slack_app import build_app, london_today
from mappa_core import db

log = logging.getLogger("mappa.server")


def make_deliver(settings: Settings, engine, client=None):
    """The delivery callable the scheduler runs: Slack through the Web API, email by SMTP."""
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.delivery.worker import SlackTransport, deliver_pending

    client = client or AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    transport = SlackTransport(client)

    async def deliver(now):
        return await deliver_pending(engine, settings, transport, now)

    return deliver


def build_asgi(settings: Settings, engine, today=london_today, scheduler_rules=None) -> Starlette:
    """The ASGI app; with `scheduler_rules` the job scheduler runs in the same process."""
    app = build_app(settings, engine, today)
    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request):
        return await handler.handle(request)

    async def healthz(request: Request):
        def check() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        try:
            await asyncio.wait_for(asyncio.to_thread(check), timeout=5)
        except Exception as exc:
            log.warning("health check failed: %s", type(exc).__name__)
            return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
        return JSONResponse({"ok": True, "database": "ok"})

    lifespan = None
    if scheduler_rules is not None:
        from contextlib import asynccontextmanager

        from bot.jobs.schedule import build_scheduler

        @asynccontextmanager
        async def lifespan(_app):
            scheduler = build_scheduler(engine, scheduler_rules,
                                        make_deliver(settings, engine, app.client), settings.tz)
            scheduler.start()
            log.info("scheduler started: %s", ", ".join(j.id for j in scheduler.get_jobs()))
            try:
                yield
            finally:
                scheduler.shutdown(wait=False)

    asgi = Starlette(routes=[
        Route("/slack/events", events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ], lifespan=lifespan)
    asgi.state.bolt = app
    return asgi


def serve(settings: Settings, host: str, port: int, socket_mode: bool, rules) -> None:
    import uvicorn

    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        from bot.jobs.schedule import build_scheduler

        async def run() -> None:
            app = build_app(settings, engine, lambda: dt.datetime.now(settings.tz).date())
            build_scheduler(engine, rules, make_deliver(settings, engine, app.client),
                            settings.tz).start()
            await AsyncSocketModeHandler(app, settings.slack_app_token).start_async()

        asyncio.run(run())
        return
    def today():  # in the configured time zone (MAPPA_TIMEZONE)
        return dt.datetime.now(settings.tz).date()

    uvicorn.run(build_asgi(settings, engine, today, scheduler_rules=rules), host=host, port=port,
                log_level="info")
