"""The disk reserve a bundle upload must leave free.

The file system under ``<data-dir>`` also holds the durable event queue: filled by bundles,
it would make the gateway refuse events. A zip of a few hundred kilobytes may unzip to the
250 MiB limit, so an upload is refused (507) before it is extracted when the file system
would be left with less than :func:`reserve_bytes` free.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from eventgateway.errors import InsufficientStorageError

__all__ = ["DiskUsage", "check_reserve", "reserve_bytes"]

GIB: Final = 1024 * 1024 * 1024
_RESERVE_SHARE: Final = 0.05

DiskUsage = Callable[[Path], tuple[int, int, int]]
"""``shutil.disk_usage``'s shape: ``(total, used, free)`` bytes of a path's file system."""


def reserve_bytes(total_bytes: int) -> int:
    """The free space an upload must leave: 5 % of the file system, at most 1 GiB."""
    return min(GIB, int(total_bytes * _RESERVE_SHARE))


def check_reserve(
    root: Path, unzipped_bytes: int, *, zip_bytes: int, disk_usage: DiskUsage
) -> None:
    """Refuse a bundle that would leave ``root``'s file system below :func:`reserve_bytes`.

    Its dependencies (``requirements.txt``, ``package.json``) are not known yet, so the
    reserve is also what they may take.

    Raises:
        InsufficientStorageError: free space minus ``unzipped_bytes`` minus ``zip_bytes`` is
            under the reserve (507); the message names every figure.
    """
    path = root
    while not path.exists() and path != path.parent:  # root is created by the first upload
        path = path.parent
    total, _, free = disk_usage(path)
    reserve = reserve_bytes(total)
    if free - unzipped_bytes - zip_bytes >= reserve:
        return
    raise InsufficientStorageError(
        f"Not enough disk space for this bundle: it unzips to {_size(unzipped_bytes)} (the zip "
        f"is {_size(zip_bytes)}), and the gateway's disk has {_size(free)} free of "
        f"{_size(total)}, but keeps {_size(reserve)} free for events (5 % of the disk, at most "
        "1 GiB). Upload a smaller bundle, or ask the operator to free disk space (bundles no "
        "function names are deleted after a grace period)."
    )


def _size(size: int) -> str:
    """``6000`` → ``"5.9 KiB"``: bytes, KiB, MiB or GiB, whichever reads best."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
