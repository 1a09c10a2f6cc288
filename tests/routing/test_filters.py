"""Subscription filters: which events a compiled pattern matches (routing/filters.py).

Events are made by the gateway's own parsers (structured 1.0 and 0.1, binary, and the
``http.request`` wrapper), so the patterns see exactly what the Events API would hand them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventgateway.events.http import HttpRequest, parse_request
from eventgateway.events.model import CloudEvent
from eventgateway.events.structured import parse_structured
from eventgateway.routing import filters
from eventgateway.routing.filter_leaf import wildcard_match
from eventgateway.routing.filters import EventView, compile_filter

DATA = {
    "plan": "pro",
    "seats": 5,
    "price": 9.5,
    "count": "5",
    "flag": True,
    "one": 1,
    "note": None,
    "tags": ["a", "b"],
    "owner": {"email": "Ann@Example.com", "roles": ["admin", "dev"]},
    "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 3}],
    "path": "a*b\\c",
    "": "blank",
    "big": 2**63 - 1,
    "huge": 2**70,
}


def structured(body: dict[str, Any]) -> CloudEvent:
    return parse_structured(json.dumps(body).encode())


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> list[CloudEvent]:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return parse_request(HttpRequest(method, path, path, b"q=1", raw, body, "gw.test"))


V1 = structured(
    {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/services/users",
        "type": "user.created",
        "subject": "users/42",
        "region": "eu-west-1",
        "tier": 2,
        "beta": True,
        "data": DATA,
    }
)
V01 = structured(
    {
        "cloudEventsVersion": "0.1",
        "eventType": "user.created",
        "eventID": "e-01",
        "source": "/legacy",
        "eventTime": "2024-01-01T00:00:00Z",
        "contentType": "application/json",
        "extensions": {"region": "eu-west-1", "trace": {"sampled": True}},
        "data": DATA,
    }
)
[HTTP] = request(
    "POST",
    "/shop/orders",
    {"Content-Type": "application/json", "X-Tenant": "acme", "X-Multi": "1"},
    json.dumps({"total": 42}).encode(),
)
[BINARY] = request(
    "POST",
    "/shop",
    {"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/s", "ce-type": "t.x"},
    b"\x00\x01",
)
EVENTS = {"v1": V1, "v01": V01, "http": HTTP, "binary": BINARY}

CASES: list[tuple[str, dict[str, Any], str, bool]] = [
    # exact values, by JSON type
    ("string", {"data": {"plan": ["pro"]}}, "v1", True),
    ("string-other", {"data": {"plan": ["free", "team"]}}, "v1", False),
    ("string-or", {"data": {"plan": ["free", "pro"]}}, "v1", True),
    ("number", {"data": {"seats": [5]}}, "v1", True),
    ("number-as-float", {"data": {"seats": [5.0]}}, "v1", True),
    ("number-not-string", {"data": {"seats": ["5"]}}, "v1", False),
    ("string-not-number", {"data": {"count": [5]}}, "v1", False),
    ("bool", {"data": {"flag": [True]}}, "v1", True),
    ("bool-not-one", {"data": {"one": [True]}}, "v1", False),
    ("one-not-bool", {"data": {"flag": [1]}}, "v1", False),
    ("null", {"data": {"note": [None]}}, "v1", True),
    ("null-not-missing", {"data": {"nothing": [None]}}, "v1", False),
    ("empty-key", {"data": {"": ["blank"]}}, "v1", True),
    ("empty-key-other", {"data": {"": ["pro"]}}, "v1", False),
    ("int64-max", {"data": {"big": [2**63 - 1]}}, "v1", True),
    ("int64-max-not-next", {"data": {"big": [{"numeric": ["<", 2**63 - 1]}]}}, "v1", False),
    # an event value beyond 64 bits is compared exactly, against a float bound
    ("huge-event-value", {"data": {"huge": [{"numeric": [">", 1.1e21, "<", 1.2e21]}]}},
     "v1", True),
    # attributes and extensions
    ("source", {"source": ["/services/users"]}, "v1", True),
    ("type-and-id", {"type": ["user.created"], "id": ["e-1"]}, "v1", True),
    ("subject", {"subject": [{"prefix": "users/"}]}, "v1", True),
    ("extension", {"region": ["eu-west-1"], "tier": [2], "beta": [True]}, "v1", True),
    ("extension-missing", {"zone": [{"exists": True}]}, "v1", False),
    ("and-fails-on-one", {"source": ["/services/users"], "data": {"plan": ["free"]}}, "v1", False),
    # prefix, suffix, equals-ignore-case, wildcard
    ("prefix", {"source": [{"prefix": "/services/"}]}, "v1", True),
    ("prefix-miss", {"source": [{"prefix": "/billing/"}]}, "v1", False),
    ("prefix-not-number", {"data": {"seats": [{"prefix": "5"}]}}, "v1", False),
    ("suffix", {"data": {"owner": {"email": [{"suffix": "@Example.com"}]}}}, "v1", True),
    ("suffix-case", {"data": {"owner": {"email": [{"suffix": "@example.com"}]}}}, "v1", False),
    ("ignore-case", {"data": {"owner": {"email": [{"equals-ignore-case": "ann@EXAMPLE.com"}]}}},
     "v1", True),
    ("wildcard", {"source": [{"wildcard": "/serv*/u*s"}]}, "v1", True),
    ("wildcard-miss", {"source": [{"wildcard": "/serv*/x*"}]}, "v1", False),
    ("wildcard-escaped-star", {"data": {"path": [{"wildcard": "a\\*b*"}]}}, "v1", True),
    ("wildcard-escaped-star-is-literal", {"data": {"path": [{"wildcard": "a\\*c*"}]}}, "v1", False),
    ("wildcard-backslash", {"data": {"path": [{"wildcard": "*\\\\c"}]}}, "v1", True),
    # anything-but
    ("anything-but", {"data": {"plan": [{"anything-but": "free"}]}}, "v1", True),
    ("anything-but-hit", {"data": {"plan": [{"anything-but": ["free", "pro"]}]}}, "v1", False),
    ("anything-but-number", {"data": {"seats": [{"anything-but": [1, 2]}]}}, "v1", True),
    ("anything-but-prefix", {"data": {"plan": [{"anything-but": {"prefix": "pr"}}]}}, "v1", False),
    ("anything-but-suffix", {"data": {"plan": [{"anything-but": {"suffix": "x"}}]}}, "v1", True),
    ("anything-but-missing", {"data": {"nothing": [{"anything-but": "x"}]}}, "v1", False),
    ("anything-but-object", {"data": {"owner": [{"anything-but": "x"}]}}, "v1", False),
    # numeric
    ("numeric-range", {"data": {"seats": [{"numeric": [">", 0, "<=", 5]}]}}, "v1", True),
    ("numeric-out", {"data": {"seats": [{"numeric": [">", 5]}]}}, "v1", False),
    ("numeric-float", {"data": {"price": [{"numeric": [">=", 9.5, "<", 10]}]}}, "v1", True),
    ("numeric-equals", {"data": {"seats": [{"numeric": ["=", 5.0]}]}}, "v1", True),
    ("numeric-not-string", {"data": {"count": [{"numeric": ["=", 5]}]}}, "v1", False),
    ("numeric-not-bool", {"data": {"flag": [{"numeric": ["=", 1]}]}}, "v1", False),
    # exists
    ("exists", {"data": {"note": [{"exists": True}]}}, "v1", True),
    ("exists-object", {"data": {"owner": [{"exists": True}]}}, "v1", True),
    ("exists-false-present", {"data": {"plan": [{"exists": False}]}}, "v1", False),
    ("exists-false-missing", {"data": {"nothing": [{"exists": False}]}}, "v1", True),
    ("exists-false-under-missing", {"data": {"a": {"b": [{"exists": False}]}}}, "v1", True),
    ("exists-false-under-scalar", {"data": {"plan": {"b": [{"exists": False}]}}}, "v1", True),
    ("missing-or-value", {"data": {"nothing": ["x", {"exists": False}]}}, "v1", True),
    ("exists-either-missing", {"data": {"nothing": [{"exists": True}, {"exists": False}]}},
     "v1", True),
    ("exists-either-present", {"data": {"plan": [{"exists": False}, {"exists": True}]}},
     "v1", True),
    # arrays in the event
    ("array-any", {"data": {"tags": ["b"]}}, "v1", True),
    ("array-none", {"data": {"tags": ["c"]}}, "v1", False),
    ("array-nested", {"data": {"owner": {"roles": [{"prefix": "ad"}]}}}, "v1", True),
    ("array-of-objects", {"data": {"items": {"sku": ["y"], "qty": [3]}}}, "v1", True),
    # one element must match the whole sub-pattern (EventBridge would mix elements)
    ("array-of-objects-one-element", {"data": {"items": {"sku": ["x"], "qty": [3]}}}, "v1", False),
    ("array-anything-but", {"data": {"tags": [{"anything-but": "a"}]}}, "v1", True),
    # $or
    ("or", {"$or": [{"region": ["us"]}, {"data": {"plan": ["pro"]}}]}, "v1", True),
    ("or-none", {"$or": [{"region": ["us"]}, {"data": {"plan": ["free"]}}]}, "v1", False),
    ("or-and-field", {"source": ["/x"], "$or": [{"region": ["eu-west-1"]}]}, "v1", False),
    ("or-nested", {"data": {"$or": [{"seats": [1]}, {"tags": ["a"]}]}}, "v1", True),
    # 0.1: the same 1.0 names; extensions members are extension attributes
    ("v01-type", {"type": ["user.created"], "id": ["e-01"]}, "v01", True),
    ("v01-time", {"time": [{"prefix": "2024-"}], "datacontenttype": ["application/json"]},
     "v01", True),
    ("v01-specversion", {"specversion": ["0.1"]}, "v01", True),
    ("v01-extension", {"region": [{"prefix": "eu-"}]}, "v01", True),
    ("v01-extensions-object", {"extensions": {"trace": {"sampled": [True]}}}, "v01", True),
    ("v01-data", {"data": {"owner": {"roles": ["dev"]}}}, "v01", True),
    ("v01-no-subject", {"subject": [{"exists": False}]}, "v01", True),
    ("v1-extensions-is-not-0.1", {"extensions": [{"exists": True}]}, "v1", False),
    # http.request: data is the request object
    ("http-method", {"data": {"method": ["POST"]}}, "http", True),
    ("http-header", {"data": {"headers": {"X-Tenant": ["acme"]}}}, "http", True),
    ("http-path", {"data": {"path": [{"prefix": "/shop/"}]}}, "http", True),
    ("http-query", {"data": {"query": {"q": ["1"]}}}, "http", True),
    ("http-body", {"data": {"body": {"total": [{"numeric": [">", 40]}]}}}, "http", True),
    ("http-transformed", {"eventgateway": {"transformed": ["true"]}}, "http", True),
    ("http-get", {"data": {"method": ["GET"]}}, "http", False),
    # binary data is not JSON: data is missing
    ("binary-data-missing", {"data": [{"exists": False}]}, "binary", True),
    ("binary-data-anything", {"data": [{"anything-but": "x"}]}, "binary", False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_pattern_matches(pattern: dict[str, Any], event: str, expected: bool):
    assert compile_filter(pattern).matches(EventView(EVENTS[event])) is expected


def test_data_that_is_a_json_string_is_matched_as_a_value():
    event = structured({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": "hi"})

    assert compile_filter({"data": ["hi"]}).matches_event(event)
    assert not compile_filter({"data": {"x": [{"exists": True}]}}).matches_event(event)


def test_a_view_decodes_data_once_for_every_filter():
    view = EventView(V1)
    first = view.data()

    assert compile_filter({"data": {"plan": ["pro"]}}).matches(view)
    assert compile_filter({"data": {"seats": [5]}}).matches(view)
    assert view.data() is first


def test_filters_without_data_do_not_decode_it(monkeypatch: pytest.MonkeyPatch):
    def decode(data: Any) -> Any:
        raise AssertionError("data was decoded")

    monkeypatch.setattr(filters, "_decode_data", decode)

    assert compile_filter({"source": ["/services/users"]}).matches(EventView(V1))
    assert compile_filter({"source": ["/x"]}).reads_data is False
    assert compile_filter({"$or": [{"data": {"a": ["b"]}}]}).reads_data is True


@pytest.mark.parametrize(
    ("parts", "text", "expected"),
    [
        (("abc",), "abc", True),
        (("abc",), "abcd", False),
        (("a", ""), "abc", True),
        (("", "c"), "abc", True),
        (("a", "c"), "ac", True),
        (("a", "b", "c"), "ac", False),
        (("ab", "ba"), "aba", False),  # the two ends may not overlap
        (("a", "b", "c"), "axxbyyc", True),
        (("a", "b", "b", "c"), "abxbc", True),
        (("", "", ""), "", True),
    ],
)
def test_wildcard_match(parts: tuple[str, ...], text: str, expected: bool):
    assert wildcard_match(parts, text) is expected


def test_wildcard_on_a_hostile_text_stays_linear():
    # As a regex (.*a.*a … .*c.*) this backtracks through every way of placing 50 a's;
    # the segment search finds each a once, then looks for c once.
    pattern = compile_filter({"s": [{"wildcard": "*a" * 50 + "*c*"}]})
    event = structured(
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "s": "a" * 10_000}
    )

    assert pattern.matches_event(event) is False
