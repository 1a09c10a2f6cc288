"""``NatsStore``: the cluster :class:`~eventgateway.store.base.ConfigStore` on NATS JetStream KV.

Every gateway instance of a deployment opens the same KV bucket, ``<prefix>-config``. A
KV bucket is a stream with one subject per key, so the stream sequence of each write is
exactly the store-wide, increasing revision the interface asks for, and ``watch`` is an
ordered consumer starting after a sequence. Writes are compare-and-set on the key's last
sequence (``Nats-Expected-Last-Subject-Sequence``): two instances never silently
overwrite each other, and an update never resurrects a key deleted meanwhile.

Deletes leave a delete marker rather than purging, and the bucket keeps up to
:data:`HISTORY` revisions per key, so a watch started before a burst of writes still sees
each of them. A watcher that falls more than that many writes behind on one key skips
the oldest, but still ends on the current value.

nats errors, timeouts and connection loss are translated into
:class:`~eventgateway.errors.StoreError` here; nothing above this module sees them.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Final

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from eventgateway.errors import ConflictError, NotFoundError, StoreError, ValidationError
from eventgateway.model.entities import Kind
from eventgateway.store._nats_feed import KV_OPERATION, follow, is_marker, scan, wake_watcher
from eventgateway.store._nats_keys import (
    MAX_SUBJECT_BYTES,
    decode_key,
    encode_key,
    fits,
    kind_filter,
    space_filter,
    valid_prefix,
)
from eventgateway.store.base import Change, ConfigStore, Entry, Snapshot

__all__ = ["DEFAULT_PREFIX", "HISTORY", "NatsStore"]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX: Final = "eventgateway"
HISTORY: Final = 64  # the most a KV bucket keeps per key
_EXPECTED_LAST: Final = "Nats-Expected-Last-Subject-Sequence"
_WRONG_LAST_SEQUENCE: Final = frozenset({10071, 10164})
_WATCH_BUFFER: Final = 256
_CLOSE_TIMEOUT_S: Final = 5.0
_CONNECT_ATTEMPTS: Final = 2  # per server, when the store opens


class _WrongLastSequence(Exception):
    """The key moved on since the revision a write expected."""


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn nats errors, timeouts and socket errors into :class:`StoreError`."""
    try:
        yield
    except nats.js.errors.APIError as exc:
        if exc.err_code in _WRONG_LAST_SEQUENCE:
            raise _WrongLastSequence from exc
        raise StoreError(f"NATS store failed to {action}: {exc}") from exc
    except nats.errors.NoServersError as exc:
        message = "no server answered (is nats-server running, with JetStream: -js?)"
        raise StoreError(f"NATS store failed to {action}: {message}") from exc
    except (nats.errors.Error, TimeoutError, OSError) as exc:
        raise StoreError(f"NATS store failed to {action}: {exc!r}") from exc


class NatsStore(ConfigStore):
    """A :class:`ConfigStore` in the NATS JetStream KV bucket ``<prefix>-config``.

    Args:
        servers: NATS URLs (``nats://host:4222``); the client fails over between them.
        prefix: starts every bucket, stream and consumer name, so several deployments
            (or parallel test runs) can share one NATS.
        request_timeout_s: how long one JetStream request may take.
        scan_timeout_s: how long a list or snapshot may take to read the bucket.
        replicas: the bucket's replicas when this store creates it; use 3 in a cluster.

    Raises:
        ValueError: ``prefix`` holds characters a bucket name cannot.

    Example::

        store = NatsStore(["nats://127.0.0.1:4222"], prefix="eventgateway")
        await store.open()
        try:
            ...
        finally:
            await store.close()

    .. versionadded:: 0.2.0
    """

    on_lost: Callable[[str], None] | None = None  # its client closed for good (fatal.py)

    def __init__(
        self,
        servers: Sequence[str],
        *,
        prefix: str = DEFAULT_PREFIX,
        request_timeout_s: float = 5.0,
        scan_timeout_s: float = 30.0,
        replicas: int = 1,
    ) -> None:
        if not valid_prefix(prefix):
            raise ValueError(f"prefix {prefix!r}: use 1 to 64 of A-Z, a-z, 0-9, '-' and '_'")
        self.servers = list(servers)
        self.prefix = prefix
        self.bucket = f"{prefix}-config"
        self._stream = f"KV_{self.bucket}"
        self._subjects = f"$KV.{self.bucket}."
        self._request_timeout_s = request_timeout_s
        self._scan_timeout_s = scan_timeout_s
        self._replicas = replicas
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._closed = False
        self._watchers: set[asyncio.Queue[Change | None]] = set()

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (reconnecting forever after that) and create the bucket if it is missing.

        Raises:
            StoreError: no server answered (each is tried a few times), or the bucket
                cannot be created.
        """
        if self._nc is not None:
            return
        with _translated(f"connect to {', '.join(self.servers)}"):
            nc = await nats.connect(
                servers=self.servers,
                name=f"eventgateway {self.prefix}",
                connect_timeout=max(1, round(self._request_timeout_s)),
                allow_reconnect=True,
                # Bounded at start, so a wrong URL fails `eg serve` instead of hanging it ...
                max_reconnect_attempts=_CONNECT_ATTEMPTS,
                reconnect_time_wait=1,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
                closed_cb=self._on_closed,
            )
        # ... and endless once connected: a running gateway rides out a NATS restart. The
        # client reads this option on every reconnect.
        nc.options["max_reconnect_attempts"] = -1
        try:
            js = nc.jetstream(timeout=self._request_timeout_s)
            with _translated(f"open the KV bucket {self.bucket}"):
                try:
                    await js.create_key_value(
                        bucket=self.bucket, history=HISTORY, direct=True, replicas=self._replicas
                    )
                except nats.js.errors.BadRequestError:
                    # Made earlier with other settings (say by hand): use it as it is.
                    await js.key_value(self.bucket)
        except BaseException:
            await nc.close()
            raise
        self._nc, self._js = nc, js

    def health(self) -> str | None:
        """``None`` while connected to NATS, else why not (for ``GET /v1/ready``)."""
        nc = self._nc
        if nc is None or not nc.is_connected:
            return f"the configuration store's NATS connection (bucket {self.bucket}) is down"
        return None

    async def _on_error(self, exc: Exception) -> None:
        logger.warning("NATS connection error (store %s): %r", self.bucket, exc)

    async def _on_disconnected(self) -> None:
        nc = self._nc  # our own close, or nats-py's for good (fatal.py), disconnects too
        if not self._closed and nc is not None and not nc.is_closed:
            logger.warning("NATS disconnected (store %s); reconnecting", self.bucket)

    async def _on_reconnected(self) -> None:
        logger.info("NATS reconnected (store %s)", self.bucket)

    async def _on_closed(self) -> None:
        nc = self._nc
        if not self._closed and nc is not None and self.on_lost is not None:
            self.on_lost(
                f"the configuration store's NATS connection (bucket {self.bucket}) was "
                f"closed for good ({nc.last_error})"
            )

    async def close(self) -> None:
        """End every watch and close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for queue in self._watchers:
            wake_watcher(queue)
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            try:
                async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                    await nc.close()
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                logger.warning("closing the NATS connection failed: %r", exc)

    def _jetstream(self) -> JetStreamContext:
        if self._closed:
            raise StoreError(f"the NATS store {self.bucket} is closed")
        if self._js is None:
            raise StoreError(f"the NATS store {self.bucket} is not open; call open() first")
        return self._js

    # -- reads --------------------------------------------------------------------------

    async def _last(self, kv_key: str) -> tuple[int, bytes | None] | None:
        """The key's last revision and value (``None`` for a delete marker), or ``None``."""
        js = self._jetstream()
        if not fits(kv_key):
            return None  # no write made a key this long (see _publish)
        with _translated(f"read {kv_key}"):
            try:
                msg = await js.get_msg(self._stream, subject=self._subjects + kv_key, direct=True)
            except nats.js.errors.NotFoundError:
                return None
        assert msg.seq is not None
        if is_marker(msg.headers):
            return msg.seq, None
        return msg.seq, msg.data or b""

    async def get(self, kind: Kind, space: str, key: str) -> bytes | None:
        """The value under (kind, space, key), or ``None``."""
        last = await self._last(encode_key(kind, space, key))
        return None if last is None else last[1]

    async def _scan(self, kv_pattern: str) -> tuple[builtins.list[Entry], int]:
        js = self._jetstream()
        with _translated(f"read {kv_pattern}"):
            messages = await scan(
                js, self._stream, self._subjects + kv_pattern, self._scan_timeout_s
            )
        latest: dict[tuple[Kind, str, str], Entry | None] = {}
        revision = 0
        for msg in messages:
            change = self._change(msg)
            if change is None:
                continue
            revision = max(revision, change.revision)
            ident = (change.kind, change.space, change.key)
            if change.value is None:
                latest[ident] = None
            else:
                latest[ident] = Entry(*ident, change.value, change.revision)
        return [entry for entry in latest.values() if entry is not None], revision

    async def list(self, kind: Kind, space: str) -> builtins.list[bytes]:
        """All values of one kind in one space, keys in descending byte order."""
        entries, _ = await self._scan(space_filter(kind, space))
        entries.sort(key=lambda e: e.key.encode(), reverse=True)
        return [e.value for e in entries]

    async def list_all(self, kind: Kind) -> builtins.list[bytes]:
        """All values of one kind in every space, ordered by (space, key)."""
        entries, _ = await self._scan(kind_filter(kind))
        entries.sort(key=lambda e: (e.space.encode(), e.key.encode()))
        return [e.value for e in entries]

    async def head(self) -> int:
        """The bucket's last sequence: the revision of the last write (one request)."""
        js = self._jetstream()
        with _translated(f"read the head of {self.bucket}"):
            info = await js.stream_info(self._stream)
        return int(info.state.last_seq)

    async def snapshot(self) -> Snapshot:
        """Every entry, consistent at the revision of the last write the read saw."""
        entries, revision = await self._scan(">")
        entries.sort(key=lambda e: (e.kind, e.space, e.key))
        return Snapshot(entries=entries, revision=revision)

    # -- writes -------------------------------------------------------------------------

    async def _publish(self, kv_key: str, value: bytes | None, expected: int) -> int:
        js = self._jetstream()
        if not fits(kv_key):
            raise ValidationError(
                f"the name is too long to store: its key in the NATS configuration store is "
                f"{len(kv_key)} bytes, at most {MAX_SUBJECT_BYTES} (a shorter path or id)"
            )
        headers = {_EXPECTED_LAST: str(expected)}
        if value is None:
            headers[KV_OPERATION] = "DEL"
        with _translated(f"write {kv_key}"):
            ack = await js.publish(
                self._subjects + kv_key, value or b"", stream=self._stream, headers=headers
            )
        return ack.seq

    async def create(self, kind: Kind, space: str, key: str, value: bytes) -> int:
        """Store a new value; :class:`ConflictError` if the key exists."""
        kv_key, name = encode_key(kind, space, key), f'{kind} "{space}/{key}"'
        try:
            return await self._publish(kv_key, value, 0)
        except _WrongLastSequence:
            pass
        # The subject has messages: a live value, or the marker of an earlier delete.
        last = await self._last(kv_key)
        if last is None or last[1] is None:
            try:
                return await self._publish(kv_key, value, 0 if last is None else last[0])
            except _WrongLastSequence:
                pass  # another instance wrote it meanwhile
        raise ConflictError(f"{name} already exists.")

    async def _replace(self, kind: Kind, space: str, key: str, value: bytes | None) -> int:
        kv_key, name = encode_key(kind, space, key), f'{kind} "{space}/{key}"'
        last = await self._last(kv_key)
        if last is None or last[1] is None:
            raise NotFoundError(f"{name} not found.")
        try:
            return await self._publish(kv_key, value, last[0])
        except _WrongLastSequence:
            pass
        current = await self._last(kv_key)
        if current is None or current[1] is None:
            raise NotFoundError(f"{name} not found.")
        raise ConflictError(
            f"{name} was changed by another writer at the same time; read it again and retry."
        )

    async def update(self, kind: Kind, space: str, key: str, value: bytes) -> int:
        """Replace a value; :class:`NotFoundError` if the key is absent.

        Raises:
            ConflictError: another instance wrote the key between this call's read and
                write (compare-and-set on the key's revision); nothing was written.
        """
        return await self._replace(kind, space, key, value)

    async def delete(self, kind: Kind, space: str, key: str) -> int:
        """Remove a value; :class:`NotFoundError` if the key is absent.

        Raises:
            ConflictError: another instance wrote the key at the same time; nothing was
                deleted.
        """
        return await self._replace(kind, space, key, None)

    # -- watch --------------------------------------------------------------------------

    def _change(self, msg: Msg) -> Change | None:
        decoded = decode_key(msg.subject.removeprefix(self._subjects))
        if decoded is None:
            logger.debug("ignoring foreign key %r in bucket %s", msg.subject, self.bucket)
            return None
        value = None if is_marker(msg.headers) else msg.data
        return Change(*decoded, value, msg.metadata.sequence.stream)

    async def watch(self, after_revision: int) -> AsyncIterator[Change]:
        """Changes above ``after_revision`` in order, then new ones as they come, until close."""
        if self._closed:
            return
        js = self._jetstream()
        queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize=_WATCH_BUFFER)

        async def on_message(msg: Msg) -> None:
            change = self._change(msg)
            if change is not None and not self._closed:
                await queue.put(change)

        self._watchers.add(queue)
        try:
            with _translated(f"watch {self.bucket}"):
                sub = await follow(
                    js, self._stream, self._subjects + ">", after_revision, on_message
                )
            try:
                while (change := await queue.get()) is not None:
                    yield change
            finally:
                if not self._closed:
                    with suppress(nats.errors.Error, TimeoutError, OSError):
                        await sub.unsubscribe()
        finally:
            self._watchers.discard(queue)
