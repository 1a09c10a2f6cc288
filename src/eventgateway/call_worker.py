"""The delivery worker process of ``eg serve --dispatch process``.

It listens on a UNIX socket, makes each ``http`` call it is sent with the same
:class:`~eventgateway.providers.http.HttpProvider` the gateway uses in-process, and sends
back the reply or the error. It holds no state: the gateway keeps the queue, retries and
metrics, so a worker that dies loses nothing (its calls in flight fail and are retried).

The gateway starts it as ``python -m eventgateway.call_worker`` (:func:`main`), not through
the ``eg`` CLI: that entry imports only asyncio, uvloop, msgspec and the HTTP provider, so
the worker does not carry click, rich, PyYAML and the server's modules (several MB of RSS
per process, kept for its whole life).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import pathlib
import signal
import sys

import msgspec

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.remote import (
    CallReply,
    CallRequest,
    decode_request,
    read_frame,
    write_frame,
)
from eventgateway.providers.targets import TargetPolicy, parse_networks

__all__ = ["die_with_parent", "main", "parse_args", "run_call_worker", "serve_forever"]

logger = logging.getLogger(__name__)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (even by SIGKILL).

    Without it, a ``kill -9`` of ``eg serve`` would leave an orphan worker behind.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


async def _answer(provider: HttpProvider, request: CallRequest) -> CallReply:
    function = Function(
        space="", function_id=request.function_id, type="http", provider={"url": request.url}
    )
    call = Call(
        body=request.body,
        content_type=request.content_type,
        headers=request.headers,
        timeout_s=request.timeout_s,
    )
    try:
        reply = await provider.call(function, call)
    except ProviderError as exc:
        return CallReply(
            id=request.id,
            status=exc.status or 0,
            error=exc.message,
            retryable=exc.retryable,
            retry_after_s=exc.retry_after_s,
        )
    return CallReply(
        id=request.id, status=reply.status, headers=list(reply.headers), body=reply.body
    )


async def _serve_connection(
    provider: HttpProvider, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    tasks: set[asyncio.Task[None]] = set()

    async def handle(request: CallRequest) -> None:
        reply = await _answer(provider, request)
        try:
            write_frame(writer, reply)
        except (TypeError, ValueError) as exc:  # never leave the gateway waiting
            logger.exception("cannot encode the reply to call %d", request.id)
            write_frame(writer, CallReply(id=request.id, error=f"delivery worker error: {exc}"))

    try:
        while True:
            try:
                payload = await read_frame(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            try:
                request = decode_request(payload)
            except (msgspec.DecodeError, ValueError):
                logger.error("dropping a malformed call frame from the gateway")
                continue
            task = asyncio.create_task(handle(request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        writer.close()


def _remove_socket(path: pathlib.Path) -> None:
    # A socket file left by a killed worker would make bind() fail.
    path.unlink(missing_ok=True)


async def run_call_worker(
    socket_path: pathlib.Path,
    stop: asyncio.Event | None = None,
    *,
    targets: TargetPolicy,
) -> None:
    """Serve calls on ``socket_path`` until SIGTERM (or until ``stop`` is set, if given).

    ``targets`` is the gateway's SSRF guard policy: the worker makes the calls, so it applies
    the same one (to every address it connects to).
    """
    provider = HttpProvider(policy=targets)
    await provider.open()
    _remove_socket(socket_path)
    server = await asyncio.start_unix_server(
        lambda r, w: _serve_connection(provider, r, w), path=str(socket_path)
    )
    os.chmod(socket_path, 0o600)
    if stop is None:
        stop = asyncio.Event()
        # Only the gateway stops the worker (SIGTERM, after its deliveries drained); a
        # Ctrl-C that reaches the whole process group must not cut calls in flight.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    logger.info("delivery worker ready on %s", socket_path)
    await stop.wait()
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 1.0)
    await provider.close()
    _remove_socket(socket_path)


def serve_forever(socket_path: pathlib.Path, *, targets: TargetPolicy, log_level: str) -> None:
    """Run the worker on uvloop until SIGTERM, logging at ``log_level`` to stderr."""
    import uvloop  # here: tests import this module without wanting a loop policy

    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    die_with_parent()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_call_worker(socket_path, targets=targets))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eventgateway.call_worker",
        description="Internal: the delivery worker process of `eg serve --dispatch process`.",
    )
    parser.add_argument("--socket", dest="socket_path", type=pathlib.Path, required=True)
    parser.add_argument("--log-level", default="info")
    # The SSRF guard is stated in full by the gateway and never read from the environment,
    # so the worker's guard is exactly the gateway's (refusing if it said nothing).
    private = parser.add_mutually_exclusive_group()
    private.add_argument("--allow-private-targets", dest="allow_private", action="store_true")
    private.add_argument("--deny-private-targets", dest="allow_private", action="store_false")
    parser.set_defaults(allow_private=False)
    parser.add_argument(
        "--allow-target", dest="allowed_targets", action="append", default=[], metavar="CIDR"
    )
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[pathlib.Path, TargetPolicy, str]:
    """The socket path, SSRF policy and log level given on the command line.

    Raises:
        SystemExit: usage error (status 2), as argparse does.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        allow_list = parse_networks(args.allowed_targets)
    except ValueError as exc:
        parser.error(f"--allow-target: {exc}")
    policy = TargetPolicy(allow_private=args.allow_private, allow_list=allow_list)
    return args.socket_path, policy, args.log_level


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m eventgateway.call_worker``."""
    socket_path, targets, log_level = parse_args(argv)
    serve_forever(socket_path, targets=targets, log_level=log_level)


if __name__ == "__main__":  # pragma: no cover - run as a child process by the tests
    main()
