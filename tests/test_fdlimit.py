"""The open files limit raised at start, and an outbound pool that hung subscribers cannot
empty (QA: 4 hung subscriptions × 128 slots took all 512 connections; healthy ones timed
out waiting for one)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

from eventgateway.errors import ProviderError
from eventgateway.fdlimit import pool_size
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call
from eventgateway.providers.http import HttpProvider
from tests.providers.test_http_client import Server, fn, serving

HUNG_CALLS = 600  # more than the old pool of 512; fewer than pool_size(1024)


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    out = run_python(
        """
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        from eventgateway.fdlimit import raise_open_files_limit
        raised = raise_open_files_limit(100)
        expected = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
        print(raised == expected, resource.getrlimit(resource.RLIMIT_NOFILE)[0] == expected)
        """
    )
    assert out.strip() == "True True"


def test_a_hard_limit_below_what_is_needed_is_warned_about() -> None:
    out = run_python(
        """
        import logging, resource
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))
        from eventgateway.fdlimit import raise_open_files_limit
        print(raise_open_files_limit(2048))
        """
    )
    assert out.startswith("100\n")
    assert "WARNING the open files limit is 100, below the ~2048 sockets" in out


def test_the_pool_has_room_for_every_delivery_in_flight() -> None:
    assert pool_size(1024) == 2048
    assert pool_size(10) == 512  # never below the old fixed size


async def test_hung_calls_leave_connections_for_a_healthy_function() -> None:
    provider = HttpProvider(max_connections=pool_size(1024))
    await provider.open()
    try:
        hung = Server(delay_s=30.0)  # answers nothing within the calls' deadline
        async with serving(hung), serving(Server()) as healthy:
            stuck = [
                asyncio.ensure_future(
                    provider.call(fn(hung.url()), Call(body=b"{}", timeout_s=3.0))
                )
                for _ in range(HUNG_CALLS)
            ]
            try:
                while hung.open_now < HUNG_CALLS:  # every hung call holds a connection
                    await asyncio.sleep(0.01)
                    assert not any(call.done() for call in stuck)
                good = Function(
                    space="acme", function_id="good", type="http", provider={"url": healthy.url()}
                )
                reply = await provider.call(good, Call(body=b"{}", timeout_s=2.0))
            finally:
                results = await asyncio.gather(*stuck, return_exceptions=True)
    finally:
        await provider.close()

    assert reply.status == 200
    assert all(isinstance(result, ProviderError) for result in results)
