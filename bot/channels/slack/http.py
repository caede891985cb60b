"""Slack's HTTP door: `POST /slack/events`, every request Slack sends (commands, buttons,
forms, events) on its way to the Bolt app (app.py).

Before Bolt sees anything: a body over MAPPA_MAX_BODY_BYTES is refused (413) as soon as
that is known, an unsigned or badly signed request (401) and a body that is not the form
or JSON object Slack sends (400) too, each with one log line and nothing of the body. A
slash command that would only be told to wait is answered in the acknowledgement itself.
`routes()` is this channel's part of `mappa serve` (bot/server.py composes it).
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from bot import metrics

log = logging.getLogger("mappa.server")


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


def routes(app, settings) -> list[Route]:
    """`POST /slack/events` for the Bolt app `app` (app.build_app)."""
    handler = AsyncSlackRequestHandler(app)
    verifier = SignatureVerifier(settings.slack_signing_secret) if settings.slack_signing_secret else None
    limit = settings.max_body_bytes
    bot = app.mappa

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

    return [Route("/slack/events", events, methods=["POST"])]
