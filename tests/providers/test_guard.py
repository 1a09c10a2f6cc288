"""The SSRF guard on real sockets: HttpProvider (and the call worker) refuse before connecting.

Every test runs with a spy on the event loop's connects (tests/support/outbound.py): it
records each address and lets only loopback through, so "no traffic was sent" is asserted
from the spy and the receiver, never inferred from a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import socket
import tempfile
from collections.abc import AsyncIterator

import pytest

from eventgateway.call_worker import run_call_worker
from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call
from eventgateway.providers.guard import TargetRefusedError, open_guarded_socket
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.remote import RemoteHttpProvider
from eventgateway.providers.resolver import Resolver
from eventgateway.providers.targets import TargetPolicy, parse_networks
from tests.support.outbound import ConnectSpy, MapResolver
from tests.support.receiver import Receiver, Reply

DENY = TargetPolicy(allow_private=False)
LOOPBACK_ALLOWED = TargetPolicy(allow_list=parse_networks(["127.0.0.1/32"]))
CALL = Call(body=b"{}", timeout_s=5)


def fn(url: str) -> Function:
    return Function(space="acme", function_id="fn", type="http", provider={"url": url})


@pytest.fixture
async def spy(monkeypatch: pytest.MonkeyPatch) -> ConnectSpy:
    loop = asyncio.get_running_loop()
    recorder = ConnectSpy(loop)
    monkeypatch.setattr(loop, "sock_connect", recorder.sock_connect)
    return recorder


@contextlib.asynccontextmanager
async def http(
    policy: TargetPolicy, resolver: Resolver | None = None
) -> AsyncIterator[HttpProvider]:
    provider = HttpProvider(policy=policy, resolver=resolver)
    await provider.open()
    try:
        yield provider
    finally:
        await provider.close()


async def refused(provider: HttpProvider | RemoteHttpProvider, url: str) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await provider.call(fn(url), CALL)
    assert caught.value.retryable is False
    assert "refused by the SSRF guard" in caught.value.message
    return caught.value


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://127.0.0.1:{port}/f", "127.0.0.1"),
        ("http://[::1]:{port}/f", "::1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.0.0.1/f", "10.0.0.1"),
        ("http://[::ffff:127.0.0.1]:{port}/f", "::ffff:7f00:1"),
    ],
)
async def test_literal_refused_addresses_fail_before_any_connect(
    spy: ConnectSpy, receiver: Receiver, url: str, target: str
):
    resolver = MapResolver({})
    async with http(DENY, resolver) as provider:
        error = await refused(provider, url.format(port=receiver.port))

    assert error.message.startswith(f"function 'fn': target {target} (for http://")
    assert spy.addresses == []
    assert resolver.asked == []  # a literal never reaches DNS in aiohttp: checked before it
    assert receiver.calls == []


async def test_a_name_resolving_to_loopback_is_refused_without_traffic(
    spy: ConnectSpy, receiver: Receiver
):
    async with http(DENY) as provider:  # the system resolver: localhost is loopback
        error = await refused(provider, f"http://localhost:{receiver.port}/f")

    assert "is a loopback address" in error.message
    assert f"(for http://localhost:{receiver.port}/f)" in error.message
    assert spy.addresses == []
    assert receiver.calls == []


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "fd00::1"])
async def test_a_name_resolving_to_private_addresses_is_refused(spy: ConnectSpy, address: str):
    async with http(DENY, MapResolver({"svc.example": [address]})) as provider:
        error = await refused(provider, "http://svc.example/f")

    assert f"target {address} (for http://svc.example/f)" in error.message
    assert spy.addresses == []


async def test_only_the_allowed_addresses_of_a_name_are_called(spy: ConnectSpy, receiver: Receiver):
    resolver = MapResolver({"mixed.example": ["10.0.0.1", "169.254.169.254", "127.0.0.1"]})
    async with http(LOOPBACK_ALLOWED, resolver) as provider:
        for _ in range(3):  # later calls come from aiohttp's DNS cache: it holds no refused one
            reply = await provider.call(fn(f"http://mixed.example:{receiver.port}/f"), CALL)
            assert reply.status == 200

    assert spy.hosts() == {"127.0.0.1"}
    assert len(receiver.calls_to("/f")) == 3


async def test_an_allow_listed_address_is_called(spy: ConnectSpy, receiver: Receiver):
    async with http(LOOPBACK_ALLOWED) as provider:
        reply = await provider.call(fn(receiver.url("/f")), CALL)

    assert reply.status == 200
    assert [call.path for call in receiver.calls] == ["/f"]


async def test_the_open_policy_calls_private_addresses(spy: ConnectSpy, receiver: Receiver):
    async with http(TargetPolicy(allow_private=True)) as provider:
        reply = await provider.call(fn(f"http://localhost:{receiver.port}/f"), CALL)

    assert reply.status == 200
    assert len(receiver.calls) == 1


@pytest.mark.parametrize("policy", [LOOPBACK_ALLOWED, TargetPolicy(allow_private=True)])
async def test_redirects_are_not_followed(
    spy: ConnectSpy, receiver: Receiver, policy: TargetPolicy
):
    metadata = "http://169.254.169.254/latest/meta-data/"
    receiver.reply("/r", Reply(status=307, headers={"Location": metadata}))
    receiver.reply("/r2", Reply(status=302, headers={"Location": receiver.url("/other")}))
    async with http(policy) as provider:
        first = await provider.call(fn(receiver.url("/r")), CALL)
        second = await provider.call(fn(receiver.url("/r2")), CALL)

    assert (first.status, dict(first.headers)["Location"]) == (307, metadata)
    assert second.status == 302
    assert [call.path for call in receiver.calls] == ["/r", "/r2"]
    assert spy.hosts() == {"127.0.0.1"}


async def test_a_resolver_answer_that_is_no_address_is_not_connected_to(spy: ConnectSpy):
    async with http(DENY, MapResolver({"odd.example": ["not-an-address"]})) as provider:
        with pytest.raises(ProviderError, match="could not be reached"):
            await provider.call(fn("http://odd.example/f"), CALL)

    assert spy.addresses == []


def test_a_guarded_socket_is_refused_before_it_is_created():
    with pytest.raises(TargetRefusedError) as caught:
        open_guarded_socket(DENY, socket.AF_INET, ("169.254.169.254", 80))
    with pytest.raises(OSError, match="cannot judge"):
        open_guarded_socket(DENY, socket.AF_INET, ("nowhere", 80))
    with contextlib.closing(
        open_guarded_socket(DENY, socket.AF_INET, ("93.184.216.34", 80))
    ) as sock:
        assert sock.family == socket.AF_INET

    assert caught.value.refusal.kind == "link-local"


# -- the call worker of --dispatch process applies the policy it is given ---------------------


@contextlib.asynccontextmanager
async def worker(policy: TargetPolicy) -> AsyncIterator[RemoteHttpProvider]:
    with tempfile.TemporaryDirectory(prefix="eg-") as directory:
        path = pathlib.Path(directory) / "w.sock"
        stop = asyncio.Event()
        task = asyncio.create_task(run_call_worker(path, stop, targets=policy))
        deadline = asyncio.get_running_loop().time() + 5
        while not path.exists():
            assert asyncio.get_running_loop().time() < deadline, "worker did not listen"
            await asyncio.sleep(0.01)  # the socket file appearing: there is no event to wait on
        provider = RemoteHttpProvider(path)
        try:
            yield provider
        finally:
            await provider.close()
            stop.set()
            await asyncio.wait_for(task, 5)


async def test_the_call_worker_refuses_what_the_policy_refuses(spy: ConnectSpy, receiver: Receiver):
    async with worker(DENY) as provider:
        await refused(provider, "http://10.0.0.1/f")
        await refused(provider, "http://169.254.169.254/")
        await refused(provider, f"http://localhost:{receiver.port}/f")

    assert spy.addresses == []
    assert receiver.calls == []


async def test_the_call_worker_calls_allow_listed_addresses(spy: ConnectSpy, receiver: Receiver):
    async with worker(LOOPBACK_ALLOWED) as provider:
        reply = await provider.call(fn(receiver.url("/f")), CALL)

    assert reply.status == 200
    assert len(receiver.calls) == 1
