"""The Python worker's errors in Lambda's shape: what it logs, and what it answers.

Imported by ``python_worker.py`` as a sibling file (the worker runs as a script, outside
the package), so only the standard library is used here, and ``traceback`` only once an
error needs it (every import is paid on each cold start).
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ["InitError", "error_payload", "log_error", "message_of", "stack_of"]

_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class InitError(Exception):
    """The handler could not be loaded: Lambda's ``errorType`` and message for it."""

    def __init__(self, error_type: str, message: str, stack: list[str]) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack


def _is_runtime_frame(filename: str) -> bool:
    """Frames of this worker (and its sibling files), importlib and asyncio: noise."""
    if filename.startswith(_HERE) or filename.startswith("<frozen "):
        return True
    location = getattr(sys.modules.get("asyncio"), "__file__", None)
    if not location:  # asyncio not imported (a plain sync handler): no asyncio frames
        return False
    return filename.startswith(os.path.dirname(location) + os.sep)


def stack_of(exc: BaseException) -> list[str]:
    """The traceback of ``exc`` as Lambda shows it: the handler's frames only."""
    import traceback

    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not _is_runtime_frame(f.filename)
    ]
    return traceback.format_list(frames)


def message_of(exc: BaseException) -> str:
    """``str(exc)``, or a stand-in if its ``__str__`` fails (the handler's error still)."""
    try:
        return str(exc)
    except Exception as failed:
        return f"<str() of the {type(exc).__name__} failed: {type(failed).__name__}>"


def log_error(error_type: str, message: str, stack: list[str]) -> None:
    """Print the error to stderr the way Lambda logs it, so ``eg logs`` shows it."""
    lines = [f"[ERROR] {error_type}: {message}"]
    if stack:
        lines.append("Traceback (most recent call last):")
        lines.extend(frame.rstrip("\n") for frame in stack)
    sys.stderr.write("\n".join(lines) + "\n")


def error_payload(error_type: str, message: str, stack: list[str]) -> bytes:
    """The invocation's answer for an error: Lambda's ``errorType``/``errorMessage``/
    ``stackTrace`` object."""
    return json.dumps(
        {"errorType": error_type, "errorMessage": message, "stackTrace": stack}
    ).encode()
