"""Code bundles: uploaded zips, content-addressed and extracted under the data directory.

``root/<sha256 of the zip>/`` holds the extracted code, its dependencies (``.deps/`` from
``requirements.txt`` through ``pip install --target``; ``node_modules/`` from
``package.json`` through ``npm install``) and ``.eg-bundle.json`` (the zip's size).

A bundle appears whole or not at all: it is extracted and its dependencies installed in
``root/.tmp-<sha256>-<random>/``, which is then renamed into place — one ``rename`` on one
file system, so another process (or a crash) never sees half a bundle. The same zip
uploaded again is found by its hash and nothing is redone.

An upload that would leave the disk with less free space than its reserve is refused
before it is extracted (``bundle_reserve.py``); on a single node, bundles no function
names are deleted once unused (``bundles_local.py``).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from eventgateway.errors import StoreError, ValidationError
from eventgateway.runtime.base import BundleInfo
from eventgateway.runtime.bundle_archive import (
    METADATA_NAME,
    Extracted,
    extract,
    mib,
    remove,
    too_large,
)
from eventgateway.runtime.bundle_reserve import DiskUsage, check_reserve
from eventgateway.runtime.launch import inherited_environment

__all__ = ["BundleStore", "installer_environment", "is_bundle_id"]

MIB: Final = 1024 * 1024
_BUNDLE_ID: Final = re.compile(r"[0-9a-f]{64}")
_OUTPUT_TAIL_BYTES: Final = 8192  # of an installer's output, kept for the error message
_OUTPUT_TAIL_LINES: Final = 15
# What pip and npm need to reach an index through the operator's proxy and CAs. An install
# runs the tenant's code (package.json scripts, a PEP 517 build backend), so nothing else of
# the gateway's environment (operator key, NATS credentials) may reach it.
_INSTALLER_NAMES: Final = frozenset(
    {
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
    }
)
_INSTALLER_PREFIXES: Final = ("PIP_", "NPM_CONFIG_")


def installer_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of ``pip``/``npm`` installs: a worker's base, proxies, CAs, and pip's
    and npm's own settings (``PIP_*``, ``npm_config_*``), from ``source`` (``os.environ``)."""
    source = os.environ if source is None else source
    env = inherited_environment(source)
    for name, value in source.items():
        upper = name.upper()
        if upper in _INSTALLER_NAMES or upper.startswith(_INSTALLER_PREFIXES):
            env[name] = value
    env["npm_config_update_notifier"] = "false"
    return env


def is_bundle_id(value: str) -> bool:
    """Whether ``value`` has the shape of a bundle id (64 lowercase hex digits)."""
    return _BUNDLE_ID.fullmatch(value) is not None


class BundleStore:
    """Uploaded code bundles under ``root``.

    Args:
        root: the bundles directory, usually ``<data-dir>/bundles``; created on first put.
        max_zip_bytes: the largest zip accepted (Lambda's limit for a direct upload).
        max_unzipped_bytes: the most its files may hold once extracted (Lambda's limit).
        pip: the command that runs pip for ``requirements.txt``.
        npm: the command that runs npm for ``package.json``.
        install_timeout_s: how long one dependency install may take.
        disk_usage: ``(total, used, free)`` bytes of a path's file system; an upload that
            would leave less free than the reserve (``bundle_reserve.py``) is refused.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 ``disk_usage``.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_zip_bytes: int = 50 * MIB,
        max_unzipped_bytes: int = 250 * MIB,
        pip: Sequence[str] = (sys.executable, "-m", "pip"),
        npm: str = "npm",
        install_timeout_s: float = 300.0,
        disk_usage: DiskUsage = shutil.disk_usage,
    ) -> None:
        self.root = root
        self.max_zip_bytes = max_zip_bytes
        self.max_unzipped_bytes = max_unzipped_bytes
        self._pip = tuple(pip)
        self._npm = npm
        self._install_timeout_s = install_timeout_s
        self._disk_usage = disk_usage
        self._known: dict[str, BundleInfo] = {}  # bundles are immutable: cache what was read
        self._locks: dict[str, asyncio.Lock] = {}

    async def put(self, zip_bytes: bytes) -> BundleInfo:
        """Store a zip (or find it stored already) and return its bundle.

        Raises:
            ValidationError: not a valid zip, an unsafe entry (absolute or ``..`` paths,
                symbolic links), over a size limit (status 413), or installing its
                dependencies failed (the installer's last lines are in the message).
            InsufficientStorageError: extracting it would leave the disk with less free
                space than its reserve (status 507).
            StoreError: the bundle cannot be written under ``root``.
        """
        info, _ = await self.add(zip_bytes)
        return info

    async def add(self, zip_bytes: bytes) -> tuple[BundleInfo, bool]:
        """Like :meth:`put`, and also whether this call created the bundle."""
        self.check_size(len(zip_bytes))
        bundle_id = await asyncio.to_thread(_sha256, zip_bytes)
        existing = self.get(bundle_id)
        if existing is not None:
            return existing, False
        # Concurrent uploads of one zip in this process: the second waits and finds it.
        # (Across processes the atomic rename decides; the loser discards its copy.)
        lock = self._locks.setdefault(bundle_id, asyncio.Lock())
        try:
            async with lock:
                existing = self.get(bundle_id)
                if existing is not None:
                    return existing, False
                return await self._create(bundle_id, zip_bytes)
        finally:
            if not lock.locked():
                self._locks.pop(bundle_id, None)

    def check_size(self, size: int, *, at_least: bool = False) -> None:
        """Refuse a zip of ``size`` bytes (or more, when ``at_least``) over the limit.

        The API calls it with ``Content-Length`` and while reading a body, so that an
        oversized upload is refused before it is all in memory.

        Raises:
            ValidationError: with status 413, naming the limit.
        """
        if size > self.max_zip_bytes:
            bytes_ = f"at least {size}" if at_least else str(size)
            raise too_large(
                f"bundle is {bytes_} bytes, over the {mib(self.max_zip_bytes)} limit for a "
                "zip: leave out what the function does not need"
            )

    def get(self, bundle_id: str) -> BundleInfo | None:
        """The stored bundle ``bundle_id``; ``None`` if absent or not a bundle id."""
        known = self._known.get(bundle_id)
        if known is not None:
            return known
        if not is_bundle_id(bundle_id):
            return None
        path = self.root / bundle_id
        try:
            metadata = json.loads((path / METADATA_NAME).read_bytes())
            size = int(metadata["size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, or not written by this store: not a bundle
        info = BundleInfo(bundle_id=bundle_id, size=size, path=path)
        self._known[bundle_id] = info
        return info

    def exists(self, bundle_id: str) -> bool:
        """Whether the bundle ``bundle_id`` is stored."""
        return self.get(bundle_id) is not None

    def touch(self, bundle_id: str) -> None:
        """Note that a client just looked the bundle up (a hook: nothing here).

        A store that deletes unused bundles keeps this one for its grace period again.
        """

    async def open(self) -> None:
        """Prepare the store (nothing to do for local files)."""

    async def close(self) -> None:
        """Release what :meth:`open` took."""

    async def ensure(self, bundle_id: str) -> BundleInfo | None:
        """The bundle ``bundle_id``, made available here first if it is stored elsewhere.

        Here, the same as :meth:`get`; a cluster store fetches a bundle another instance
        received. Call it before :meth:`get` when a function is about to run.
        """
        return self.get(bundle_id)

    def remove_stale(self, *, older_than_s: float = 3600.0) -> int:
        """Delete staging directories a crash left behind; returns how many.

        Call it at startup. Only directories older than ``older_than_s`` go, so that an
        upload another process is extracting right now is left alone.
        """
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.glob(".tmp-*"):
            try:
                stale = path.stat().st_mtime < cutoff
            except OSError:
                continue
            if stale:
                remove(path)
                removed += 1
        return removed

    # -- creating one ---------------------------------------------------------------------

    async def _create(self, bundle_id: str, zip_bytes: bytes) -> tuple[BundleInfo, bool]:
        final = self.root / bundle_id
        staging = self.root / f".tmp-{bundle_id}-{secrets.token_hex(4)}"
        reserve = functools.partial(
            check_reserve, self.root, zip_bytes=len(zip_bytes), disk_usage=self._disk_usage
        )
        try:
            extracted = await asyncio.to_thread(
                extract,
                zip_bytes,
                staging,
                max_unzipped_bytes=self.max_unzipped_bytes,
                before_write=reserve,
            )
            await self._install(staging, extracted)
            try:
                created = await asyncio.to_thread(_publish, staging, final, len(zip_bytes))
            except OSError as exc:
                raise StoreError(f"cannot store bundle {bundle_id} in {self.root}: {exc}") from exc
        finally:
            await asyncio.to_thread(remove, staging)  # gone after a rename; else cleanup
        info = self.get(bundle_id)
        if info is None:  # pragma: no cover - renamed a moment ago; only a deletion races
            raise StoreError(f"bundle {bundle_id} vanished from {self.root} after upload")
        return info, created

    async def _install(self, directory: Path, extracted: Extracted) -> None:
        if extracted.has_requirements:
            await self._run_installer(
                "requirements.txt",
                [
                    *self._pip,
                    "install",
                    "--target",
                    str(directory / ".deps"),
                    "-r",
                    "requirements.txt",
                    "--disable-pip-version-check",
                    "--no-input",
                ],
                directory,
            )
        if extracted.has_package_json:
            await self._run_installer(
                "package.json",
                [self._npm, "install", "--omit=dev", "--no-audit", "--no-fund"],
                directory,
            )

    async def _run_installer(self, manifest: str, argv: list[str], directory: Path) -> None:
        failed = f"installing dependencies from {manifest} failed"
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=directory,
                env=installer_environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a timeout kills npm's children too
            )
        except OSError as exc:
            raise ValidationError(
                f"{failed}: cannot run {argv[0]!r} ({exc.strerror or exc}); install it on "
                "the gateway's machine"
            ) from None
        assert process.stdout is not None
        tail = bytearray()
        try:
            async with asyncio.timeout(self._install_timeout_s):
                while chunk := await process.stdout.read(65536):
                    tail += chunk
                    del tail[:-_OUTPUT_TAIL_BYTES]  # only the end matters in an error
                await process.wait()
        except BaseException as exc:
            # Timed out or cancelled: stop the installer and whatever it started, which
            # may still hold the pipe open after the installer itself exited.
            _kill_group(process.pid)
            await process.wait()
            if isinstance(exc, TimeoutError):
                raise ValidationError(
                    f"{failed}: it took longer than {self._install_timeout_s:g} s\n"
                    f"{_last_lines(tail)}"
                ) from None
            raise
        if process.returncode != 0:
            raise ValidationError(f"{failed}: {_last_lines(tail)}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _publish(staging: Path, final: Path, size: int) -> bool:
    """Write the metadata and rename ``staging`` into place; False if another won."""
    (staging / METADATA_NAME).write_text(json.dumps({"size": size}), encoding="utf-8")
    try:
        staging.rename(final)
    except OSError:
        if (final / METADATA_NAME).is_file():
            return False  # another process stored the same zip meanwhile
        raise
    return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _last_lines(output: bytes | bytearray) -> str:
    lines = bytes(output).decode("utf-8", "replace").strip().splitlines()
    tail = collections.deque((line.rstrip() for line in lines if line.strip()), _OUTPUT_TAIL_LINES)
    return "\n".join(tail) or "(no output)"
