"""Deterministic IDs: the values the original (and the SDK's own tests) pin."""

from __future__ import annotations

import base64

import pytest

from eventgateway.model.ids import cors_id, path_escape, subscription_id


def test_async_subscription_id_matches_the_contract_example() -> None:
    sid = subscription_id(
        type="async", event_type="test.event", function_id="test", path="/", method="POST"
    )

    assert sid == "YXN5bmMsdGVzdC5ldmVudCx0ZXN0LCUyRixQT1NU"


def test_sync_subscription_id_leaves_the_function_out() -> None:
    one = subscription_id(
        type="sync", event_type="http.request", function_id="a", path="/users/:id", method="GET"
    )
    other = subscription_id(
        type="sync", event_type="http.request", function_id="b", path="/users/:id", method="GET"
    )

    assert one == other
    assert base64.urlsafe_b64decode(one + "==") == b"sync,http.request,%2Fusers%2F:id,GET"


def test_subscription_id_is_unpadded() -> None:
    sid = subscription_id(type="async", event_type="e", function_id="f", path="/", method="GET")

    assert "=" not in sid
    assert base64.urlsafe_b64decode(sid + "=" * (-len(sid) % 4)) == b"async,e,f,%2F,GET"


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        ("/", "%2F"),
        ("/users/:id", "%2Fusers%2F:id"),
        ("/files/*path", "%2Ffiles%2F%2Apath"),
        ("/a b", "%2Fa%20b"),
        ("/x;y,z?q", "%2Fx%3By%2Cz%3Fq"),
        ("/$&+=@~-_.", "%2F$&+=@~-_."),
        ("/é", "%2F%C3%A9"),
        ("/100%", "%2F100%25"),
    ],
)
def test_path_escape_follows_go_url_path_escape(path: str, escaped: str) -> None:
    assert path_escape(path) == escaped


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [("GET", "/test", "GET%2Ftest"), ("GET", "/users/:id", "GET%2Fusers%2F:id")],
)
def test_cors_id(method: str, path: str, expected: str) -> None:
    assert cors_id(method, path) == expected
