"""AuthGuard as plain ASGI: what passes through untouched, and what is refused before the app."""

from __future__ import annotations

from typing import Any

import pytest

from eventgateway.api.auth import AuthGuard, bearer_token, owns_path
from eventgateway.auth.base import Authenticator, Principal, SpaceSettings


class NoKeys(Authenticator):
    def authenticate(self, token: str | None) -> Principal | None:
        return None

    def space(self, name: str) -> SpaceSettings | None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)


async def call(guard: AuthGuard, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # pragma: no cover - the guard reads no body
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    return sent


async def test_lifespan_passes_through_and_a_websocket_without_a_key_is_closed():
    app = Recorder()
    guard = AuthGuard(app, NoKeys(), claim_policy="open")

    await call(guard, {"type": "lifespan"})
    sent = await call(guard, {"type": "websocket", "path": "/v1/spaces/acme/x", "headers": []})

    assert [scope["type"] for scope in app.scopes] == ["lifespan"]
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_an_unknown_claim_policy_is_a_programming_error():
    with pytest.raises(ValueError, match="claim_policy"):
        AuthGuard(Recorder(), NoKeys(), claim_policy="anyone")


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ([], None),
        ([(b"authorization", b"Bearer abc")], "abc"),
        ([(b"Authorization", b"bearer  abc ")], "abc"),
        ([(b"authorization", b"Basic abc")], ""),
        ([(b"authorization", b"abc")], ""),
        ([(b"x-api-key", b"abc")], None),  # the Events API's header, not the Configuration API's
    ],
)
def test_the_bearer_token_is_read_from_authorization_only(
    headers: list[tuple[bytes, bytes]], token: str | None
):
    assert bearer_token(headers) == token


@pytest.mark.parametrize(
    ("path", "owned"),
    [("/acme", True), ("/acme/", True), ("/acme/a/b", True), ("/acmex", False), ("/", False)],
)
def test_a_space_owns_its_prefix_only(path: str, owned: bool):
    assert owns_path("acme", path) is owned
