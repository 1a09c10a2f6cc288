"""A function endpoint that costs as little CPU as we can make it: a uvloop protocol with
httptools parsing, no ASGI, no framework.

The throughput ladders run the gateway, the load generator and the function on the same
two cores, so every microsecond the function spends per request is taken from the gateway
under test. The ASGI receiver (``bench/receiver.py``, uvicorn) spends ~30 µs per request;
this one a fraction of that. It answers the same calls:

* any ``POST`` answers 200 with no body, is counted, and when the body carries
  ``"bt":<ns>`` (``time.monotonic_ns()`` at send time) the arrival delay is recorded;
* ``GET /count``: how many POSTs arrived; ``GET /latency``: the delays recorded since the
  last call (nanoseconds, space-separated), then forgotten.

Run: ``python -m bench.sink PORT``
"""

from __future__ import annotations

import sys
import time

import uvloop

from bench.canned import Canned, serve
from bench.receiver import record_delay

_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
_count = 0
_delays_ns: list[int] = []


class Sink(Canned):
    """One connection: parse requests as they come, answer each when it is complete."""

    def __init__(self) -> None:
        super().__init__()
        self._url = b""
        self._body: list[bytes] = []

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        global _count
        transport = self._transport
        assert transport is not None
        if self._parser.get_method() == b"POST":
            arrived_ns = time.monotonic_ns()
            _count += 1
            delay = record_delay(b"".join(self._body), arrived_ns)
            if delay is not None:
                _delays_ns.append(delay)
            transport.write(_OK)
            return
        if self._url == b"/latency":
            reply = " ".join(map(str, _delays_ns)).encode()
            _delays_ns.clear()
        else:
            reply = str(_count).encode()
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(reply), reply))


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1]), Sink))
