"""A child process for the kill -9 test: accepts events into a SqliteQueue until killed.

Usage: ``python -m tests.queue.accept_child <db path>``. Sixteen concurrent callers each
accept one event (two deliveries) at a time and print its id on a line of its own as
soon as ``accept`` returned: every printed id is a promise that must survive SIGKILL.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

import msgspec

from eventgateway.events.model import CloudEvent
from eventgateway.queue.base import Accepted, NewDelivery
from eventgateway.queue.sqlite import SqliteQueue

CALLERS = 16


async def main(path: Path) -> None:
    queue = SqliteQueue(path)
    await queue.open()
    numbers = itertools.count()
    deliveries = [NewDelivery("acme", "s1", "f1"), NewDelivery("acme", "s2", "f2")]

    async def caller() -> None:
        while True:
            n = next(numbers)
            event = CloudEvent("1.0", f"ev-{n}", "kill-test", "t", data=msgspec.Raw(b"[%d]" % n))
            await queue.accept([Accepted(event, deliveries)])
            sys.stdout.write(f"{event.id}\n")
            sys.stdout.flush()

    await asyncio.gather(*(caller() for _ in range(CALLERS)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
