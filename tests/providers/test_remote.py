"""RemoteHttpProvider against a real call worker (in this event loop) and a real receiver."""

from __future__ import annotations

import asyncio
import pathlib
import tempfile
from collections.abc import AsyncIterator

import pytest

from eventgateway.call_worker import run_call_worker
from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call
from eventgateway.providers.remote import RemoteHttpProvider
from eventgateway.providers.targets import TargetPolicy
from tests.support.receiver import Receiver, Reply


def fn(url: str) -> Function:
    return Function(space="s", function_id="f", type="http", provider={"url": url})


@pytest.fixture
async def worker_socket() -> AsyncIterator[pathlib.Path]:
    # AF_UNIX paths are short: keep the socket in a short temporary directory.
    with tempfile.TemporaryDirectory(prefix="eg-") as directory:
        path = pathlib.Path(directory) / "w.sock"
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_call_worker(path, stop, targets=TargetPolicy(allow_private=True))
        )
        deadline = asyncio.get_running_loop().time() + 5
        while not path.exists():
            assert asyncio.get_running_loop().time() < deadline, "worker did not listen"
            await asyncio.sleep(0.01)
        yield path
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_calls_go_through_the_worker_and_replies_come_back(
    worker_socket: pathlib.Path, receiver: Receiver
):
    receiver.reply("/f", Reply(status=201, body=b'{"ok":true}', headers={"X-A": "1"}))
    provider = RemoteHttpProvider(worker_socket)
    try:
        replies = await asyncio.gather(
            *(
                provider.call(fn(receiver.url("/f")), Call(body=f'{{"n":{n}}}'.encode()))
                for n in range(20)
            )
        )
    finally:
        await provider.close()
    assert {reply.status for reply in replies} == {201}
    assert replies[0].body == b'{"ok":true}'
    assert ("X-A", "1") in replies[0].headers
    assert sorted(call.json()["n"] for call in receiver.calls) == list(range(20))
    assert receiver.calls[0].headers["Content-Type"] == "application/cloudevents+json"


async def test_worker_errors_become_provider_errors_with_retryability(
    worker_socket: pathlib.Path,
):
    provider = RemoteHttpProvider(worker_socket)
    try:
        with pytest.raises(ProviderError) as unreachable:
            await provider.call(fn("http://127.0.0.1:9/x"), Call(body=b"{}", timeout_s=2))
        with pytest.raises(ProviderError) as bad_scheme:
            await provider.call(fn("ftp://127.0.0.1/x"), Call(body=b"{}", timeout_s=2))
    finally:
        await provider.close()
    assert unreachable.value.retryable is True
    assert "could not be reached" in unreachable.value.message
    assert bad_scheme.value.retryable is False


async def test_no_worker_is_a_retryable_provider_error(tmp_path: pathlib.Path):
    provider = RemoteHttpProvider(tmp_path / "absent.sock", connect_timeout_s=0.2)
    with pytest.raises(ProviderError, match="not reachable") as caught:
        await provider.call(fn("http://127.0.0.1:9/x"), Call(body=b"{}"))
    await provider.close()
    assert caught.value.retryable is True


async def test_a_worker_that_never_answers_is_a_retryable_error_after_the_margin():
    with tempfile.TemporaryDirectory(prefix="eg-") as directory:
        path = pathlib.Path(directory) / "w.sock"
        received = asyncio.Event()

        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)  # a request arrived; never answer it
            received.set()
            await reader.read()  # until the gateway side closes
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_unix_server(mute, str(path))
        provider = RemoteHttpProvider(path, answer_margin_s=0.05)
        try:
            with pytest.raises(ProviderError) as raised:
                await provider.call(fn("http://127.0.0.1:9/f"), Call(body=b"{}", timeout_s=0.05))
        finally:
            await provider.close()
            server.close()
            await server.wait_closed()
    assert received.is_set()
    assert "no answer from the delivery worker" in raised.value.message
    assert raised.value.retryable
