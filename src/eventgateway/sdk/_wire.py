"""The SDK's wire format without I/O: URLs, requests, replies, errors, retry timing.

Both clients (:mod:`~eventgateway.sdk.client`, :mod:`~eventgateway.sdk.sync`) send what is
built here (by :mod:`~eventgateway.sdk._calls` and, for events, :mod:`~eventgateway.sdk._emit`)
and hand what came back to the parsers here, so the request shapes, the error mapping and
the retry rules exist once and are table-tested without a network.

::

    Calls (_calls.py) ──▶ Call(Request, parse) ──▶ client sends ──▶ Reply ──▶ parse ──▶ value
                                                        └─ retry_delay_s(…) between attempts
"""

from __future__ import annotations

import http
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeVar
from urllib.parse import quote, urlencode, urlunsplit

from eventgateway.errors import EventGatewayError
from eventgateway.names import is_valid_space
from eventgateway.sdk._hosts import hosted_space, path_space, split_url

# The names the clients build on; the parsers (to_*) and helpers are used by _calls.
__all__ = [
    "STREAM_IDLE_S",
    "Call",
    "EmitResult",
    "Endpoints",
    "GatewayError",
    "Reply",
    "Request",
    "Retry",
    "Target",
    "check",
    "error_message",
]

T = TypeVar("T")

STREAM_IDLE_S: Final = 45.0
"""A log stream silent this long is dead: the server sends a keep-alive every 15 s."""
DEFAULT_CONFIG_PORT: Final = 4001
_MAX_MESSAGE_CHARS: Final = 500

Retry = Literal["never", "unsent", "idempotent"]
"""What may be retried: ``never``; ``unsent`` — requests refused with 429/503 and
``Retry-After``, and requests that never reached the server in full; ``idempotent`` —
also any 429/503, and requests that may have been applied (see ``_retry``)."""


class GatewayError(EventGatewayError):
    """Raised when the gateway answers with an error status, or cannot be reached.

    Attributes:
        status: the HTTP status (400, 404, 409, 429 …), or ``None`` when no answer came
            (connection refused, timeout, dropped connection).
        message: the server's ``errors[0].message``; else the body's text or the status'
            reason; for transport failures, what went wrong. Also ``str(exc)``.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"GatewayError(status={self.status!r}, message={self.message!r})"


@dataclass(frozen=True)
class EmitResult:
    """The Events API's answer to an emit.

    Attributes:
        status: 202 when the event was queued for async subscriptions; a sync
            subscription's own status otherwise.
        headers: the response headers, names in lower case.
        body: the response body (empty for a 202; a sync function's ``body``).
        duplicate: the gateway had seen this (``source``, ``id``) within its
            de-duplication window: accepted, but not delivered again.

    .. versionadded:: 0.1.0
    """

    status: int
    headers: dict[str, str]
    body: bytes
    duplicate: bool

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: the body is not JSON (``json.JSONDecodeError``).
        """
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Reply:
    """An HTTP response as the parsers see it; ``headers`` look names up case-insensitively
    when they come from httpx, and must be lower-case otherwise."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Request:
    """One HTTP request to send, exactly as built (the URL is not re-encoded)."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None = None
    retry: Retry = "unsent"
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request and the function that reads its reply (raising :class:`GatewayError`)."""

    request: Request
    parse: Callable[[Reply], T]


# -- where requests go ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A base URL to connect to, and the Host (and TLS server name) to present there.

    ``*.localhost`` names are loopback by definition (RFC 6761 §6.3), but many resolvers
    do not know them: the client connects to ``localhost`` and sends the name as Host.
    """

    base: str
    host: str | None = None
    server_name: str | None = None

    @classmethod
    def of(cls, url: str) -> Target:
        """The target of ``url`` (``http://`` added when there is no scheme).

        Raises:
            ValueError: not an http(s) URL with a valid host and port.
        """
        parts, hostname, port = split_url(url)
        path = parts.path.rstrip("/")
        if not hostname.endswith(".localhost"):
            return cls(urlunsplit((parts.scheme, _netloc(hostname, port), path, "", "")))
        base = urlunsplit((parts.scheme, _netloc("localhost", port), path, "", ""))
        server_name = hostname if parts.scheme == "https" else None
        return cls(base, host=_netloc(hostname, port), server_name=server_name)

    @property
    def url(self) -> str:
        """The base URL with the host the gateway sees (``http://acme.localhost:4000``)."""
        if self.host is None:
            return self.base
        scheme, _, rest = self.base.partition("://")
        _, slash, path = rest.partition("/")
        return f"{scheme}://{self.host}{slash}{path}"

    def request(
        self,
        method: str,
        path_and_query: str,
        headers: Mapping[str, str],
        content: bytes | None = None,
        retry: Retry = "unsent",
    ) -> Request:
        """A request to ``base + path_and_query``."""
        sent = dict(headers)
        extensions: dict[str, str] = {}
        if self.host is not None:
            sent["Host"] = self.host
        if self.server_name is not None:
            extensions["sni_hostname"] = self.server_name
        return Request(method, self.base + path_and_query, sent, content, retry, extensions)


def _netloc(hostname: str, port: int | None) -> str:
    host = f"[{hostname}]" if ":" in hostname else hostname
    return host if port is None else f"{host}:{port}"


@dataclass(frozen=True)
class Endpoints:
    """The Events and Configuration API targets of one client, its space and default emit
    path.

    Attributes:
        events: where emits go.
        config: where configuration calls go.
        space: the space of configuration calls and default paths.
        emit_path: ``/`` for a hosted-style URL (``http://<space>.<domain>``), whose host
            already names the space; ``/<space>/`` otherwise.
    """

    events: Target
    config: Target
    space: str
    emit_path: str

    @classmethod
    def derive(
        cls, url: str, config_url: str | None, space: str | None, domain: str | None = None
    ) -> Endpoints:
        """Endpoints for ``url``; without ``config_url``, the same scheme and host on port
        4001, minus the space label of a hosted-style host (``http://acme.localhost:4000``
        → ``http://localhost:4001``). The space is ``space``, else the one a hosted-style
        host names (see :func:`~eventgateway.sdk._hosts.hosted_space`), else ``default``.

        A last path segment of ``url`` naming the space (``http://localhost:4000/acme``)
        is dropped; any other path is a prefix (see :func:`~eventgateway.sdk._hosts.path_space`).

        Raises:
            ValueError: ``url`` or ``config_url`` is not an http(s) URL with a host, or the
                host and ``space``/``domain`` disagree.
        """
        url, space = path_space(url, space, domain)
        events = Target.of(url)
        parts, hostname, _ = split_url(url)
        hosted = hosted_space(hostname, space, domain)
        if config_url is None:
            config_host = hostname
            if hosted is not None:
                config_host = domain.lower().strip(".") if domain else hostname.split(".", 1)[1]
            config_url = f"{parts.scheme}://{_netloc(config_host, DEFAULT_CONFIG_PORT)}"
        if hosted is not None:
            # The original plugin stores a service's default path "/" as "/<space>/", and
            # a hosted request for "/" is routed as "/<space>/": both defaults meet there.
            return cls(events, Target.of(config_url), hosted, "/")
        space = "default" if space is None else space
        if not is_valid_space(space):
            # As the gateway and the CLI: "x y" or "a/b" would be a path no space has.
            raise ValueError(
                f"space {space!r} is not a valid space name: use 3 to 255 characters "
                'from a-z, A-Z, 0-9, ".", "-" and "_"'
            )
        return cls(events, Target.of(config_url), space, f"/{space}/")


def query(params: Mapping[str, str | int | None]) -> str:
    """``?a=1&b=2`` of the parameters that are not ``None``; ``""`` when none are."""
    present = {name: str(value) for name, value in params.items() if value is not None}
    return "?" + urlencode(present) if present else ""


def metadata_query(metadata: Mapping[str, str]) -> str:
    """The Configuration API's list filters: ``?metadata.<key>=<value>&…``."""
    return query({f"metadata.{key}": value for key, value in metadata.items()})


def segment(value: str) -> str:
    """``value`` as one path segment (``/`` and other reserved characters escaped)."""
    return quote(value, safe="")


def time_param(value: str | float | None) -> str | None:
    """A time parameter as sent: text as given, numbers as Unix seconds."""
    return value if value is None or isinstance(value, str) else repr(value)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; ``TypeError``/``ValueError`` for what JSON cannot carry."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# -- replies ---------------------------------------------------------------------------------


def error_message(reply: Reply) -> str:
    """The server's ``errors[0].message``; else the body's text; else the status' reason."""
    try:
        message = json.loads(reply.body)["errors"][0]["message"]
    except (ValueError, TypeError, LookupError):
        message = None
    if isinstance(message, str) and message:
        return message
    text = reply.body.decode("utf-8", "replace").strip()
    if text:
        return text[:_MAX_MESSAGE_CHARS]
    try:
        reason = http.HTTPStatus(reply.status).phrase
    except ValueError:
        reason = "Error"
    return f"{reply.status} {reason}"


def check(reply: Reply, *, below: int = 300) -> Reply:
    """``reply`` if its status is under ``below``.

    Raises:
        GatewayError: with the status and :func:`error_message`.
    """
    if reply.status >= below:
        raise GatewayError(error_message(reply), status=reply.status)
    return reply


def to_emit_result(reply: Reply) -> EmitResult:
    """An emit's reply: any status under 400 is a result."""
    check(reply, below=400)
    headers = {name.lower(): value for name, value in reply.headers.items()}
    duplicate = headers.get("x-eventgateway-duplicate", "").lower() == "true"
    return EmitResult(reply.status, headers, reply.body, duplicate)


def to_json(reply: Reply) -> Any:
    """The JSON body of a 2xx reply."""
    check(reply)
    if reply.status == 202 and not reply.body:
        # What the Events API answers to any request: the call went to the wrong port.
        raise GatewayError(
            "the gateway answered 202 with no body, as the Events API does: the "
            "Configuration API URL (--config-url, EG_CONFIG_URL; port 4001 by default) "
            "seems to point at the Events API",
            status=reply.status,
        )
    try:
        return json.loads(reply.body)
    except ValueError:
        raise GatewayError(
            f"the gateway answered {reply.status} with a body that is not JSON: "
            f"{reply.body[:100]!r}",
            status=reply.status,
        ) from None


def to_object(reply: Reply) -> dict[str, Any]:
    """The JSON object of a 2xx reply."""
    value = to_json(reply)
    if not isinstance(value, dict):
        raise GatewayError(
            f"the gateway answered {reply.status} with JSON that is not an object: {value!r:.100}",
            status=reply.status,
        )
    return value


def member(key: str) -> Callable[[Reply], Any]:
    """A parser returning ``body[key]`` of a 2xx JSON object reply."""

    def parse(reply: Reply) -> Any:
        body = to_object(reply)
        if key not in body:
            raise GatewayError(
                f"the gateway's {reply.status} answer has no {key!r}: {sorted(body)}",
                status=reply.status,
            )
        return body[key]

    return parse


def to_none(reply: Reply) -> None:
    """Nothing, for a 2xx reply (deletes)."""
    check(reply)


def to_exists(reply: Reply) -> bool:
    """``True`` for 2xx, ``False`` for 404."""
    if reply.status == 404:
        return False
    check(reply)
    return True


def to_alive(reply: Reply) -> bool:
    """Whether the reply is 2xx (a liveness probe never raises on a status)."""
    return 200 <= reply.status < 300
