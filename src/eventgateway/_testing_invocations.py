"""What the test kit records of a gateway's function invocations (for ``eventgateway.testing``).

The gateway keeps a function's log lines, but not what an async invocation returned or
the event it was given; :class:`InvocationRecorder` sits where the local runtime finishes
an invocation and keeps all three, for a test thread to wait on without polling.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from eventgateway.runtime.base import InvokeResult, RuntimeSpec
    from eventgateway.runtime.pool import FunctionRuntime

__all__ = ["Invocation", "InvocationRecorder", "Record", "invocation"]

_FRAME_PREFIXES: Final = ("START RequestId: ", "END RequestId: ", "REPORT RequestId: ")


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call of a ``python`` or ``nodejs`` function, as the test kit saw it.

    Attributes:
        function_id: the function called.
        request_id: the invocation's id, as in its log lines.
        ok: the handler returned; ``False`` when it raised, crashed or timed out.
        result: what the handler returned (JSON-decoded), when ``ok``.
        error: Lambda's ``{"errorType", "errorMessage", "stackTrace"}``, when not ``ok``.
        event: the event the handler was given (the CloudEvent as a dict).
        logs: the lines the handler printed (and the runtime's notices), in order,
            without the START/END/REPORT frame.
        duration_ms: the handler's wall time.

    .. versionadded:: 0.1.0
    """

    function_id: str
    request_id: str
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    event: Any = None
    logs: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def output(self) -> str:
        """:attr:`logs` as one text, a line each."""
        return "\n".join(self.logs)


@dataclass(slots=True)
class Record:
    """One finished invocation, as the runtime returned it."""

    spec: RuntimeSpec
    event: bytes
    result: InvokeResult
    started_s: float  # wall clock: the earliest its log lines can be stamped
    offered: bool = False


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode("utf-8", "replace")


def invocation(record: Record, log_entries: Sequence[Mapping[str, Any]]) -> Invocation:
    """The :class:`Invocation` of ``record``; its lines are picked from ``log_entries``."""
    result = record.result
    payload = _decode(result.payload)
    return Invocation(
        function_id=record.spec.function_id,
        request_id=result.request_id,
        ok=result.ok,
        result=payload if result.ok else None,
        error=None if result.ok else payload,
        event=_decode(record.event),
        logs=[
            entry["message"]
            for entry in log_entries
            if entry.get("requestId") == result.request_id and not _is_frame(entry)
        ],
        duration_ms=result.duration_ms,
    )


def _is_frame(entry: Mapping[str, Any]) -> bool:
    return entry.get("stream") == "system" and str(entry["message"]).startswith(_FRAME_PREFIXES)


class InvocationRecorder:
    """Every finished invocation of one gateway's runtime, in order; thread-safe.

    Each record is offered once by :meth:`next` (or taken by :meth:`take`).
    """

    def __init__(self) -> None:
        self._records: list[Record] = []
        self._changed = threading.Condition()

    def attach(self, functions: FunctionRuntime) -> None:
        """Record every invocation ``functions`` runs from now on.

        Wraps the instance's ``invoke``: the runtime providers call it through the
        instance, so no code of the server changes for the test kit.
        """
        invoke = functions.invoke

        async def recording(
            spec: RuntimeSpec, event: bytes, *, slot_wait_s: float | None = None
        ) -> InvokeResult:
            started_s = time.time()
            result = await invoke(spec, event, slot_wait_s=slot_wait_s)
            self._add(Record(spec, event, result, started_s))
            return result

        functions.invoke = recording  # type: ignore[method-assign]

    def _add(self, record: Record) -> None:
        # Runs on the gateway's event loop; the lock is held for an append only.
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()

    def next(self, function_id: str, timeout_s: float) -> Record | None:
        """The oldest record of ``function_id`` not offered yet, waiting up to ``timeout_s``."""

        def unoffered() -> Record | None:
            return self._first(lambda r: r.spec.function_id == function_id)

        with self._changed:
            record = self._changed.wait_for(unoffered, timeout_s)
            if record is not None:
                record.offered = True
            return record

    def take(self, request_id: str) -> Record | None:
        """The record of invocation ``request_id``, which is then not offered by :meth:`next`."""
        with self._changed:
            record = next((r for r in self._records if r.result.request_id == request_id), None)
            if record is not None:
                record.offered = True
            return record

    def _first(self, wanted: Callable[[Record], bool]) -> Record | None:
        return next((r for r in self._records if not r.offered and wanted(r)), None)

    def all(self, function_id: str | None = None) -> list[Record]:
        """Every record (of ``function_id``, if given), offered or not, in order."""
        with self._changed:
            return [r for r in self._records if function_id in (None, r.spec.function_id)]

    def function_ids(self) -> list[str]:
        """The functions invoked so far, sorted."""
        with self._changed:
            return sorted({r.spec.function_id for r in self._records})

    def reset(self) -> None:
        """Mark every record so far as offered."""
        with self._changed:
            for record in self._records:
                record.offered = True
