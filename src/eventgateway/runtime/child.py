"""A worker's OS process, reaped by the runtime itself so that its peak memory is known.

asyncio's child watchers reap with ``waitpid``, which throws the dead child's resource
usage away, and ``/proc/<pid>/status`` loses ``VmHWM`` when the kernel frees the memory,
before the process is even a zombie: a worker that dies on its own (``os._exit``, a
crash, the kernel's OOM killer, Node's heap limit) would take its peak memory with it.
:class:`Child` reaps with ``os.wait4`` instead, and keeps the ``rusage``.

Reaping is race-free: a thread per child blocks in ``waitid(P_PID, pid, WEXITED |
WNOWAIT)``, which returns once the child is dead but leaves it a zombie, then hands over
to the event loop, where ``wait4`` reaps it (at once: it is a zombie) and sets
:attr:`Child.returncode` in the same step. So while ``returncode`` is ``None`` the pid,
and with it the process group id, is still ours: signalling the group cannot hit a
process that reused the id. Nothing else may reap our children; asyncio's default
watchers (threaded or pidfd) only wait for their own pids.

When the child ends, for whatever reason, its whole process group goes with it, as a
Lambda sandbox does: just before ``wait4`` (the zombie still holds the group id) the group
gets SIGKILL. Otherwise what a handler started (a ``subprocess`` ignoring SIGTERM, a
``fork`` still holding the result pipe, so that the death reads as a timeout) would outlive
its worker, unowned.

The kernel's figure (``ru_maxrss``) has a catch: Linux carries the peak of the address
space a process had *before* ``exec`` over, and a worker starts as the gateway itself
(``vfork``, which shares the gateway's memory, or ``fork``, which copies it). So the figure
is ``max(gateway's peak at spawn, worker's peak)``. :func:`child_peak_kib` keeps it only
when it is above the gateway's own peak, read just after the spawn: then it can only be
the worker's.
"""

from __future__ import annotations

import asyncio
import functools
import os
import pathlib
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

__all__ = ["Child", "child_peak_kib", "own_peak_kib"]


def own_peak_kib() -> int:
    """This process's peak resident memory (``VmHWM``), in KiB."""
    try:
        with open("/proc/self/status", "rb") as status:
            for row in status:
                if row.startswith(b"VmHWM:"):
                    return int(row.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    # Elsewhere ru_maxrss (bytes on macOS): an upper bound of the same, which is what the
    # comparison in child_peak_kib needs.
    return _kib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child_peak_kib(maxrss_kib: int, spawner_peak_kib: int) -> int | None:
    """A dead child's own peak memory from its ``ru_maxrss``, or ``None`` if it is unknown.

    ``spawner_peak_kib`` is the spawning process's peak read after the spawn. A figure
    above it cannot have been carried over from the spawner, so it is the child's; one at
    or below it may be the spawner's, and says nothing about the child.
    """
    return maxrss_kib if maxrss_kib > spawner_peak_kib else None


def _kib(maxrss: int) -> int:
    return maxrss // 1024 if sys.platform == "darwin" else maxrss


class Child:
    """A started process with piped stdout and stderr. Create with :meth:`start`."""

    def __init__(self, popen: subprocess.Popen[bytes], spawner_peak_kib: int) -> None:
        self.pid = popen.pid
        self.returncode: int | None = None
        self._popen = popen
        self._spawner_peak_kib = spawner_peak_kib
        self._maxrss_kib = 0
        self._exited = asyncio.Event()
        self._transports: list[asyncio.BaseTransport] = []
        self.stdout = asyncio.StreamReader()
        self.stderr = asyncio.StreamReader()

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        env: dict[str, str],
        cwd: pathlib.Path,
        pass_fds: tuple[int, ...],
    ) -> Child:
        """Start ``argv`` in a new session (so its process group is its own).

        Raises:
            OSError: the process could not be started.
        """
        loop = asyncio.get_running_loop()
        child = cls(_popen(argv, env, cwd, pass_fds), own_peak_kib())
        # (own_peak_kib runs after Popen returned, so after exec: the figure carried over
        # into the child is already in the past.)
        threading.Thread(
            target=child._watch, args=(loop,), name=f"eg-reap-{child.pid}", daemon=True
        ).start()
        try:
            for pipe, reader in (
                (child._popen.stdout, child.stdout),
                (child._popen.stderr, child.stderr),
            ):
                transport, _ = await loop.connect_read_pipe(
                    functools.partial(asyncio.StreamReaderProtocol, reader), pipe
                )
                child._transports.append(transport)
        except BaseException:
            child.close()
            _kill_group(child.pid)  # the watcher reaps it
            raise
        return child

    @property
    def peak_rss_kib(self) -> int | None:
        """The dead child's peak resident memory from the kernel; ``None`` while it runs,
        or when the figure may be the gateway's (see the module docstring)."""
        if self.returncode is None:
            return None
        return child_peak_kib(self._maxrss_kib, self._spawner_peak_kib)

    async def wait(self) -> int:
        """Wait until the child has exited and been reaped; its return code (``-N``: signal N)."""
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def close(self) -> None:
        """Close our ends of its stdout and stderr (a grandchild may hold them open)."""
        for transport in self._transports:
            transport.close()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        # In its own thread: block until the child is dead, without reaping it.
        try:
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
            zombie = True
        except ChildProcessError:
            zombie = False  # reaped behind our back (its pid may be reused): _reap says so
        try:
            loop.call_soon_threadsafe(functools.partial(self._reap, zombie=zombie))
        except RuntimeError:  # the loop is closed: nobody waits for it any more
            self._reap(zombie=zombie, notify=False)

    def _reap(self, *, zombie: bool, notify: bool = True) -> None:
        if zombie:  # still unreaped, so the group id is still ours: what is left of it goes
            _kill_group(self.pid)
        try:
            # Does not block: the child is a zombie, and nobody but us reaps it.
            _, status, usage = os.wait4(self.pid, 0)
        except ChildProcessError:
            self.returncode, maxrss = 255, 0  # as asyncio does when the status is lost
        else:
            self.returncode, maxrss = os.waitstatus_to_exitcode(status), usage.ru_maxrss
        # Popen must not think it still runs: its __del__ would queue the pid for a later
        # waitpid, which could reap a stranger that reused it.
        self._popen.returncode = self.returncode
        self._maxrss_kib = _kib(maxrss)
        if notify:
            self._exited.set()


def _popen(
    argv: Sequence[str], env: dict[str, str], cwd: pathlib.Path, pass_fds: tuple[int, ...]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        bufsize=0,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        pass_fds=pass_fds,
        start_new_session=True,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
