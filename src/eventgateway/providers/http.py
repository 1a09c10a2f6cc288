"""``HttpProvider``: ``POST`` the event to a function's URL with a shared aiohttp session.

aiohttp rather than httpx: at 64 concurrent deliveries httpx was ~20x slower on this machine
kind (shared/research/building-blocks.md). Every aiohttp and socket exception is translated
here into :class:`~eventgateway.errors.ProviderError`; nothing above sees aiohttp.

Every connection goes through the SSRF guard of ``providers/guard.py`` (a no-op for an open
:class:`~eventgateway.providers.targets.TargetPolicy`); a refused target is a non-retryable
error. Redirects are never followed: a 3xx is the function's answer, and its ``Location``
is not visited (it could point anywhere, past the guard's registration check).
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.abc import AbstractResolver

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call, Provider, Reply
from eventgateway.providers.guard import (
    GuardedResolver,
    find_refusal,
    guarded_socket_factory,
    url_host,
)
from eventgateway.providers.targets import TargetPolicy

__all__ = ["HttpProvider"]

_USER_AGENT = "eventgateway"
_MAX_REPLY_BYTES = 6 * 1024 * 1024


_OPEN = TargetPolicy(allow_private=True)


class HttpProvider(Provider):
    """Calls ``http`` functions: ``POST provider.url`` with the event as the body.

    Args:
        max_connections: the connection pool's size.
        policy: the SSRF guard's policy; the app passes the one its settings give (the
            default, open, is the behaviour of the open modes).
        resolver: the DNS resolver behind the guard (default: aiohttp's threaded one).
    """

    def __init__(
        self,
        *,
        max_connections: int = 512,
        policy: TargetPolicy = _OPEN,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._max_connections = max_connections
        self._policy = policy
        self._inner_resolver = resolver
        self._resolver: GuardedResolver | None = None
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._resolver = GuardedResolver(self._policy, self._inner_resolver)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            ttl_dns_cache=60,
            resolver=self._resolver,
            socket_factory=guarded_socket_factory(self._policy),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": _USER_AGENT},
            skip_auto_headers=("Accept-Encoding",),
            auto_decompress=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()  # the connector does not own a resolver it was given
            self._resolver = None

    async def call(self, function: Function, call: Call) -> Reply:
        if self._session is None:
            await self.open()
        assert self._session is not None
        url = function.provider.get("url")
        if not isinstance(url, str):
            raise ProviderError(
                f"function {function.function_id!r} has no provider.url", retryable=False
            )
        self._refuse_literal(function, url)
        headers = {"Content-Type": call.content_type}
        headers.update(call.headers)
        try:
            async with self._session.post(
                url,
                data=call.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=call.timeout_s),
                allow_redirects=False,
            ) as response:
                body = await _read_capped(response, function.function_id)
                return Reply(
                    status=response.status,
                    body=body,
                    headers=tuple((str(name), value) for name, value in response.headers.items()),
                )
        except TimeoutError as exc:
            raise ProviderError(
                f"function {function.function_id!r} timed out after {call.timeout_s:g} s ({url})"
            ) from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise ProviderError(
                f"function {function.function_id!r} has an invalid URL {url!r}", retryable=False
            ) from exc
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            refused = find_refusal(exc)
            if refused is not None:
                raise ProviderError(
                    f"function {function.function_id!r}: {refused.refusal.message(url)}",
                    retryable=False,
                ) from exc
            raise ProviderError(
                f"function {function.function_id!r} could not be reached at {url}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _refuse_literal(self, function: Function, url: str) -> None:
        # aiohttp connects to an IP literal without asking the resolver: judge it here.
        if self._policy.is_open:
            return
        host = url_host(url)
        refusal = None if host is None else self._policy.check_text(host)
        if refusal is not None:
            raise ProviderError(
                f"function {function.function_id!r}: {refusal.message(url)}", retryable=False
            )


async def _read_capped(response: aiohttp.ClientResponse, function_id: str) -> bytes:
    # StreamReader.read(n) returns what is buffered, not the whole body: read to EOF.
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > _MAX_REPLY_BYTES:
            raise ProviderError(
                f"function {function_id!r} replied with more than {_MAX_REPLY_BYTES} bytes",
                retryable=False,
                status=response.status,
            )
        chunks.append(chunk)
    return b"".join(chunks)
