"""`mappa serve`: the Bolt app over HTTP (ASGI, /slack/events and /healthz) or Socket Mode."""

from __future__ import annotations

import asyncio
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


def build_asgi(settings: Settings, engine, today=london_today) -> Starlette:
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

    asgi = Starlette(routes=[
        Route("/slack/events", events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])
    asgi.state.bolt = app
    return asgi


def serve(settings: Settings, host: str, port: int, socket_mode: bool) -> None:
    import uvicorn

    engine = db.make_engine(settings.database_url)
    db.ensure_schema(engine)
    if socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        async def run() -> None:
            app = build_app(settings, engine)
            await AsyncSocketModeHandler(app, settings.slack_app_token).start_async()

        asyncio.run(run())
        return
    uvicorn.run(build_asgi(settings, engine), host=host, port=port, log_level="info")
