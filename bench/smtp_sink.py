"""A real SMTP server (aiosmtpd) in its own process, for the 1,000-email benchmark.

    python bench/smtp_sink.py COUNT_FILE

Prints its port on the first line of stdout, then appends one line to COUNT_FILE per
message accepted. In its own process, as a mail relay would be, so that the server's
work does not share the measured process's interpreter. The server is the tests' one
SMTP sink (tests/slack_harness.py), as the benchmark's other stand-ins are.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.slack_harness import SmtpSink  # noqa: E402


def main() -> int:
    log = Path(sys.argv[1]).open("a", buffering=1)
    sink = SmtpSink(on_message=lambda envelope: log.write(f"{len(envelope.original_content)}\n"))
    print(sink.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
