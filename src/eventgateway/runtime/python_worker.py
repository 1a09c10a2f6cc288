"""Runs inside a Python worker process: loads one handler, then answers invocations.

Started by the gateway as ``python -S python_worker.py '<config JSON>'`` with the bundle
directory as its working directory; see ``protocol.py`` for the frames it reads and writes on
its two extra pipe ends. One invocation at a time: read a request, call the handler, flush
stdout and stderr, print the sentinel line on both, answer.

Only the standard library is imported here, and as little of it as possible, because every
import is paid on each cold start (``traceback`` and ``asyncio`` load only when needed).

One ``print`` or ``logging`` record is one log entry, however many lines it has: the
handler's ``sys.stdout``/``sys.stderr`` mark the inner line ends of each ``write``
(``protocol.CONTINUED``), and ``print`` makes one ``write`` of its whole text.
"""

from __future__ import annotations

import _thread
import builtins
import importlib
import io
import json
import logging
import os
import resource
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

# A sibling file: the worker runs as a script (sys.path[0] is this directory until
# _prepare() replaces it with the bundle's), not as part of the package.
if TYPE_CHECKING:
    from eventgateway.runtime._eg_worker_errors import (
        InitError,
        error_payload,
        log_error,
        message_of,
        stack_of,
    )
    from eventgateway.runtime._eg_worker_output import RecordStream, record_print
else:
    from _eg_worker_errors import InitError, error_payload, log_error, message_of, stack_of
    from _eg_worker_output import RecordStream, record_print

_PREFIX = struct.Struct(">II")
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect
_ROOT = os.getcwd()

_current_request_id = ""


# -- frames ----------------------------------------------------------------------------------


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int) -> tuple[dict[str, Any], bytes] | None:
    prefix = _read_exact(fd, _PREFIX.size)
    if prefix is None:
        return None
    head_len, body_len = _PREFIX.unpack(prefix)
    data = _read_exact(fd, head_len + body_len) if head_len + body_len else b""
    if data is None:
        return None
    header: dict[str, Any] = json.loads(data[:head_len])
    return header, data[head_len:]


def _write_frame(fd: int, header: dict[str, Any], body: bytes = b"") -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    data = memoryview(_PREFIX.pack(len(head), len(body)) + head + body)
    while data:
        data = data[os.write(fd, data) :]


# -- what the handler sees -------------------------------------------------------------------


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _current_request_id
        return True


def _configure_logging() -> None:
    """Lambda's root logger: ``[LEVEL]\\t<UTC timestamp>\\t<request id>\\t<message>``."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    # Lambda leaves the root logger at WARNING unless AWS_LAMBDA_LOG_LEVEL says otherwise.
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())


class LambdaContext:
    """The ``context`` argument: Lambda's attribute names, this invocation's figures."""

    function_version = "$LATEST"

    def __init__(self, request_id: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0"))
        self.logger = logging.getLogger(self.function_name or "handler")
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the gateway stops this invocation."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def log(self, message: object) -> None:
        """Write ``message`` to the function's log as one line."""
        text = str(message)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


# -- loading and calling ---------------------------------------------------------------------


def _load(handler_name: str) -> Any:
    """Import the module and find the function ``handler_name`` names (``mod.func``)."""
    module_path, dot, function_name = handler_name.rpartition(".")
    if not dot or not module_path or not function_name:
        raise InitError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler_name}': expected 'module.function'",
            [],
        )
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise InitError(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {message_of(exc)}",
            stack_of(exc),
        ) from exc
    except ImportError as exc:
        raise InitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_name}': {message_of(exc)}",
            stack_of(exc),
        ) from exc
    except Exception as exc:
        raise InitError(type(exc).__name__, message_of(exc), stack_of(exc)) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
            [],
        )
    return function


class _Invoker:
    """Calls the handler; keeps one event loop for async handlers across invocations."""

    def __init__(self, function: Any) -> None:
        self._function = function
        self._loop: Any = None

    def _await(self, awaitable: Any) -> Any:
        import asyncio

        # One loop for the worker's lifetime: clients a handler keeps in globals (an
        # aiohttp session, a DB pool) stay bound to a loop that still runs next time.
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop.run_until_complete(awaitable)

    def __call__(self, event: Any, context: LambdaContext) -> Any:
        code = getattr(self._function, "__code__", None)
        if code is not None and code.co_flags & _CO_COROUTINE:
            return self._await(self._function(event, context))
        result = self._function(event, context)
        if hasattr(result, "__await__"):
            return self._await(result)
        return result


def _invoke(invoker: _Invoker, header: dict[str, Any], body: bytes) -> tuple[bool, bytes, bool]:
    """Run one invocation: ``(ok, payload, retire)``. Prints nothing of its own on success."""
    deadline = time.monotonic() + header["timeout_ms"] / 1000
    context = LambdaContext(header["request_id"], deadline)
    try:
        event = json.loads(body) if body else {}
        result = invoker(event, context)
    except MemoryError:
        # Drop the traceback (and the frames holding the hog's memory) before doing anything.
        message = "the handler ran out of memory (MemoryError)"
        log_error("Runtime.OutOfMemory", message, [])
        return False, error_payload("Runtime.OutOfMemory", message, []), True
    except Exception as exc:
        stack, message = stack_of(exc), message_of(exc)
        log_error(type(exc).__name__, message, stack)
        return False, error_payload(type(exc).__name__, message, stack), False
    try:
        return True, json.dumps(result).encode(), False
    except (TypeError, ValueError) as exc:
        message = f"Unable to marshal response: {exc}"
        log_error("Runtime.MarshalError", message, [])
        return False, error_payload("Runtime.MarshalError", message, []), False


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass  # a handler closed or replaced the stream; the parent copes with EOF


def _flush_and_mark(marker: bytes) -> None:
    """Flush everything the handler printed, then the sentinel line on stdout and stderr."""
    _flush()
    for fd in (1, 2):
        try:
            os.write(fd, marker)
        except OSError:
            pass


def _max_memory_used_mb() -> int:
    """This process's peak resident memory, in MiB.

    Not ``getrusage().ru_maxrss``: Linux carries the peak of the pre-``exec`` image over,
    and that image was the gateway itself (vfork), so every function would "use" the
    gateway's memory. ``VmHWM`` belongs to the address space ``exec`` created.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for row in status:
                if row.startswith(b"VmHWM:"):
                    return int(row.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // (1024 * 1024) if sys.platform == "darwin" else peak // 1024


def _end_sandbox() -> None:
    """Kill this worker's process group (what the handler started too), then exit.

    ``os._exit``: a non-daemon thread the handler left running must not keep it alive.
    """
    _flush()
    try:
        os.killpg(os.getpid(), 9)  # SIGKILL; ESRCH unless we lead the group (the gateway's)
    except OSError:
        pass
    os._exit(0)


def _watch_parent(in_fd: int) -> None:
    """Thread: end the sandbox once the gateway is gone, even in the middle of a call.

    Only the gateway holds the request pipe's write end, so the pipe hangs up when it
    closes it or dies (even by SIGKILL). Asking for no event but POLLHUP leaves the reading
    to the main thread; ``poll`` blocks, so this costs nothing until then.
    """
    import select

    poller = select.poll()
    poller.register(in_fd, select.POLLHUP)
    while not poller.poll():
        pass
    _end_sandbox()


def _prepare(config: dict[str, Any]) -> None:
    limit = config["limit_as_mb"] * 1024 * 1024
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass  # a hard limit lower than ours already applies
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core files in the bundle dir
    except (ValueError, OSError):
        pass
    for fd in (config["in_fd"], config["out_fd"]):
        os.set_inheritable(fd, False)  # the handler's own subprocesses must not hold them
    _thread.start_new_thread(_watch_parent, (config["in_fd"],))
    # Line-buffered: each printed line reaches the parent when it is printed; and as the
    # handler's sys.stdout/stderr, one record per write (sys.__stdout__ stays per line).
    for fd, name in ((1, "stdout"), (2, "stderr")):
        stream = getattr(sys, name)
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True, errors="backslashreplace")
            setattr(sys, name, RecordStream(fd, stream))
    builtins.print = record_print
    deps = os.path.join(_ROOT, ".deps")
    sys.path[0:1] = [_ROOT, deps] if os.path.isdir(deps) else [_ROOT]
    _configure_logging()


def main(argv: list[str]) -> int:
    """Serve invocations until the parent closes the request pipe."""
    global _current_request_id
    config = json.loads(argv[1])
    # An event the gateway accepted must reach the handler: JSON has no digit limit.
    sys.set_int_max_str_digits(0)
    _prepare(config)
    in_fd, out_fd, token = config["in_fd"], config["out_fd"], config["sentinel"]

    invoker: _Invoker | None = None
    init_error: InitError | None = None
    try:
        invoker = _Invoker(_load(config["handler"]))
    except InitError as exc:
        init_error = exc
        log_error(exc.error_type, exc.message, exc.stack)
    _flush()  # what the module printed while loading belongs before "ready"
    error_body = b""
    if init_error is not None:
        error_body = error_payload(init_error.error_type, init_error.message, init_error.stack)
    ready = {"type": "ready", "pid": os.getpid(), "init_error": init_error is not None}
    _write_frame(out_fd, {**ready, "max_memory_used_mb": _max_memory_used_mb()}, error_body)

    while (frame := _read_frame(in_fd)) is not None:
        header, body = frame
        if header.get("type") != "invoke":
            continue
        _current_request_id = header["request_id"]
        started = time.perf_counter()
        if invoker is None:
            ok, payload, retire = False, error_body, True
        else:
            ok, payload, retire = _invoke(invoker, header, body)
        duration_ms = (time.perf_counter() - started) * 1000
        _flush_and_mark(f"{token}:{header['seq']}\n".encode())
        result = {"type": "result", "seq": header["seq"], "ok": ok, "duration_ms": duration_ms}
        result.update(max_memory_used_mb=_max_memory_used_mb(), retire=retire)
        _write_frame(out_fd, result, payload)
    _end_sandbox()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
