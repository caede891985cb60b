"""Slack's HTTP door: `POST /slack/events`, every request Slack sends (commands, buttons,
forms, events) on its way to the Bolt app (app.py).

Before Bolt sees anything: a body over MAPPA_MAX_BODY_BYTES is refused (413) as soon as
that is known; then every request must be signed with the signing secret within Slack's
5 minutes (401), the one exception being Slack's own probe of the Request URL's
certificate, exactly `ssl_check=1` (with at most its `token`): answered 200 here, it never
reaches Bolt, the queue or the database. A signed body that is not the form or JSON
object Slack sends, or whose JSON is nested deeper than MAX_JSON_DEPTH, is refused (400).
Each refusal is one log line with nothing of the body, never a traceback. A slash command
that would only be told to wait is answered in the acknowledgement itself.
`routes()` is this channel's part of `mappa serve` (bot/server.py composes it).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import re
import time
import urllib.parse

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot import metrics

log = logging.getLogger("mappa.server")
SIGNATURE_WINDOW = 300  # seconds: Slack's own rule for a request's timestamp
# Slack's payloads nest a dozen levels at most (a message's rich text, a form's state);
# anything deeper is not Slack's, and would only cost a parser its stack.
MAX_JSON_DEPTH = 64
PROBE = "probe"  # check_slack_request's answer for Slack's certificate probe


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


def _probe(form: dict) -> bool:
    """Slack's check of the Request URL's certificate, as its slash-command documentation
    describes it: a POST of `ssl_check=1` and the app's verification `token`, unsigned,
    expecting 200. Exactly that: any other field (a command, a payload) makes it a request
    like any other, to be signed."""
    return (form.get("ssl_check") == ["1"] and set(form) <= {"ssl_check", "token"}
            and len(form.get("token", [])) <= 1)


def _check_signature(body: bytes, headers, secret: bytes, now: float) -> None:
    """Slack's v0 signature: HMAC-SHA256 of `v0:<timestamp>:<body>` under the signing
    secret, the timestamp within SIGNATURE_WINDOW of now. On the bytes as they came, so
    that a body in any encoding is refused as unsigned (401), never misread."""
    timestamp = (headers.get("x-slack-request-timestamp") or "").strip()
    signature = (headers.get("x-slack-signature") or "").strip()
    if not timestamp or not signature:
        raise Refused(401, "no Slack signature")
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise Refused(401, "malformed X-Slack-Request-Timestamp")
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW:
        raise Refused(401, "stale Slack signature (timestamp outside 5 minutes)")
    expected = b"v0=" + hmac.new(secret, b"v0:%s:%s" % (timestamp.encode(), body),
                                 hashlib.sha256).hexdigest().encode()
    # Starlette gives headers as latin-1 text: any header's bytes come back unchanged.
    if not hmac.compare_digest(expected, signature.encode("latin-1")):
        raise Refused(401, "invalid Slack signature")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """How deeply `text`'s arrays and objects nest, counted without parsing (so without
    recursion, whatever the depth): its brackets outside strings."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(itertools.accumulate((1 if c in "[{" else -1 for c in brackets),
                                    initial=0))


def _json_object(text: str, what: str) -> None:
    if json_depth(text) > MAX_JSON_DEPTH:
        raise Refused(400, f"{what} nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text or "null")
    except (ValueError, RecursionError):  # json.JSONDecodeError, a number too long
        raise Refused(400, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(400, f"{what} is not a JSON object")


def check_slack_request(body: bytes, headers, secret: bytes | None,
                        now: float | None = None) -> str | None:
    """Refuse what Bolt should never see: an unsigned, badly signed or stale request
    (401), a body that is not the form or JSON object Slack sends (400). PROBE for Slack's
    certificate probe (answer 200, pass nothing on); None for a request to hand to Bolt.
    Without a signing secret (a development set-up) nothing is checked for a signature."""
    ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
    is_json = ctype == "application/json"
    if secret is not None:
        # The probe is a few dozen bytes; nothing longer is parsed before its signature.
        if not is_json and len(body) < 200 and _probe(
                urllib.parse.parse_qs(body.decode("latin-1"), keep_blank_values=True)):
            return PROBE
        _check_signature(body, headers, secret, time.time() if now is None else now)
    try:
        text_ = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "body is not UTF-8") from None
    if is_json:
        _json_object(text_, "JSON body")
        return None
    form = urllib.parse.parse_qs(text_, keep_blank_values=True)
    if "payload" in form:
        if len(form["payload"]) != 1:
            raise Refused(400, "more than one payload")
        _json_object(form["payload"][0], "payload")
    return None


def routes(app, settings) -> list[Route]:
    """`POST /slack/events` for the Bolt app `app` (app.build_app)."""
    handler = AsyncSlackRequestHandler(app)
    secret = settings.slack_signing_secret.encode() if settings.slack_signing_secret else None
    limit = settings.max_body_bytes
    bot = app.mappa

    async def events(request: Request):
        try:
            body = await read_bounded(request, limit)
            if check_slack_request(body, request.headers, secret) == PROBE:
                log.debug("answered Slack's certificate probe")
                return Response(status_code=200)
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
