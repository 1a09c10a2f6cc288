"""Supervises the dispatcher child process of ``eg serve --dispatch process``.

The child is restarted with a growing delay (up to 30 s) when it exits unexpectedly; its
unacked deliveries are leased again once their lease expires, so nothing is lost. On
shutdown it gets SIGTERM (it drains its in-flight deliveries) and, past the timeout,
SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import signal
import sys

from eventgateway.settings import Settings
from eventgateway.worker import settings_to_json

__all__ = ["DispatcherProcess"]

logger = logging.getLogger(__name__)

_MAX_RESTART_DELAY_S = 30.0


class DispatcherProcess:
    """One supervised ``python -m eventgateway _dispatch`` child."""

    def __init__(self, settings: Settings, notify_path: pathlib.Path) -> None:
        self._settings = settings
        self._notify_path = notify_path
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start the child and keep it running until :meth:`stop`."""
        await self._spawn()
        self._task = asyncio.create_task(self._supervise(), name="dispatcher-supervisor")

    async def _spawn(self) -> None:
        env = {**os.environ, "EG_WORKER_SETTINGS": settings_to_json(self._settings)}
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "eventgateway",
            "_dispatch",
            "--notify-socket",
            str(self._notify_path),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
        )
        logger.info("dispatcher process started (pid %d)", self._proc.pid)

    async def _supervise(self) -> None:
        delay_s = 0.5
        while True:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            logger.error(
                "dispatcher process %d exited with %s; restarting in %.1f s",
                self._proc.pid,
                code,
                delay_s,
            )
            await asyncio.sleep(delay_s)  # back-off before a restart, not a poll
            delay_s = min(delay_s * 2, _MAX_RESTART_DELAY_S)
            self.restarts += 1
            await self._spawn()

    async def stop(self, timeout_s: float) -> None:
        """SIGTERM the child, wait up to ``timeout_s``, then SIGKILL it."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                logger.warning("dispatcher process %d did not stop; killing it", proc.pid)
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
