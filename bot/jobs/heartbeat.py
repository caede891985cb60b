"""The heartbeat: after each job run, a ping to MAPPA_HEARTBEAT_URL, so that a monitor
outside the bot (Healthchecks.io, or any URL monitor) notices when the pings stop: every
other report of a problem travels through the bot itself.

A POST whose body is the run's one-line summary, to the URL as set, or with "/fail"
appended when the run failed (Healthchecks.io's convention). A ping that fails is logged
(never the URL: it is a secret) and never stops or fails the job.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request

log = logging.getLogger("mappa.heartbeat")
TIMEOUT = 10.0  # seconds: the job has finished; the ping must not hold the scheduler long
MAX_BODY = 10_000  # characters of the summary sent (Healthchecks.io keeps 100 kB)


def ping_url(url: str, failed: bool) -> str:
    return url.rstrip("/") + ("/fail" if failed else "")


def ping(url: str | None, failed: bool, summary: str, job: str = "",
         timeout: float = TIMEOUT) -> bool:
    """Ping the heartbeat URL (nothing when it is not set); True when it answered 2xx."""
    if not url:
        return False
    request = urllib.request.Request(
        ping_url(url, failed), data=summary[:MAX_BODY].encode("utf-8"), method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "mappa-bot"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
        return True
    except urllib.error.HTTPError as exc:
        exc.close()
        why = f"HTTP {exc.code}"
    except Exception as exc:  # unreachable, timed out, refused: never the job's failure
        why = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    log.warning("heartbeat ping failed (job %s): %s", job or "-", why,
                extra={"job": job or None})
    return False


async def ping_async(url: str | None, failed: bool, summary: str, job: str = "") -> bool:
    """`ping` in a thread, so that the event loop goes on serving while it waits."""
    if not url:
        return False
    return await asyncio.to_thread(ping, url, failed, summary, job)
