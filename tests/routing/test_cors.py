"""CORS decisions with rs/cors 1.2 behaviour (contract §2.7)."""

from __future__ import annotations

import pytest

from eventgateway.model.entities import Cors
from eventgateway.routing.cors import (
    actual_headers,
    canonical_header_key,
    is_preflight,
    origin_allowed,
    parse_header_list,
    preflight_headers,
)

VARY_PREFLIGHT = [
    ("Vary", "Origin"),
    ("Vary", "Access-Control-Request-Method"),
    ("Vary", "Access-Control-Request-Headers"),
]


def config(
    *,
    origins: list[str] | None = None,
    methods: list[str] | None = None,
    headers: list[str] | None = None,
    credentials: bool = False,
) -> Cors:
    """A configuration with the config API's defaults unless given."""
    return Cors(
        space="s",
        cors_id="GET%2Fx",
        method="GET",
        path="/x",
        allowed_origins=["*"] if origins is None else origins,
        allowed_methods=["HEAD", "GET", "POST"] if methods is None else methods,
        allowed_headers=["Origin", "Accept", "Content-Type"] if headers is None else headers,
        allow_credentials=credentials,
    )


# --- is_preflight ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        pytest.param("OPTIONS", {"access-control-request-method": "GET"}, True, id="preflight"),
        pytest.param("OPTIONS", {}, False, id="options-without-request-method"),
        pytest.param("OPTIONS", {"access-control-request-method": ""}, False, id="empty-value"),
        pytest.param("GET", {"access-control-request-method": "GET"}, False, id="not-options"),
        pytest.param("options", {"access-control-request-method": "GET"}, False, id="exact"),
    ],
)
def test_is_preflight(method: str, headers: dict[str, str], expected: bool) -> None:
    assert is_preflight(method, headers) is expected


# --- origins ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origins", "origin", "expected"),
    [
        pytest.param(["*"], "http://anything", True, id="star"),
        pytest.param([], "http://anything", True, id="empty-list-allows-all"),
        pytest.param(["http://a.com", "*"], "http://b.com", True, id="star-anywhere"),
        pytest.param(["http://a.com"], "http://a.com", True, id="exact"),
        pytest.param(["http://a.com"], "HTTP://A.COM", True, id="case-insensitive-origin"),
        pytest.param(["HTTP://A.com"], "http://a.COM", True, id="case-insensitive-pattern"),
        pytest.param(["http://a.com"], "http://a.com:8080", False, id="port-differs"),
        pytest.param(["http://a.com"], "https://a.com", False, id="scheme-differs"),
        pytest.param(["http://*.example.com"], "http://api.example.com", True, id="wildcard"),
        pytest.param(["http://*.example.com"], "http://a.b.example.com", True, id="wildcard-deep"),
        pytest.param(
            ["http://*.example.com"], "http://example.com", False, id="wildcard-needs-dot"
        ),
        pytest.param(
            ["http://*.example.com"], "https://x.example.com", False, id="wildcard-scheme"
        ),
        pytest.param(["http://*.example.com"], "http://x.example.org", False, id="wildcard-suffix"),
        pytest.param(["http://*"], "http://", True, id="wildcard-matches-empty"),
        pytest.param(["*.com"], "x.com", True, id="wildcard-prefix-empty"),
        # prefix and suffix must not overlap: "ab*ba" needs at least four characters
        pytest.param(["ab*ba"], "aba", False, id="wildcard-no-overlap"),
        pytest.param(["ab*ba"], "abba", True, id="wildcard-adjacent"),
        # only the first "*" is a wildcard; a second one is literal text
        pytest.param(["http://*.*.com"], "http://a.b.com", False, id="second-star-literal"),
        pytest.param(["http://*.*.com"], "http://a.*.com", True, id="second-star-matches-star"),
    ],
)
def test_origin_allowed(origins: list[str], origin: str, expected: bool) -> None:
    assert origin_allowed(config(origins=origins), origin) is expected


# --- preflight -------------------------------------------------------------------------


def preflight(
    origin: str | None = "http://a.com",
    method: str = "GET",
    request_headers: str | None = None,
) -> dict[str, str]:
    headers = {"access-control-request-method": method}
    if origin is not None:
        headers["origin"] = origin
    if request_headers is not None:
        headers["access-control-request-headers"] = request_headers
    return headers


PREFLIGHT_CASES = [
    pytest.param(
        config(),
        preflight(),
        [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET")],
        id="allowed-star-origin",
    ),
    pytest.param(config(), preflight(origin=None), [], id="no-origin"),
    pytest.param(config(), preflight(origin=""), [], id="empty-origin"),
    pytest.param(
        config(origins=["http://a.com"]),
        preflight(origin="http://A.com"),
        [("Access-Control-Allow-Origin", "http://A.com"), ("Access-Control-Allow-Methods", "GET")],
        id="listed-origin-echoed-as-sent",
    ),
    pytest.param(
        config(origins=["http://a.com"]), preflight(origin="http://b.com"), [], id="bad-origin"
    ),
    pytest.param(
        config(origins=["http://*.a.com"]),
        preflight(origin="http://x.a.com"),
        [
            ("Access-Control-Allow-Origin", "http://x.a.com"),
            ("Access-Control-Allow-Methods", "GET"),
        ],
        id="wildcard-origin-echoed",
    ),
    pytest.param(config(), preflight(method="DELETE"), [], id="method-not-allowed"),
    pytest.param(
        config(methods=["delete"]),
        preflight(method="delete"),
        [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "DELETE")],
        id="method-case-insensitive-and-upper-cased",
    ),
    pytest.param(
        config(methods=["GET"]),
        preflight(method="OPTIONS"),
        [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "OPTIONS")],
        id="options-always-allowed",
    ),
    pytest.param(
        config(methods=[]),
        preflight(method="HEAD"),
        [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "HEAD")],
        id="empty-methods-default-simple-methods",
    ),
    pytest.param(config(methods=[]), preflight(method="PUT"), [], id="empty-methods-no-put"),
    pytest.param(
        config(),
        preflight(request_headers="content-type, ACCEPT"),
        [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Headers", "Content-Type, Accept"),
        ],
        id="headers-canonicalised",
    ),
    pytest.param(
        config(headers=["Accept"]),
        preflight(request_headers="origin"),
        [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Headers", "Origin"),
        ],
        id="origin-header-always-allowed",
    ),
    pytest.param(
        config(), preflight(request_headers="Content-Type, X-Custom"), [], id="header-not-allowed"
    ),
    pytest.param(
        config(headers=["x-custom"]),
        preflight(request_headers="X-CUSTOM"),
        [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Headers", "X-Custom"),
        ],
        id="configured-header-canonicalised",
    ),
    pytest.param(
        config(headers=["*"]),
        preflight(request_headers="x-anything,x-else"),
        [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Headers", "X-Anything, X-Else"),
        ],
        id="star-allows-all-headers",
    ),
    pytest.param(
        config(headers=[]),
        preflight(request_headers="x-requested-with"),
        [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Headers", "X-Requested-With"),
        ],
        id="empty-headers-default-list",
    ),
    pytest.param(
        config(),
        preflight(request_headers=" , "),
        [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET")],
        id="blank-header-list",
    ),
    pytest.param(
        config(credentials=True),
        preflight(),
        [
            ("Access-Control-Allow-Origin", "http://a.com"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Credentials", "true"),
        ],
        id="credentials-echo-origin-instead-of-star",
    ),
    pytest.param(
        config(origins=[], credentials=True),
        preflight(request_headers="accept"),
        [
            ("Access-Control-Allow-Origin", "http://a.com"),
            ("Access-Control-Allow-Methods", "GET"),
            ("Access-Control-Allow-Headers", "Accept"),
            ("Access-Control-Allow-Credentials", "true"),
        ],
        id="all-headers-in-order",
    ),
    pytest.param(config(credentials=True), preflight(method="PUT"), [], id="denied-no-credentials"),
]


@pytest.mark.parametrize(("cors", "headers", "added"), PREFLIGHT_CASES)
def test_preflight_headers(
    cors: Cors, headers: dict[str, str], added: list[tuple[str, str]]
) -> None:
    assert preflight_headers(cors, headers) == VARY_PREFLIGHT + added


# --- actual requests -------------------------------------------------------------------


ACTUAL_CASES = [
    pytest.param(
        config(),
        "GET",
        {"origin": "http://a.com"},
        [("Vary", "Origin"), ("Access-Control-Allow-Origin", "*")],
        id="allowed",
    ),
    pytest.param(config(), "GET", {}, [("Vary", "Origin")], id="no-origin"),
    pytest.param(
        config(origins=["http://a.com"]),
        "GET",
        {"origin": "http://b.com"},
        [("Vary", "Origin")],
        id="origin-not-allowed",
    ),
    pytest.param(
        config(),
        "DELETE",
        {"origin": "http://a.com"},
        [("Vary", "Origin")],
        id="method-not-allowed",
    ),
    pytest.param(
        config(origins=["http://a.com"], credentials=True),
        "POST",
        {"origin": "http://a.com"},
        [
            ("Vary", "Origin"),
            ("Access-Control-Allow-Origin", "http://a.com"),
            ("Access-Control-Allow-Credentials", "true"),
        ],
        id="credentials",
    ),
    pytest.param(
        config(credentials=True),
        "GET",
        {"origin": "http://z.com"},
        [
            ("Vary", "Origin"),
            ("Access-Control-Allow-Origin", "http://z.com"),
            ("Access-Control-Allow-Credentials", "true"),
        ],
        id="star-with-credentials-echoes",
    ),
    pytest.param(
        config(),
        "OPTIONS",
        {"origin": "http://a.com"},
        [],
        id="plain-options-gets-nothing",
    ),
]


@pytest.mark.parametrize(("cors", "method", "headers", "expected"), ACTUAL_CASES)
def test_actual_headers(
    cors: Cors, method: str, headers: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert actual_headers(cors, method, headers) == expected


# --- header tokenizing -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("content-type", ["Content-Type"], id="one"),
        pytest.param("x-a,x-b", ["X-A", "X-B"], id="comma"),
        pytest.param("x-a x-b", ["X-A", "X-B"], id="space"),
        pytest.param("  X-A ,, X-B  ", ["X-A", "X-B"], id="blanks"),
        pytest.param("X-FOO-bar", ["X-Foo-Bar"], id="case"),
        pytest.param("x_foo-2b", ["X_foo-2b"], id="underscore-digits-kept"),
        pytest.param("x.foo", ["Xfoo"], id="dot-dropped-and-no-upper-after"),
        pytest.param("x-\u00e9t\u00e9", ["X-t"], id="non-ascii-dropped"),
    ],
)
def test_parse_header_list(value: str, expected: list[str]) -> None:
    assert parse_header_list(value) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("content-type", "Content-Type"),
        ("CONTENT-TYPE", "Content-Type"),
        ("x-api-key", "X-Api-Key"),
        ("x_key", "X_key"),
        ("", ""),
        ("bad header", "bad header"),
        ("caf\u00e9", "caf\u00e9"),
    ],
)
def test_canonical_header_key(name: str, expected: str) -> None:
    assert canonical_header_key(name) == expected
