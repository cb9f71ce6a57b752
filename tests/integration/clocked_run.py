"""``grapevine run`` in a subprocess on the test clock, for SIGTERM/SIGKILL tests.

``python -m tests.integration.clocked_run START_ISO run -c FILE``: the same CLI and
service as production, but the bot's clock starts at ``START_ISO`` and ticks with
elapsed (monotonic) time instead of reading the wall, so a test at 23:00 or on a
clock-change day sees the same bot as one at noon.
"""

from __future__ import annotations

import sys
from datetime import datetime

from bot import cli
from tests.clocks import ManualClock


def main() -> int:
    start = datetime.fromisoformat(sys.argv[1])
    return cli.main(sys.argv[2:], clock=ManualClock(start, ticking=True))


if __name__ == "__main__":
    raise SystemExit(main())
