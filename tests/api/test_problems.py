"""Errors become ``{"errors":[{"message"}]}`` responses; nothing escapes as a traceback."""

from __future__ import annotations

import builtins
import errno
import sqlite3

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from eventgateway.api.problems import (
    EXCEPTION_HANDLERS,
    error_body,
    error_response,
    response_for,
)
from eventgateway.errors import (
    ConflictError,
    NotFoundError,
    StorageFullError,
    StoreError,
    TooManyRequestsError,
    ValidationError,
    store_error,
)
from eventgateway.model.entities import Kind
from eventgateway.store.memory import MemoryStore
from tests.api.support_config import config_api, errors


class BrokenStore(MemoryStore):
    """Reads work until ``failure`` is set; then every read raises it."""

    failure: Exception | None = None

    async def get(self, kind: Kind, space: str, key: str) -> bytes | None:
        if self.failure is not None:
            raise self.failure
        return await super().get(kind, space, key)

    async def list(self, kind: Kind, space: str) -> builtins.list[bytes]:
        if self.failure is not None:
            raise self.failure
        return await super().list(kind, space)


def test_error_body_shape() -> None:
    assert error_body('say "hi"') == b'{"errors":[{"message":"say \\"hi\\""}]}\n'


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ValidationError("bad"), 400),
        (NotFoundError("gone"), 404),
        (ConflictError("dup already exists"), 409),
        (StoreError("disk full"), 500),
    ],
)
def test_response_for_known_errors(exc: Exception, status: int) -> None:
    response = response_for(exc)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.body == error_body(str(exc))


def test_too_many_requests_carries_retry_after() -> None:
    response = response_for(TooManyRequestsError("slow down", retry_after_s=7))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_unexpected_error_is_a_generic_500() -> None:
    response = response_for(RuntimeError("secret internals"))

    assert response.status_code == 500
    assert response.body == error_body("Internal Server Error")


def test_error_response_with_headers() -> None:
    response = error_response(503, "Service Unavailable", headers={"Retry-After": "1"})

    assert (response.status_code, response.headers["retry-after"]) == (503, "1")


async def test_store_failure_is_500_with_its_text() -> None:
    store = BrokenStore()
    async with config_api(store) as api:
        store.failure = StoreError("SQLite store failed to read: disk I/O error")

        response = await api.http.get(api.url("functions", "f1"))

    assert response.status_code == 500
    assert errors(response) == "SQLite store failed to read: disk I/O error"


async def test_unexpected_failure_is_a_json_500_and_still_counted() -> None:
    store = BrokenStore()
    async with config_api(store) as api:
        store.failure = RuntimeError("boom")

        response = await api.http.get(api.url("eventtypes"))
        count = api.metrics.registry.get_sample_value(
            "eventgateway_config_requests_total",
            {"space": "default", "resource": "eventtype", "operation": "list"},
        )

    assert response.status_code == 500
    assert errors(response) == "Internal Server Error"
    assert count == 1


async def test_exception_handlers_answer_in_a_plain_starlette_app() -> None:
    async def conflict(request: Request) -> None:
        raise ConflictError('Subscription "x" already exists.')

    app = Starlette(routes=[Route("/c", conflict)], exception_handlers=dict(EXCEPTION_HANDLERS))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        response = await client.get("/c")

    assert response.status_code == 409
    assert errors(response) == 'Subscription "x" already exists.'


async def test_unexpected_error_in_a_plain_starlette_app_is_json_not_html() -> None:
    async def boom(request: Request) -> None:
        raise RuntimeError("secret internals")

    app = Starlette(routes=[Route("/b", boom)], exception_handlers=dict(EXCEPTION_HANDLERS))
    # Starlette re-raises after answering (for server logs); the client sees the answer.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/b")

    assert response.status_code == 500
    assert errors(response) == "Internal Server Error"


async def test_an_unreadable_stored_value_is_a_500_with_the_reason() -> None:
    async with config_api() as api:
        await api.store.create("functions", "default", "f1", b"{not json")

        response = await api.http.get(api.url("functions", "f1"))

    assert response.status_code == 500
    assert errors(response).startswith("a stored functions value cannot be read: ")


def test_a_full_disk_is_507_with_the_cause_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # QA: a configuration write on a full disk was a 500, logged with a traceback.
    exc = StorageFullError("SQLite store failed to create functions acme/f2: disk is full")

    response = response_for(exc)

    assert response.status_code == 507
    assert response.body == error_body(
        "The gateway's disk is full: SQLite store failed to create functions acme/f2: disk is full"
    )
    assert [(r.levelname, r.exc_info) for r in caplog.records] == [("WARNING", None)]


def test_a_store_error_names_a_file_without_its_directories() -> None:
    # QA: a replay on a full disk told the API client the server's path to queue.db.
    exc = StoreError("the SQLite queue /srv/eg/data/queue.db failed to commit: I/O error")

    response = response_for(exc)

    assert response.status_code == 500
    assert response.body == error_body("the SQLite queue queue.db failed to commit: I/O error")


@pytest.mark.parametrize(
    ("cause", "full"),
    [
        (sqlite3.OperationalError("database or disk is full"), True),
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (sqlite3.OperationalError("database is locked"), False),
    ],
)
def test_store_error_tells_a_full_disk_apart(cause: Exception, full: bool) -> None:
    if isinstance(cause, sqlite3.OperationalError):
        cause.sqlite_errorcode = sqlite3.SQLITE_FULL if full else sqlite3.SQLITE_BUSY

    error = store_error("writing", cause)

    assert isinstance(error, StorageFullError) is full
    assert error.__cause__ is cause
