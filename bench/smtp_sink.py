"""A real SMTP server (aiosmtpd) in its own process, for the 1,000-email benchmark.

    python bench/smtp_sink.py COUNT_FILE

Prints its port on the first line of stdout, then appends one line to COUNT_FILE per
message accepted. In its own process, as a mail relay would be, so that the server's
work does not share the measured process's interpreter.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.slack_harness import free_port  # noqa: E402


def main() -> int:
    log = Path(sys.argv[1]).open("a", buffering=1)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            log.write(f"{len(envelope.original_content)}\n")
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print(port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
