"""One gateway per data dir: an exclusive lock on ``<data-dir>/gateway.lock``.

Two gateways on one data dir would share its SQLite files and the delivery worker's socket:
the second one's worker unlinks and rebinds the first one's socket, and the first gateway
keeps answering 202 while nothing delivers. The lock is a ``flock``, so the kernel drops it
when its holder exits, ``kill -9`` included: a stale file never blocks a restart. The
delivery worker inherits it: after a ``kill -9`` of its gateway, the worker finishing its
deliveries still holds the data dir, and a restart waits for it rather than sharing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pathlib
import stat

from eventgateway.errors import ConfigError

__all__ = ["DataDirLock"]

LOCK_FILE = "gateway.lock"

logger = logging.getLogger(__name__)


class DataDirLock:
    """Held while a gateway uses its data dir; :meth:`release` (or exit) lets it go."""

    def __init__(self, data_dir: pathlib.Path, fd: int) -> None:
        self.data_dir = data_dir
        self._fd: int | None = fd

    @property
    def fd(self) -> int | None:
        """The locked file's descriptor (``None`` once released): a child process given it
        holds the lock too, until both have let it go."""
        return self._fd

    @classmethod
    def acquire(cls, data_dir: pathlib.Path, *, warn: bool = True) -> DataDirLock:
        """Create the data dir if needed (mode 0700) and lock it for this process.

        The stores under it hold functions' secrets (AWS keys, signing secrets, environment
        values): an existing data dir that other users may enter is warned about (``warn``).

        Raises:
            ConfigError: the directory cannot be created or used, or another gateway (its
                PID named when known) holds it.
        """
        try:
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except FileExistsError:
            message = f"the data dir {str(data_dir)!r} is a file, not a directory"
            raise ConfigError(message) from None
        except OSError as exc:
            raise ConfigError(
                f"cannot use the data dir {str(data_dir)!r}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            if holder is not None and not _alive(holder):
                raise ConfigError(
                    f"the data dir {str(data_dir)!r} is still in use by the delivery worker "
                    f"of a gateway that stopped (pid {holder}) while it finishes its "
                    "deliveries (at most --shutdown-timeout); start again once it exited"
                ) from None
            who = f"another gateway (pid {holder})" if holder else "another gateway"
            raise ConfigError(
                f"the data dir {str(data_dir)!r} is in use by {who}; stop it, or give this "
                "one its own --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        if warn:
            _warn_if_open(data_dir)
        return cls(data_dir, fd)

    def release(self) -> None:
        """Unlock; calling it again does nothing."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    # A killed gateway its parent has not reaped yet (a shell's background job) is a
    # zombie: signals reach it, but it runs nothing and holds no lock.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            return stat_file.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _warn_if_open(data_dir: pathlib.Path) -> None:
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(data_dir.stat().st_mode)
        if mode & 0o077:
            logger.warning(
                "Data dir %s may be entered by other users (mode %o), and its stores hold "
                "functions' secrets; run: chmod 700 %s",
                data_dir,
                mode,
                data_dir,
            )
