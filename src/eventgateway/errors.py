"""The one error tree of eventgateway.

Every error the project raises derives from :class:`EventGatewayError`. Errors that reach
an HTTP client carry ``status_code``; ``api/problems.py`` turns them into the wire shape
``{"errors":[{"message": …}]}``. Messages quote the bad value and, where one exists, the fix.

::

    EventGatewayError
    ├── HTTPError                 status_code + message, answered to a client as is
    │   ├── ValidationError       400: a body, field, header or path is not acceptable
    │   │   └── EventParseError   400: an incoming request is not a valid event
    │   ├── UnauthorizedError     401: no key, or an unknown one
    │   ├── ForbiddenError        403: a key without the right scope or for another space
    │   ├── NotFoundError         404: the resource does not exist
    │   ├── ConflictError         409: the resource exists already
    │   ├── PayloadTooLargeError  413
    │   ├── TooManyRequestsError  429: backpressure or a rate limit; carries retry_after_s
    │   ├── UnavailableError      503: draining, or the store cannot persist
    │   └── InsufficientStorageError  507: an upload would leave the disk below its reserve
    ├── StoreError                a storage backend failed (sqlite3, NATS…); 500 if it escapes
    ├── ProviderError             one function call failed; ``retryable`` says if a retry may help
    └── ConfigError               settings or a CLI argument are invalid
"""

from __future__ import annotations

import errno
import sqlite3

__all__ = [
    "ConfigError",
    "ConflictError",
    "EventGatewayError",
    "EventParseError",
    "ForbiddenError",
    "HTTPError",
    "InsufficientStorageError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProviderError",
    "StorageFullError",
    "StoreDamagedError",
    "StoreError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "store_error",
]


class EventGatewayError(Exception):
    """Base class of every error eventgateway raises."""


class HTTPError(EventGatewayError):
    """Raised when a request must be answered with an error status and message."""

    status_code: int = 500

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class ValidationError(HTTPError):
    """Raised when a body, field, header or path parameter is not acceptable (400)."""

    status_code = 400


class EventParseError(ValidationError):
    """Raised when an incoming Events API request is not a valid event (400)."""


class UnauthorizedError(HTTPError):
    """Raised when a request carries no key, or an unknown or expired one (401)."""

    status_code = 401


class ForbiddenError(HTTPError):
    """Raised when a key lacks the scope, or belongs to another space (403)."""

    status_code = 403


class NotFoundError(HTTPError):
    """Raised when the named resource does not exist (404)."""

    status_code = 404


class ConflictError(HTTPError):
    """Raised when the resource exists already (409); messages contain ``already exists``."""

    status_code = 409


class PayloadTooLargeError(HTTPError):
    """Raised when a request body is over the configured limit (413)."""

    status_code = 413


class TooManyRequestsError(HTTPError):
    """Raised on backpressure or a rate limit (429); ``retry_after_s`` is sent as Retry-After."""

    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnavailableError(HTTPError):
    """Raised while the gateway drains or cannot persist events (503)."""

    status_code = 503


class InsufficientStorageError(HTTPError):
    """Raised when storing an upload would leave its disk with less free space than the
    gateway keeps in reserve (507)."""

    status_code = 507


class StoreError(EventGatewayError):
    """Raised when a storage backend fails; the library's exception is chained."""


class StorageFullError(StoreError):
    """Raised when a write failed because the store's disk is full: the Configuration
    API answers 507 (as for an upload past the disk's reserve) rather than 500."""


class StoreDamagedError(StoreError):
    """Raised when SQLite finds its file damaged ("database disk image is malformed"):
    no retry mends it, so the gateway reports itself not ready."""


def store_error(message: str, exc: BaseException) -> StoreError:
    """:class:`StorageFullError` for SQLite's "database or disk is full" (or an
    ``ENOSPC``), :class:`StoreDamagedError` for a damaged file, else :class:`StoreError`;
    ``exc`` is chained."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # the primary result code
    kind = StoreError
    if code == sqlite3.SQLITE_FULL or getattr(exc, "errno", None) == errno.ENOSPC:
        kind = StorageFullError
    elif code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        kind = StoreDamagedError
    error = kind(message)
    error.__cause__ = exc
    return error


class ProviderError(EventGatewayError):
    """Raised when one function call fails.

    Args:
        message: what went wrong, for the delivery log and the function's logs.
        retryable: whether another attempt may succeed (network errors, timeouts, 408,
            429, 5xx) or not (other 4xx, an unsupported function type).
        status: the HTTP status the function answered, when there was one.
        retry_after_s: the delay the function asked for (``Retry-After``), if any.
        request_id: the local runtime's id of the invocation that failed, when one ran
            (its log lines carry the same id).
        interrupted: the gateway itself cut the call off (it went away mid-call), not the
            function: the delivery is made again without counting an attempt.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        status: int | None = None,
        retry_after_s: float | None = None,
        body_excerpt: str = "",
        request_id: str | None = None,
        interrupted: bool = False,
    ) -> None:
        super().__init__(message)
        self.interrupted = interrupted
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s
        self.body_excerpt = body_excerpt
        self.request_id = request_id


class ConfigError(EventGatewayError):
    """Raised when settings or command-line arguments are invalid."""
