"""read_timeout.py and its use in server.py: a request must arrive within its listener's
read timeout, over real sockets on 127.0.0.1 (a tiny ASGI app behind the gateway's uvicorn
setup, two listeners as `eg serve` has)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from eventgateway.read_timeout import NOT_READING, ReadSweeper, ReadTimeouts
from eventgateway.server import DrainingServer, HeadLimitedProtocol, bind, uvicorn_config
from eventgateway.settings import Limits, Settings

DEADLINE_S = 5.0  # far above any timeout here: only a hang reaches it


async def echo_app(scope, receive, send):
    """Reads the whole body, then answers 200 with its length; handles the lifespan."""
    if scope["type"] == "lifespan":
        for kind in ("startup", "shutdown"):
            assert (await receive())["type"] == f"lifespan.{kind}"
            await send({"type": f"lifespan.{kind}.complete"})
        return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"size": size}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class Served:
    events_port: int
    config_port: int


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Starts the gateway's uvicorn setup on a thread; stops it after the test."""
    running: list[tuple[DrainingServer, threading.Thread]] = []

    def start(events_s: float = 0.3, config_s: float = 0.3) -> Served:
        limits = Limits(events_read_timeout_s=events_s, config_read_timeout_s=config_s)
        config = uvicorn_config(echo_app, Settings(limits=limits), configure_logging=False)
        started = threading.Event()
        server = DrainingServer(config, lambda: None, on_started=started.set)
        sockets = [bind("127.0.0.1", 0), bind("127.0.0.1", 0)]
        thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=sockets)))
        thread.start()
        running.append((server, thread))
        assert started.wait(DEADLINE_S)
        return Served(*(sock.getsockname()[1] for sock in sockets))

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(DEADLINE_S)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    start, answer = time.monotonic(), b""
    while chunk := sock.recv(4096):  # the socket timeout is the deadline
        answer += chunk
    return answer, time.monotonic() - start


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body, the connection left open."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, f"closed after {head!r}"
        head += chunk
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return head + body


def assert_408(answer: bytes, timeout_s: float) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nconnection: close" in head
    assert b"\r\ncontent-type: application/json" in head
    message = f"The request did not arrive in full within {timeout_s:g} s (the read timeout)."
    assert json.loads(body) == {"errors": [{"message": message}]}


@pytest.mark.parametrize("listener", ["events", "config"])
def test_a_partial_head_is_a_408_and_the_connection_closes(serve, listener: str):
    served = serve()
    with connect(getattr(served, f"{listener}_port")) as sock:
        sock.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")

        answer, waited_s = read_until_closed(sock)

    assert_408(answer, 0.3)
    assert 0.3 <= waited_s < 2.0


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(serve):
    served = serve()
    with connect(served.events_port) as sock:
        answer, waited_s = read_until_closed(sock)

    assert answer == b""
    assert 0.3 <= waited_s < 2.0


def test_a_body_shorter_than_its_content_length_is_a_408(serve):
    served = serve()
    with connect(served.config_port) as sock:
        sock.sendall(b'POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":')

        answer, _ = read_until_closed(sock)

    assert_408(answer, 0.3)


def test_each_listener_has_its_own_timeout(serve):
    served = serve(events_s=0.3, config_s=30.0)
    with connect(served.events_port) as events, connect(served.config_port) as config:
        for sock in (events, config):
            sock.sendall(b"GET / HTTP/1.1\r\n")

        answer, _ = read_until_closed(events)
        config.setblocking(False)  # the sweep that timed out `events` passed `config` over
        with pytest.raises(BlockingIOError):
            config.recv(1)

    assert_408(answer, 0.3)


def test_keep_alive_requests_are_each_timed_from_their_first_byte(serve):
    served = serve()
    with connect(served.events_port) as sock:
        for _ in range(6):  # 0.6 s or more on one connection, twice the timeout
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            assert read_response(sock).endswith(b'{"size": 2}')
            time.sleep(0.1)  # idle between requests: uvicorn's keep-alive timeout's business


def test_a_slow_but_steady_request_that_ends_in_time_succeeds(serve):
    served = serve(events_s=1.0, config_s=1.0)
    parts = [b"POST / HTTP/1.1\r\n", b"Host: x\r\n", b"Content-Length: 6\r\n", b"\r\n"]
    with connect(served.events_port) as sock:
        for part in [*parts, b"ab", b"cd", b"ef"]:  # 7 parts over ~0.5 s
            sock.sendall(part)
            time.sleep(0.07)

        assert read_response(sock).endswith(b'{"size": 6}')


def test_the_protocol_uvicorn_runs_carries_the_limits_read_timeouts():
    limits = Limits(events_read_timeout_s=7.0, config_read_timeout_s=8.0)

    config = uvicorn_config(object(), Settings(limits=limits))

    assert config.http.read_timeouts == ReadTimeouts(7.0, 8.0)  # type: ignore[union-attr]
    assert HeadLimitedProtocol.read_timeouts == ReadTimeouts(60.0, 600.0)


@dataclass
class FakeReader:
    read_since_s: float
    server: tuple[str, int | None] | None = ("127.0.0.1", 4000)
    still_reading: bool = True
    timed_out_after: float | None = None

    def reading(self) -> bool:
        return self.still_reading

    def time_out_read(self, timeout_s: float) -> None:
        self.timed_out_after = timeout_s


def test_the_sweeper_times_out_requests_still_reading_past_their_listeners_timeout():
    sweeper = ReadSweeper(ReadTimeouts(events_s=60.0, config_s=600.0), 4001, lambda: 0.0)
    late_event = FakeReader(read_since_s=100.0)
    late_config = FakeReader(read_since_s=100.0, server=("127.0.0.1", 4001))
    overdue_config = FakeReader(read_since_s=-501.0, server=("127.0.0.1", 4001))
    answered = FakeReader(read_since_s=0.0, still_reading=False)
    refused = FakeReader(read_since_s=NOT_READING)

    sweeper.sweep([late_event, late_config, overdue_config, answered, refused], now=161.0)

    assert late_event.timed_out_after == 60.0
    assert overdue_config.timed_out_after == 600.0
    assert late_config.timed_out_after is answered.timed_out_after is None
    assert refused.timed_out_after is None


@pytest.mark.parametrize(
    ("timeouts", "interval_s"),
    [(ReadTimeouts(60.0, 600.0), 1.0), (ReadTimeouts(60.0, 0.3), 0.075)],
)
def test_sweeps_come_every_second_or_a_quarter_of_the_shorter_timeout(timeouts, interval_s):
    now = [0.0]
    sweeper = ReadSweeper(timeouts, None, lambda: now[0])
    reader = FakeReader(read_since_s=-1000.0)

    sweeper.tick([reader])
    assert reader.timed_out_after is None  # not due yet
    now[0] = interval_s
    sweeper.tick([reader])

    assert sweeper.interval_s == interval_s
    assert reader.timed_out_after == 60.0
