"""The delivery worker process of ``eg serve --dispatch process``.

It listens on a UNIX socket, makes each ``http`` call it is sent with the same
:class:`~eventgateway.providers.http.HttpProvider` the gateway uses in-process, and sends
back the reply or the error. It holds no state: the gateway keeps the queue, retries and
metrics, so a worker that dies loses nothing (its calls in flight fail and are retried).

The gateway starts it as ``python -m eventgateway.call_worker`` (:func:`main`), not through
the ``eg`` CLI: that entry imports only asyncio, uvloop, msgspec and the HTTP provider, so
the worker does not carry click, rich, PyYAML and the server's modules (several MB of RSS
per process, kept for its whole life).

With ``--queue`` (``--dispatch worker``) it also dispatches the durable queue itself
(``dispatch/worker_queue.py``). Should that dispatcher die of an error, the worker exits
with status 1, so that its supervisor starts a new one: a worker that answers calls but
no longer delivers would go unnoticed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import os
import pathlib
import signal
import sys
from dataclasses import dataclass
from typing import Any

from eventgateway.cpus import parse_cpus, pin_this_process
from eventgateway.errors import StoreError
from eventgateway.fdlimit import pool_size, raise_open_files_limit
from eventgateway.gc_tuning import tune_for_serving
from eventgateway.hardening import forbid_inspection
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.remote import (
    CallReply,
    CallRequest,
    answer,
    decode_request,
    frames,
    write_frame,
)
from eventgateway.providers.targets import TargetPolicy, parse_networks

__all__ = [
    "STORE_URL_ENV",
    "QueueOptions",
    "die_with_parent",
    "main",
    "parse_args",
    "queue_options",
    "run_call_worker",
    "serve_forever",
]

logger = logging.getLogger(__name__)

# --dispatch worker on NATS: the store URL reaches the worker in its environment, not on
# its command line, where ``ps`` would show any credentials the URL holds.
STORE_URL_ENV = "EG_DISPATCH_STORE_URL"


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
        sync=request.sync,
    )
    return await answer(CallReply, request.id, provider.call(function, call))


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
        async for request in frames(reader, decode_request, "gateway"):
            task = asyncio.create_task(handle(request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    except asyncio.CancelledError:
        # The worker is stopping with the gateway still connected (always, once a kill -9
        # took the gateway). Python 3.11's stream server logs a connection handler that
        # ends cancelled as an ERROR with a traceback; there is nothing to report.
        pass
    finally:
        for task in list(tasks):
            task.cancel()
        writer.close()


def _prepare_socket(path: pathlib.Path) -> None:
    # A socket file left by a killed worker would make bind() fail. With the memory store
    # nothing else creates the data dir the socket lives in.
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_socket(path)


def _remove_socket(path: pathlib.Path) -> None:
    path.unlink(missing_ok=True)


@dataclass(frozen=True)
class QueueOptions:
    """``--dispatch worker``: the queue this worker dispatches, and how."""

    socket_path: pathlib.Path  # where the gateway's link connects
    path: pathlib.Path
    synchronous: str = "FULL"
    lease_s: float = 60.0
    dedup_window_s: float = 300.0
    max_deliveries: int = 1_000_000
    max_bytes: int = 1 << 30
    concurrency: int = 1024
    per_subscription: int = 128
    timeout_s: float = 5.0
    fast_buffer: int = 10_000  # at-most-once deliveries held at most
    # On SIGTERM, attempts in flight get this long to finish; then they are cancelled and
    # come back when their lease runs out. An orphan (its gateway was kill -9'd) has no one
    # else to stop it, and holds the data dir until it exits.
    shutdown_timeout_s: float = 10.0

    def to_args(self) -> list[str]:
        """The command line that :func:`queue_options` reads back into these options."""
        args = ["--queue", str(self.path), "--dispatch-socket", str(self.socket_path)]
        for option in _tunables():
            args += [_flag(option.name), str(getattr(self, option.name))]
        return args


def _tunables() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(QueueOptions) if f.name not in ("socket_path", "path")]


def _flag(name: str) -> str:
    return "--queue-" + name.replace("_", "-")


async def run_call_worker(
    socket_path: pathlib.Path,
    stop: asyncio.Event | None = None,
    *,
    targets: TargetPolicy,
    queue: QueueOptions | None = None,
) -> int:
    """Serve calls on ``socket_path`` until SIGTERM (or until ``stop`` is set, if given).

    ``targets`` is the gateway's SSRF guard policy: the worker makes the calls, so it applies
    the same one (to every address it connects to). With ``queue``, the worker also
    dispatches that queue itself (``dispatch/worker_queue.py``).

    Returns:
        The exit status: 0 once stopped; 1 if the dispatcher died of an error (logged),
        so that the supervisor starts a new worker rather than keep one that calls but
        no longer delivers.
    """
    # Its dispatcher's concurrency, or the gateway's (--dispatch process: it sends the calls).
    concurrency = queue.concurrency if queue is not None else QueueOptions.concurrency
    provider = HttpProvider(policy=targets, max_connections=pool_size(concurrency))
    await provider.open()
    _prepare_socket(socket_path)
    server = await asyncio.start_unix_server(
        lambda r, w: _serve_connection(provider, r, w), path=str(socket_path)
    )
    os.chmod(socket_path, 0o600)
    async with contextlib.AsyncExitStack() as stack:
        dispatching = None
        if queue is not None:
            from eventgateway.dispatch.worker_queue import dispatching as run_queue

            dispatching = await stack.enter_async_context(run_queue(queue, provider))
        died = await _until_stopped(stop, dispatching)
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 1.0)
    await provider.close()
    _remove_socket(socket_path)
    return 1 if died else 0


async def _until_stopped(
    stop: asyncio.Event | None, dispatching: asyncio.Task[None] | None
) -> bool:
    """Wait for the stop signal; ``True`` if the dispatcher died of an error first."""
    if stop is None:
        stop = asyncio.Event()
        # Only the gateway stops the worker (SIGTERM, after its deliveries drained); a
        # Ctrl-C that reaches the whole process group must not cut calls in flight.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    logger.info("delivery worker ready")
    if dispatching is not None:
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((stopped, dispatching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        # It also ends, without an error, once the gateway asked it to drain: then the
        # worker waits for its SIGTERM as before.
        if dispatching.done() and not dispatching.cancelled():
            error = dispatching.exception()
            if error is not None:
                logger.error(
                    "the dispatcher stopped unexpectedly%s; the delivery worker exits so "
                    "that it is restarted (deliveries in flight come back)",
                    f": {error}" if isinstance(error, StoreError) else "",
                    # A store's failure says it all (fatal.py); anything else is a bug.
                    exc_info=None if isinstance(error, StoreError) else error,
                )
                return True
    await stop.wait()
    return False


def serve_forever(
    socket_path: pathlib.Path,
    *,
    targets: TargetPolicy,
    log_level: str,
    queue: QueueOptions | None = None,
) -> None:
    """Run the worker on uvloop until SIGTERM, logging at ``log_level`` to stderr.

    Exits with status 1 if the dispatcher died (see :func:`run_call_worker`).
    """
    import uvloop  # here: tests import this module without wanting a loop policy

    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    die_with_parent()
    forbid_inspection()  # its environment holds the store URL's credentials
    raise_open_files_limit(pool_size(queue.concurrency) if queue is not None else 0)
    tune_for_serving()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        status = runner.run(run_call_worker(socket_path, targets=targets, queue=queue))
    if status:
        sys.exit(status)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eventgateway.call_worker",
        description="Internal: the delivery worker process of `eg serve --dispatch process` "
        "and `--dispatch worker`.",
    )
    parser.add_argument("--socket", dest="socket_path", type=pathlib.Path, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--cpus", help="CPU list to run on (eg serve --worker-cpus)")
    # The SSRF guard is stated in full by the gateway and never read from the environment,
    # so the worker's guard is exactly the gateway's (refusing if it said nothing).
    private = parser.add_mutually_exclusive_group()
    private.add_argument("--allow-private-targets", dest="allow_private", action="store_true")
    private.add_argument("--deny-private-targets", dest="allow_private", action="store_false")
    parser.set_defaults(allow_private=False)
    parser.add_argument(
        "--allow-target", dest="allowed_targets", action="append", default=[], metavar="CIDR"
    )
    # --dispatch worker: the SQLite queue this worker dispatches (QueueOptions).
    parser.add_argument("--queue", dest="queue_path", type=pathlib.Path)
    parser.add_argument("--dispatch-socket", type=pathlib.Path)
    for option in _tunables():
        default = option.default
        parser.add_argument(
            _flag(option.name), dest=option.name, type=type(default), default=default
        )
    return parser


def queue_options(argv: list[str] | None = None) -> QueueOptions | None:
    """The queue to dispatch, if ``--queue`` was given (then ``--dispatch-socket`` too).

    Raises:
        SystemExit: usage error (status 2), as argparse does.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.queue_path is None:
        return None
    if args.dispatch_socket is None:
        parser.error("--queue needs --dispatch-socket")
    tuned = {option.name: getattr(args, option.name) for option in _tunables()}
    return QueueOptions(socket_path=args.dispatch_socket, path=args.queue_path, **tuned)


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


def _pin(parser: argparse.ArgumentParser, cpus: str | None) -> None:
    if cpus is None:
        return
    try:
        # Checked against the machine, not this process's affinity: that is the gateway's,
        # inherited, and the gateway checked the list against its own before pinning.
        pin_this_process(parse_cpus(cpus, range(os.cpu_count() or 1)))
    except (ValueError, OSError) as exc:
        parser.error(f"--cpus: {exc}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m eventgateway.call_worker``."""
    socket_path, targets, log_level = parse_args(argv)
    queue = queue_options(argv)
    parser = _parser()
    _pin(parser, parser.parse_args(argv).cpus)  # before any thread starts
    serve_forever(socket_path, targets=targets, log_level=log_level, queue=queue)


if __name__ == "__main__":  # pragma: no cover - run as a child process by the tests
    main()
