"""``AwsClients``: the AWS SDK clients of one process, made on first use and shared.

The SDK is aiobotocore (botocore on aiohttp). Importing it costs ~0.4 s and ~30 MB, so it
is imported at the first call of an AWS function, in a thread, and never by a gateway
that has none: idle memory is a benchmark target, and a stalled event loop would stall
every request the process serves. It comes with the ``aws`` extra
(``pip install 'eventgateway[aws]'``); without it AWS functions still register (the
plugin registers them), and each call fails, not retried, naming the extra.

A client is kept per (service, region, credentials, endpoint): each holds one connection
pool, reused by every call through it. Up to ``max_clients`` are kept; the least recently
used one beyond that is closed once no call uses it (rotated keys leave old clients).

Every client is made with the SDK's own retries off (one attempt per call): the
dispatcher retries by the subscription's policy, and an SDK retrying underneath would
multiply the attempts and overrun the attempt's timeout. Without ``endpoint_urls`` the
SDK finds the endpoint itself: AWS by default, or ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_<SERVICE>`` from the environment (LocalStack, a test server).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from eventgateway.errors import ProviderError

__all__ = ["AwsClients", "ClientKey"]

logger = logging.getLogger(__name__)

# Longer than any call can take: Lambda runs up to 900 s. The attempt's own timeout
# (providers/aws.py) is what ends a call; the socket timeout is only a safety net.
_READ_TIMEOUT_S: Final = 930.0
_CONNECT_TIMEOUT_S: Final = 10.0
# Data files botocore reads on a service's first client; read in a thread beforehand,
# since the client is made on the event loop.
_SHARED_DATA: Final = ("endpoints", "partitions", "_retry", "sdk-default-configuration")
_EXTRA: Final = "pip install 'eventgateway[aws]'"


@dataclass(frozen=True, slots=True)
class ClientKey:
    """What one client is for. Keys missing (``None``): the default credential chain."""

    service: str  # botocore's name: lambda, sqs, kinesis, firehose
    region: str
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


class _Entry:
    __slots__ = ("client", "closed", "retired", "users")

    def __init__(self, client: Any) -> None:
        self.client = client
        self.users = 0
        self.retired = False  # out of the cache: closed when its last call ends
        self.closed = False


class AwsClients:
    """The AWS clients of one process.

    Args:
        max_clients: clients kept at most; beyond it the least recently used is closed.
        max_connections: connections per client (per endpoint) at most.
        endpoint_urls: an endpoint per service name (``{"lambda": "http://…"}``), for
            tests; a service not named gets the SDK's endpoint (see the module doc).
    """

    def __init__(
        self,
        *,
        max_clients: int = 64,
        max_connections: int = 100,
        endpoint_urls: Mapping[str, str] | None = None,
    ) -> None:
        self._max_clients = max_clients
        self._max_connections = max_connections
        self._endpoint_urls = dict(endpoint_urls or {})
        self._entries: OrderedDict[ClientKey, _Entry] = OrderedDict()
        self._creating = asyncio.Lock()
        self._session: Any = None
        self._config: Any = None
        self._warm: set[str] = set()
        self._told_sdk_missing = False
        self._closes = 0  # close() calls so far: a client made across one is not kept

    @contextlib.asynccontextmanager
    async def use(self, key: ClientKey) -> AsyncIterator[Any]:
        """The client for ``key`` (an aiobotocore client), made if there is none yet.

        Raises:
            ProviderError: the ``aws`` extra (aiobotocore) is not installed; not retryable.
            Exception: what the SDK raises making the client (a botocore error); the
                caller translates it with the call's own errors.
        """
        entry = self._entries.get(key)
        if entry is None:
            entry = await self._create(key)
        else:
            self._entries.move_to_end(key)
        entry.users += 1
        try:
            yield entry.client
        finally:
            entry.users -= 1
            if entry.retired and entry.users == 0:
                await _close(entry)

    async def _create(self, key: ClientKey) -> _Entry:
        async with self._creating:  # one client per key, even when first calls race
            closes = self._closes
            entry = self._entries.get(key)
            if entry is not None:
                return entry
            if self._session is None:
                self._session, self._config = await self._load_sdk()
            if key.service not in self._warm:
                await asyncio.to_thread(_warm_up, self._session, key.service)
                self._warm.add(key.service)
            client = await self._session.create_client(
                key.service,
                region_name=key.region,
                endpoint_url=self._endpoint_urls.get(key.service),
                aws_access_key_id=key.access_key_id,
                aws_secret_access_key=key.secret_access_key,
                aws_session_token=key.session_token,
                config=self._config,
            ).__aenter__()
            entry = _Entry(client)
            if self._closes != closes:
                # close() ran while this client was being made: serve this call, then close
                # it, instead of keeping it in a cache that was emptied under it.
                entry.retired = True
                return entry
            self._entries[key] = entry
            logger.info(
                "AWS %s client for %s at %s (%s credentials)",
                key.service,
                key.region,
                client.meta.endpoint_url,
                "the function's" if key.access_key_id else "the default",
            )
            while len(self._entries) > self._max_clients:
                _, old = self._entries.popitem(last=False)
                old.retired = True
                if old.users == 0:
                    await _close(old)
            return entry

    async def _load_sdk(self) -> tuple[Any, Any]:
        try:
            return await asyncio.to_thread(_load_sdk, self._max_connections)
        except ProviderError as exc:
            # Every call fails the same way until the extra is installed: one line is
            # enough for the operator, the dead letters say it per delivery.
            if not self._told_sdk_missing:
                self._told_sdk_missing = True
                logger.warning("%s", exc.message)
            raise

    def __len__(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        """Close every client (one still in use when its call ends); a later :meth:`use`
        makes new ones."""
        self._closes += 1
        entries = list(self._entries.values())
        self._entries.clear()
        for entry in entries:
            entry.retired = True
            if entry.users == 0:
                await _close(entry)


def _load_sdk(max_connections: int) -> tuple[Any, Any]:
    try:
        session_module = importlib.import_module("aiobotocore.session")
        config_module = importlib.import_module("aiobotocore.config")
    except ImportError as exc:
        # Not retryable: a retry cannot install it. Tried again at each call, so a dead
        # letter redriven after the install is delivered.
        raise ProviderError(
            f"calling AWS functions needs the 'aws' extra of eventgateway, which is not "
            f"installed ({exc}): {_EXTRA}",
            retryable=False,
        ) from exc
    config = config_module.AioConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        max_pool_connections=max_connections,
        user_agent_extra="eventgateway",
    )
    return session_module.get_session(), config


def _warm_up(session: Any, service: str) -> None:
    # Loader results are cached on the session: the client made next finds them there.
    loader = session.get_component("data_loader")
    for name in _SHARED_DATA:
        loader.load_data(name)
    loader.load_service_model(service, "service-2", None)
    loader.load_service_model(service, "endpoint-rule-set-1", None)


async def _close(entry: _Entry) -> None:
    if entry.closed:
        return
    entry.closed = True
    try:
        await entry.client.__aexit__(None, None, None)
    except Exception:  # closing sockets: nothing a caller can do about a failure
        logger.exception("closing an AWS client failed")
