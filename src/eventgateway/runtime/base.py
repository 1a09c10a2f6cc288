"""The local function runtime's shared shapes: what to run, what came back, log lines.

A function of type ``python`` or ``nodejs`` names a code bundle (content-addressed, under
the data directory) and a handler. ``runtime/pool.py`` runs it in warm worker processes;
every line the handler prints is a :class:`LogLine` handed to a :class:`LogSink`;
``runtime/logs.py`` keeps them for ``eg logs`` and live tails.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import pathlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "CALLER_GONE",
    "BundleInfo",
    "InvokeResult",
    "LogLine",
    "LogSink",
    "LogStore",
    "RuntimeSpec",
]

Language = Literal["python", "nodejs"]

CALLER_GONE: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "eventgateway_caller_gone", default=None
)
"""Set by a caller waiting for the invocation's result (a sync route): while the invocation
waits for a free worker, the event being set (its client went away) gives it up unrun."""
Stream = Literal["stdout", "stderr", "system"]


@dataclass(frozen=True, slots=True)
class RuntimeSpec:
    """Everything needed to run one function version."""

    space: str
    function_id: str
    language: Language
    runtime: str  # as declared, e.g. "python3.11", "nodejs20.x"
    bundle_id: str  # sha256 hex of the uploaded zip
    bundle_dir: pathlib.Path  # the extracted code, dependencies installed
    handler: str  # "module.function": handler.handler → handler.py, index.handler → index.js
    memory_mb: int = 1024
    timeout_s: float = 6.0
    concurrency: int = 4  # warm workers (and so concurrent invocations) at most
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """One invocation's outcome and its measured figures (the REPORT line's)."""

    ok: bool
    # ok: the handler's return value as JSON. Not ok: {"errorType", "errorMessage",
    # "stackTrace"} as JSON, the shape Lambda reports.
    payload: bytes
    request_id: str
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None  # set on a cold start


@dataclass(frozen=True, slots=True)
class LogLine:
    """One entry of a function's output, or a START/END/REPORT line (``stream="system"``)."""

    space: str
    function_id: str
    request_id: str
    timestamp: float  # wall-clock seconds
    stream: Stream
    message: str  # one record (a print, a console.log: maybe several lines), no final newline


class LogSink(Protocol):
    """Where the runtime hands log lines; must not block."""

    def append(self, lines: Sequence[LogLine]) -> None: ...


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """An uploaded code bundle."""

    bundle_id: str  # sha256 hex of the zip
    size: int  # bytes of the zip
    path: pathlib.Path  # extracted directory


class LogStore(abc.ABC):
    """Function logs with retention, queries and live tails."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources; running tails end."""

    @abc.abstractmethod
    def end_tails(self) -> None:
        """End every live tail now, and tails opened later at once; lines are still kept.

        Called when the gateway starts shutting down: an open ``logs/stream`` response
        would otherwise hold the server's graceful shutdown until its timeout.
        """

    @abc.abstractmethod
    def append(self, lines: Sequence[LogLine]) -> None:
        """Keep ``lines`` (buffered; never blocks the event loop) and feed live tails."""

    @abc.abstractmethod
    async def query(
        self,
        space: str,
        function_id: str,
        *,
        since: float | None = None,
        limit: int = 1000,
        filter: str | None = None,
    ) -> list[LogLine]:
        """The newest ``limit`` matching lines, oldest first; ``filter`` is a substring."""

    @abc.abstractmethod
    def tail(self, space: str, function_id: str) -> AsyncIterator[LogLine]:
        """Lines appended from now on, until the store closes or the caller stops."""

    @abc.abstractmethod
    async def enforce_retention(self, *, max_age_s: float, max_lines_per_function: int) -> int:
        """Delete lines older than ``max_age_s`` or beyond the newest N per function."""

    @abc.abstractmethod
    def end_space_tails(self, space: str) -> None:
        """End this process's live tails of every function of ``space`` (it was deleted:
        they must not follow what a next owner of the name writes); lines are kept."""

    @abc.abstractmethod
    async def forget_space(self, space: str) -> None:
        """Delete every line of every function of ``space``; idempotent.

        Lines appended before the call are deleted too, buffered ones included. Called
        when a space is deleted, and again before its name is claimed again, so that its
        logs never pass to the next owner (``docs/security.md``).
        """
