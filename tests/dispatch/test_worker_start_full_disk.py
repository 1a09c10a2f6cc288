"""A delivery worker that starts on a full disk dispatches anyway: handing back its
predecessor's leases is the first write, and its failure used to end the worker, restart
after restart with a traceback each time (QA); the leases run out by themselves."""

from __future__ import annotations

import asyncio
import logging
import pathlib

import pytest

from eventgateway.call_worker import QueueOptions
from eventgateway.dispatch.worker_queue import dispatching
from eventgateway.errors import StorageFullError
from eventgateway.providers.http import HttpProvider
from eventgateway.queue.sqlite import SqliteQueue


async def test_a_failed_hand_back_of_old_leases_is_a_warning(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def full(self: SqliteQueue) -> int:
        raise StorageFullError("the SQLite queue queue.db failed to commit: disk is full")

    monkeypatch.setattr(SqliteQueue, "release_leases", full)
    options = QueueOptions(tmp_path / "w.sock", tmp_path / "queue.db", shutdown_timeout_s=1.0)
    provider = HttpProvider()
    await provider.open()
    try:
        with caplog.at_level(logging.WARNING):
            async with dispatching(options, provider) as task:
                await asyncio.sleep(0)  # the dispatcher runs
                assert not task.done()
                assert (tmp_path / "w.sock").exists()
    finally:
        await provider.close()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "could not hand back the leases of a previous worker: "
        "the SQLite queue queue.db failed to commit: disk is full"
    ]
    assert warnings[0].exc_info is None
