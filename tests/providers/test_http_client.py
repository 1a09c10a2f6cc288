"""The lean delivery client behind HttpProvider, on real sockets against scripted servers.

Each server here answers with bytes chosen by the test, so keep-alive, chunked and gzip
bodies, interim replies and hang-ups are exactly what the test says; it counts connections,
which is how reuse is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import resource
import ssl
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import MAX_REPLY_BYTES, Call
from eventgateway.providers.guard import TargetRefusedError, open_guarded_socket
from eventgateway.providers.http import ASYNC_REPLY_BYTES, HttpProvider
from eventgateway.providers.http_client import InvalidURLError, check_url
from eventgateway.providers.targets import TargetPolicy, parse_networks
from tests.support.outbound import MapResolver

CALL = Call(body=b'{"id":"e-1"}', timeout_s=5)
HANG_UP = None


def fn(url: str) -> Function:
    return Function(space="acme", function_id="fn", type="http", provider={"url": url})


def reply(body: bytes = b"ok", *, status: str = "200 OK", headers: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


@dataclass
class Request:
    head: bytes
    body: bytes
    connection: int


@dataclass
class Server:
    """Keeps connections open and answers request ``i`` with ``answer(i)`` (``None``: hang up)."""

    answer: Callable[[int], bytes | None] = lambda _: reply()
    delay_s: float = 0.0
    close_after_reply: bool = False
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    port: int = 0

    def url(self, path: str = "/fn") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(Request(head, await reader.readexactly(length), number))
                answer = self.answer(len(self.requests) - 1)
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)  # plays a slow function
                if answer is HANG_UP:
                    return
                writer.write(answer)
                await writer.drain()
                if self.close_after_reply or b"connection: close" in answer.lower():
                    return
        finally:
            self.open_now -= 1
            writer.close()


@contextlib.asynccontextmanager
async def serving(
    server: Server, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        with contextlib.suppress(asyncio.CancelledError):  # the server stops
            await server.handle(reader, writer)

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await listener.wait_closed()


@pytest.fixture
async def provider() -> AsyncIterator[HttpProvider]:
    http = HttpProvider()
    await http.open()
    yield http
    await http.close()


# -- the request -----------------------------------------------------------------------------


async def test_request_has_host_with_port_and_one_content_length(provider: HttpProvider):
    async with serving(Server()) as server:
        await provider.call(fn(server.url("/a?b=1")), CALL)

    head = server.requests[0].head.decode()
    assert head.startswith("POST /a?b=1 HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n" in head
    assert head.lower().count("content-length:") == 1
    assert server.requests[0].body == CALL.body


@pytest.mark.parametrize(
    "header", [("X-Bad", "a\r\nInjected: 1"), ("X-Bad\nInjected", "1"), ("X-Bad", "a\rb")]
)
async def test_a_header_with_cr_or_lf_is_refused_without_sending(
    provider: HttpProvider, header: tuple[str, str]
):
    async with serving(Server()) as server:
        with pytest.raises(ProviderError) as caught:
            await provider.call(fn(server.url()), Call(body=b"{}", headers=(header,)))

    assert caught.value.retryable is False
    assert "holds a CR or LF character" in caught.value.message
    assert server.requests == []


# -- keep-alive and the pool -----------------------------------------------------------------


async def test_sequential_calls_share_one_connection(provider: HttpProvider):
    async with serving(Server()) as server:
        for _ in range(5):
            assert (await provider.call(fn(server.url()), CALL)).status == 200

    assert (server.connections, len(server.requests)) == (1, 5)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(reply(headers="Connection: close\r\n"), id="Connection: close"),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", id="HTTP/1.0"),
    ],
)
async def test_a_connection_the_server_closes_is_not_reused(provider: HttpProvider, answer: bytes):
    async with serving(Server(answer=lambda _: answer)) as server:
        for _ in range(3):
            assert (await provider.call(fn(server.url()), CALL)).body == b"ok"

    assert server.connections == 3


async def test_concurrent_calls_wait_for_a_free_connection():
    http = HttpProvider(max_connections=2)
    try:
        async with serving(Server(delay_s=0.02)) as server:
            replies = await asyncio.gather(*(http.call(fn(server.url()), CALL) for _ in range(6)))
    finally:
        await http.close()

    assert [r.status for r in replies] == [200] * 6
    assert (server.most_open, server.connections, len(server.requests)) == (2, 2, 6)


async def test_a_keep_alive_connection_the_server_dropped_is_retried_once(provider: HttpProvider):
    # The second request finds the server gone from its connection (its idle timeout): the
    # client calls again on a new connection instead of failing the delivery.
    answers = {0: reply(b"first"), 1: HANG_UP, 2: reply(b"second")}
    async with serving(Server(answer=answers.__getitem__)) as server:
        first = await provider.call(fn(server.url()), CALL)
        second = await provider.call(fn(server.url()), CALL)

    assert (first.body, second.body) == (b"first", b"second")
    assert [request.connection for request in server.requests] == [1, 1, 2]


async def test_a_new_connection_that_fails_is_not_retried(provider: HttpProvider):
    async with serving(Server(answer=lambda _: HANG_UP)) as server:
        with pytest.raises(ProviderError) as caught:
            await provider.call(fn(server.url()), CALL)

    assert caught.value.retryable is True
    assert "ConnectionClosedError" in caught.value.message
    assert len(server.requests) == 1


async def test_a_connection_closed_while_idle_is_replaced(provider: HttpProvider):
    # The server hangs up after its reply without saying so (no Connection: close).
    async with serving(Server(close_after_reply=True)) as server:
        for _ in range(3):
            assert (await provider.call(fn(server.url()), CALL)).status == 200

    assert [request.connection for request in server.requests] == [1, 2, 3]


async def test_a_timed_out_connection_is_not_reused(provider: HttpProvider):
    async with serving(Server(delay_s=0.5)) as server:
        with pytest.raises(ProviderError, match=r"timed out after 0\.1 s"):
            await provider.call(fn(server.url()), Call(body=b"{}", timeout_s=0.1))
        server.delay_s = 0.0
        assert (await provider.call(fn(server.url()), CALL)).status == 200

    assert [request.connection for request in server.requests] == [1, 2]


# -- the reply -------------------------------------------------------------------------------


async def test_a_chunked_reply_is_returned_whole(provider: HttpProvider):
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    async with serving(Server(answer=lambda _: chunked)) as server:
        first = await provider.call(fn(server.url()), CALL)
        second = await provider.call(fn(server.url()), CALL)

    assert (first.body, second.body, server.connections) == (b"abcde", b"abcde", 1)


async def test_a_reply_without_length_ends_when_the_server_closes(provider: HttpProvider):
    until_close = Server(
        answer=lambda _: b"HTTP/1.1 200 OK\r\n\r\nuntil-close", close_after_reply=True
    )
    async with serving(until_close) as server:
        reply_ = await provider.call(fn(server.url()), CALL)

    assert reply_.body == b"until-close"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some send it
    ],
)
async def test_compressed_replies_are_decoded(
    provider: HttpProvider, encoding: str, encode: Callable[[bytes], bytes]
):
    answer = reply(encode(b"hello " * 1000), headers=f"Content-Encoding: {encoding}\r\n")
    async with serving(Server(answer=lambda _: answer)) as server:
        reply_ = await provider.call(fn(server.url()), CALL)

    assert reply_.body == b"hello " * 1000
    assert ("Content-Encoding", encoding) in reply_.headers


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(reply(b"x" * (MAX_REPLY_BYTES + 1), status="500 Oops"), id="plain"),
        pytest.param(
            reply(
                gzip.compress(b"\0" * (MAX_REPLY_BYTES + 1)),
                status="500 Oops",
                headers="Content-Encoding: gzip\r\n",
            ),
            id="gzip bomb",
        ),
    ],
)
async def test_a_reply_over_the_cap_is_not_retryable(provider: HttpProvider, answer: bytes):
    async with serving(Server(answer=lambda _: answer)) as server:
        with pytest.raises(ProviderError) as caught:
            await provider.call(fn(server.url()), Call(body=CALL.body, sync=True))

    assert caught.value.message == f"function 'fn' replied with more than {MAX_REPLY_BYTES} bytes"
    assert (caught.value.retryable, caught.value.status) == (False, 500)


@pytest.mark.parametrize("status", ["200 OK", "503 Busy"])
async def test_an_async_delivery_reads_only_the_status_of_a_reply_over_the_cap(
    provider: HttpProvider, status: str
):
    # QA: a 2xx with a 7 MiB body was a failed delivery, dead-lettered at once.
    answer = reply(b"x" * (MAX_REPLY_BYTES + 1), status=status)
    async with serving(Server(answer=lambda _: answer)) as server:
        reply_ = await provider.call(fn(server.url()), CALL)

    assert (reply_.status, reply_.body) == (int(status[:3]), b"")


async def test_interim_replies_are_skipped(provider: HttpProvider):
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + reply(b"final", status="201 Created")
    async with serving(Server(answer=lambda _: answer)) as server:
        reply_ = await provider.call(fn(server.url()), CALL)

    assert (reply_.status, reply_.body) == (201, b"final")


async def test_a_redirect_is_returned_not_followed(provider: HttpProvider):
    answer = reply(b"", status="301 Moved", headers="Location: http://169.254.169.254/\r\n")
    async with serving(Server(answer=lambda _: answer)) as server:
        reply_ = await provider.call(fn(server.url()), CALL)

    assert (reply_.status, dict(reply_.headers)["Location"]) == (301, "http://169.254.169.254/")
    assert len(server.requests) == 1


# -- TLS -------------------------------------------------------------------------------------


async def test_https_to_an_untrusted_certificate_fails_verification(provider: HttpProvider):
    trustme = pytest.importorskip("trustme")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    async with serving(Server(), context) as server:
        url = f"https://127.0.0.1:{server.port}/fn"
        with pytest.raises(ProviderError) as caught:
            await provider.call(fn(url), CALL)

    assert caught.value.retryable is True
    assert "SSLCertVerificationError" in caught.value.message
    assert server.requests == []


# -- the SSRF guard --------------------------------------------------------------------------


async def test_names_are_resolved_once_and_refused_addresses_never_connected():
    resolver = MapResolver({"svc.example": ["10.0.0.1", "127.0.0.1"]})
    policy = TargetPolicy(allow_list=parse_networks(["127.0.0.1/32"]))
    http = HttpProvider(policy=policy, resolver=resolver)
    try:
        async with serving(Server()) as server:
            for _ in range(3):
                await http.call(fn(f"http://svc.example:{server.port}/fn"), CALL)
    finally:
        await http.close()

    assert resolver.asked == ["svc.example"]  # the DNS cache holds 127.0.0.1 only
    assert f"Host: svc.example:{server.port}" in server.requests[0].head.decode()


def test_the_socket_check_refuses_what_the_policy_refuses():
    with pytest.raises(TargetRefusedError) as caught:
        open_guarded_socket(TargetPolicy(), 2, ("127.0.0.1", 80))
    with contextlib.closing(open_guarded_socket(TargetPolicy(allow_private=True), 2, ("", 0))):
        pass

    assert caught.value.refusal.kind == "loopback"


@pytest.mark.parametrize(
    "url",
    ["http://[::1/", "http://127.0.0.1:99999/", "http://127.0.0.1:abc/", "http://", "ftp://x/"],
)
async def test_check_url_refuses_exactly_what_a_call_refuses(provider: HttpProvider, url: str):
    # The Configuration API registers functions with check_url: the two must agree.
    with pytest.raises(InvalidURLError) as checked:
        check_url(url)
    with pytest.raises(ProviderError) as called:
        await provider.call(fn(url), CALL)

    assert called.value.message == f"function 'fn' has an invalid URL {url!r}"
    assert isinstance(called.value.__cause__, InvalidURLError)
    assert str(called.value.__cause__) == str(checked.value)


# -- replies that never end, and a process out of descriptors ---------------------------------


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\n" + b"X-Junk: abcdefgh\r\n" * 8192, id="endless headers"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Junk: " + b"a" * 200_000, id="one endless value"),
    ],
)
@pytest.mark.parametrize("sync", [True, False])
async def test_a_reply_head_over_64_kib_fails_the_call(
    provider: HttpProvider, head: bytes, sync: bool
):
    # QA: a subscriber sending header lines without end grew the worker to 3 GB in 11 s.
    async with serving(Server(answer=lambda _: head)) as server:
        with pytest.raises(ProviderError) as caught:
            await provider.call(fn(server.url()), Call(body=CALL.body, sync=sync, timeout_s=5))

    assert caught.value.message == (
        f"function 'fn' at {server.url()} sent an unusable reply: "
        "the reply's headers pass 65536 bytes"
    )
    assert caught.value.retryable


async def test_a_reply_head_under_64_kib_is_read(provider: HttpProvider):
    answer = reply(b"fine", headers="X-Big: " + "b" * 60_000 + "\r\n")
    async with serving(Server(answer=lambda _: answer)) as server:
        reply_ = await provider.call(fn(server.url()), CALL)

    assert (reply_.status, reply_.body) == (200, b"fine")


@pytest.mark.parametrize(
    ("size", "sync", "kept"),
    [
        (ASYNC_REPLY_BYTES, False, True),
        (ASYNC_REPLY_BYTES + 1, False, False),  # an async delivery keeps the status only
        (ASYNC_REPLY_BYTES + 1, True, True),  # a sync call reads up to MAX_REPLY_BYTES
    ],
)
async def test_an_async_delivery_reads_at_most_64_kib_of_a_reply(
    provider: HttpProvider, size: int, sync: bool, kept: bool
):
    # QA: 6 MiB read for each of 1,024 attempts in flight grew the worker by gigabytes.
    body = b"r" * size
    async with serving(Server(answer=lambda _: reply(body))) as server:
        reply_ = await provider.call(fn(server.url()), Call(body=CALL.body, sync=sync))

    assert (reply_.status, reply_.body) == (200, body if kept else b"")


async def test_a_process_out_of_descriptors_interrupts_the_call_instead_of_failing_it(
    provider: HttpProvider, caplog: pytest.LogCaptureFixture
):
    # QA: under `ulimit -n 64` the deliveries were dead-lettered as "could not be reached".
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with serving(Server()) as server:
        fillers: list[int] = []
        highest_fd = max(int(name) for name in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest_fd + 16, hard))
        try:
            with contextlib.suppress(OSError):
                while True:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
            with pytest.raises(ProviderError) as caught:
                await provider.call(fn(server.url()), CALL)
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        reply_ = await provider.call(fn(server.url()), CALL)  # descriptors free again

    assert caught.value.interrupted
    assert caught.value.message.startswith("the gateway is out of file descriptors (limit ")
    assert "raise `ulimit -n`" in caplog.text
    assert reply_.status == 200
