"""``HttpProvider``: ``POST`` the event to a function's URL with the lean delivery client.

The client (``providers/http_client.py``: an ``asyncio.Protocol`` with ``httptools`` and a
keep-alive pool) replaced aiohttp here because the delivery worker spent most of its CPU
inside aiohttp (shared/research/building-blocks.md, "Outbound HTTP client"). Every error of
the client is translated here into :class:`~eventgateway.errors.ProviderError`; nothing
above sees it.

Every connection goes through the SSRF guard of ``providers/guard.py`` (a no-op for an open
:class:`~eventgateway.providers.targets.TargetPolicy`); a refused target is a non-retryable
error. Redirects are never followed: a 3xx is the function's answer, and its ``Location``
is not visited (it could point anywhere, past the guard's registration check).
"""

from __future__ import annotations

import errno
import logging
import resource

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.observability.throttled import ThrottledWarning
from eventgateway.providers.base import MAX_REPLY_BYTES, Call, Provider, Reply
from eventgateway.providers.guard import TargetRefusedError
from eventgateway.providers.http_client import HeaderError, HttpClient, InvalidURLError
from eventgateway.providers.http_pool import ReplyError, ReplyTooLargeError
from eventgateway.providers.resolver import Resolver
from eventgateway.providers.targets import TargetPolicy

__all__ = ["ASYNC_REPLY_BYTES", "HttpProvider"]

logger = logging.getLogger(__name__)

_OPEN = TargetPolicy(allow_private=True)
# An async delivery keeps only the status and an excerpt of the reply: reading up to the
# sync cap (6 MiB) for each of 1,024 attempts in flight grew the worker by gigabytes (QA).
ASYNC_REPLY_BYTES = 64 * 1024
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})
_descriptors_warning = ThrottledWarning(logger)


class HttpProvider(Provider):
    """Calls ``http`` functions: ``POST provider.url`` with the event as the body.

    Args:
        max_connections: the connection pool's size.
        policy: the SSRF guard's policy; the app passes the one its settings give (the
            default, open, is the behaviour of the open modes).
        resolver: the DNS resolver behind the guard (default: ``getaddrinfo`` in a thread).
    """

    def __init__(
        self,
        *,
        max_connections: int = 512,
        policy: TargetPolicy = _OPEN,
        resolver: Resolver | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._policy = policy
        self._resolver = resolver
        self._client: HttpClient | None = None

    async def open(self) -> None:
        self._client = HttpClient(
            max_connections=self._max_connections, policy=self._policy, resolver=self._resolver
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def call(self, function: Function, call: Call) -> Reply:
        client = self._client
        if client is None:
            await self.open()
            client = self._client
            assert client is not None
        url = function.provider.get("url")
        if not isinstance(url, str):
            raise ProviderError(
                f"function {function.function_id!r} has no provider.url", retryable=False
            )
        try:
            return await client.post(
                url,
                call.body,
                content_type=call.content_type,
                headers=call.headers,
                timeout_s=call.timeout_s,
                max_reply_bytes=MAX_REPLY_BYTES if call.sync else ASYNC_REPLY_BYTES,
            )
        except TimeoutError as exc:
            raise ProviderError(
                f"function {function.function_id!r} timed out after {call.timeout_s:g} s ({url})"
            ) from exc
        except InvalidURLError as exc:
            raise ProviderError(
                f"function {function.function_id!r} has an invalid URL {url!r}", retryable=False
            ) from exc
        except HeaderError as exc:
            raise ProviderError(
                f"function {function.function_id!r} cannot be called: {exc}", retryable=False
            ) from exc
        except TargetRefusedError as exc:
            raise ProviderError(
                f"function {function.function_id!r}: {exc.refusal.message(url)}",
                retryable=False,
            ) from exc
        except ReplyTooLargeError as exc:
            if not call.sync:
                # The function answered; an async delivery needs no more than the status
                # (the original, at most once, never read the body).
                return Reply(status=exc.status, body=b"")
            raise ProviderError(
                f"function {function.function_id!r} replied with more than {MAX_REPLY_BYTES} bytes",
                retryable=False,
                status=exc.status,
            ) from exc
        except ReplyError as exc:  # it answered, with something no client can use
            raise ProviderError(
                f"function {function.function_id!r} at {url} sent an unusable reply: {exc}"
            ) from exc
        except OSError as exc:
            if exc.errno in _OUT_OF_DESCRIPTORS:
                raise _out_of_descriptors(exc) from exc
            raise ProviderError(
                f"function {function.function_id!r} could not be reached at {url}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def _out_of_descriptors(exc: OSError) -> ProviderError:
    """This process, not the function, is at its limit: an interrupted call (made again
    in a second, no attempt counted), and a warning at most every 10 s."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    message = f"the gateway is out of file descriptors (limit {soft}): {exc.strerror}"
    _descriptors_warning.warn("%s; calls wait and are made again (raise `ulimit -n`)", message)
    return ProviderError(message, interrupted=True)
