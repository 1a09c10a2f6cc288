"""HttpProvider against a real receiver and raw sockets: what it sends, returns and raises."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call
from eventgateway.providers.http import HttpProvider
from tests.support.ports import free_port
from tests.support.receiver import Receiver
from tests.support.receiver import Reply as Answer


def http_function(url: object, function_id: str = "fn") -> Function:
    return Function(space="acme", function_id=function_id, type="http", provider={"url": url})


@pytest.fixture
async def provider() -> AsyncIterator[HttpProvider]:
    http = HttpProvider()
    await http.open()
    yield http
    await http.close()


@contextlib.asynccontextmanager
async def raw_server(*parts: bytes, pause_s: float = 0.0) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1: reads a request, writes ``parts`` ``pause_s`` apart, hangs up."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            for index, part in enumerate(parts):
                if index:
                    await asyncio.sleep(pause_s)  # plays a function that streams slowly
                writer.write(part)
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/fn"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


# -- the request -----------------------------------------------------------------------------


async def test_posts_the_body_with_its_content_type(provider: HttpProvider, receiver: Receiver):
    await provider.call(http_function(receiver.url("/fn")), Call(body=b'{"id":"e-1"}'))

    [call] = receiver.calls_to("/fn")
    assert call.method == "POST"
    assert call.body == b'{"id":"e-1"}'
    assert call.headers["Content-Type"] == "application/cloudevents+json"
    assert call.headers["Content-Length"] == "12"
    assert call.headers["User-Agent"] == "eventgateway"


async def test_sends_the_calls_content_type_and_extra_headers(
    provider: HttpProvider, receiver: Receiver
):
    call = Call(
        body=b"payload",
        content_type="application/json",
        headers=(("webhook-id", "msg_1"), ("ce-id", "e-1")),
    )

    await provider.call(http_function(receiver.url("/fn")), call)

    [received] = receiver.calls_to("/fn")
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["webhook-id"] == "msg_1"
    assert received.headers["ce-id"] == "e-1"


async def test_url_path_and_query_are_kept(provider: HttpProvider, receiver: Receiver):
    await provider.call(http_function(receiver.url("/hooks/crm?token=abc&x=1")), Call(body=b"{}"))

    assert [call.path for call in receiver.calls] == ["/hooks/crm?token=abc&x=1"]


# -- the reply -------------------------------------------------------------------------------


async def test_returns_status_body_and_headers(provider: HttpProvider, receiver: Receiver):
    receiver.reply("/fn", Answer(status=201, body=b"created", headers={"X-Trace": "t-1"}))

    reply = await provider.call(http_function(receiver.url("/fn")), Call(body=b"{}"))

    assert (reply.status, reply.body) == (201, b"created")
    assert ("X-Trace", "t-1") in reply.headers


@pytest.mark.parametrize("status", [400, 404, 500, 503])
async def test_error_statuses_are_replies_not_exceptions(
    provider: HttpProvider, receiver: Receiver, status: int
):
    receiver.reply("/fn", Answer(status=status, body=b"nope"))

    reply = await provider.call(http_function(receiver.url("/fn")), Call(body=b"{}"))

    assert (reply.status, reply.body) == (status, b"nope")


async def test_redirects_are_not_followed(provider: HttpProvider, receiver: Receiver):
    receiver.reply("/old", Answer(status=302, headers={"Location": "/new"}))

    reply = await provider.call(http_function(receiver.url("/old")), Call(body=b"{}"))

    assert reply.status == 302
    assert ("Location", "/new") in reply.headers
    assert [call.path for call in receiver.calls] == ["/old"]


async def test_large_reply_body_is_returned_whole(provider: HttpProvider, receiver: Receiver):
    # A sync call's reply, up to 6 MiB (an async delivery reads 64 KiB: test_http_client.py).
    body = b"x" * 1_000_000
    receiver.reply("/big", Answer(body=body))

    reply = await provider.call(http_function(receiver.url("/big")), Call(body=b"{}", sync=True))

    assert len(reply.body) == len(body)


async def test_reply_sent_in_two_parts_is_returned_whole(provider: HttpProvider):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst"
    async with raw_server(head, b"-last", pause_s=1.0) as url:
        reply = await provider.call(http_function(url), Call(body=b"{}"))

    assert reply.body == b"first-last"


# -- failures become ProviderError -----------------------------------------------------------


async def test_closed_port_is_a_retryable_provider_error(provider: HttpProvider):
    url = f"http://127.0.0.1:{free_port()}/fn"

    with pytest.raises(ProviderError) as caught:
        await provider.call(http_function(url), Call(body=b"{}"))

    assert caught.value.retryable is True
    assert caught.value.message.startswith(f"function 'fn' could not be reached at {url}: ")


async def test_slow_function_is_a_retryable_timeout(provider: HttpProvider, receiver: Receiver):
    receiver.reply("/slow", Answer(delay_s=1.0))
    url = receiver.url("/slow")

    with pytest.raises(ProviderError) as caught:
        await provider.call(http_function(url), Call(body=b"{}", timeout_s=0.2))

    assert caught.value.retryable is True
    assert caught.value.message == f"function 'fn' timed out after 0.2 s ({url})"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        pytest.param(b"", "could not be reached at {url}: ", id="hang-up without a reply"),
        pytest.param(b"garbage\r\n\r\n", "at {url} sent an unusable reply: ", id="not HTTP"),
        pytest.param(
            b"HTTP/1.1 abc OK\r\n\r\n", "at {url} sent an unusable reply: ", id="bad status code"
        ),
    ],
)
async def test_broken_replies_are_retryable_provider_errors(
    provider: HttpProvider, answer: bytes, said: str
):
    async with raw_server(answer) as url:
        with pytest.raises(ProviderError) as caught:
            await provider.call(http_function(url), Call(body=b"{}"))

    assert caught.value.retryable is True
    assert caught.value.message.startswith("function 'fn' " + said.format(url=url))
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize("url", ["not a url", "/relative/path", "http://"])
async def test_invalid_url_is_not_retryable(provider: HttpProvider, url: str):
    with pytest.raises(ProviderError) as caught:
        await provider.call(http_function(url), Call(body=b"{}"))

    assert caught.value.retryable is False
    assert caught.value.message == f"function 'fn' has an invalid URL {url!r}"


async def test_non_http_scheme_is_not_retryable(provider: HttpProvider):
    with pytest.raises(ProviderError) as caught:
        await provider.call(http_function("ftp://127.0.0.1/fn"), Call(body=b"{}"))

    assert caught.value.retryable is False


@pytest.mark.parametrize("url", [None, 42])
async def test_missing_url_is_not_retryable(provider: HttpProvider, url: object):
    with pytest.raises(ProviderError) as caught:
        await provider.call(http_function(url), Call(body=b"{}"))

    assert caught.value.retryable is False
    assert caught.value.message == "function 'fn' has no provider.url"


# -- lifecycle -------------------------------------------------------------------------------


async def test_call_works_again_after_close(receiver: Receiver):
    http = HttpProvider()
    await http.open()
    first = await http.call(http_function(receiver.url("/fn")), Call(body=b"1"))
    await http.close()

    try:
        second = await http.call(http_function(receiver.url("/fn")), Call(body=b"2"))
    finally:
        await http.close()

    assert (first.status, second.status) == (200, 200)
    assert [call.body for call in receiver.calls] == [b"1", b"2"]


async def test_call_without_open_opens_the_session(receiver: Receiver):
    http = HttpProvider()
    try:
        reply = await http.call(http_function(receiver.url("/fn")), Call(body=b"{}"))
    finally:
        await http.close()

    assert reply.status == 200
