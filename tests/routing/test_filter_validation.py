"""Subscription filters that are refused, and why: every message names the field path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgateway.events.model import CloudEvent
from eventgateway.routing.filters import (
    MAX_DEPTH,
    MAX_JSON_BYTES,
    MAX_VALUES,
    FilterError,
    compile_filter,
)

INVALID: list[tuple[str, Any, str]] = [
    ("not-object", ["x"], "filter must be an object, got array"),
    ("empty", {}, "filter is empty; give it at least one field (leave filter out"),
    ("empty-nested", {"data": {}}, "filter.data is empty; give it at least one field"),
    ("scalar-value", {"source": "x"},
     'filter.source must be a list of values (e.g. ["x"]) or an object, got string'),
    ("empty-list", {"source": []}, "filter.source: needs at least one value"),
    ("nested-array", {"source": [["x"]]},
     "filter.source: a value list holds operator objects, strings, numbers, booleans or null, "
     "got array"),
    ("two-keys", {"source": [{"prefix": "a", "suffix": "b"}]},
     "filter.source: an operator object has exactly one key"),
    ("unknown-operator", {"data": {"plan": [{"prefx": "a"}]}},
     'filter.data.plan: unknown operator "prefx" (known: "prefix"'),
    ("prefix-number", {"source": [{"prefix": 1}]},
     'filter.source: "prefix" takes a string, got number'),
    ("numeric-odd", {"data": {"plan": [{"numeric": [">"]}]}},
     'filter.data.plan: "numeric" needs operator/number pairs'),
    ("numeric-too-many", {"n": [{"numeric": [">", 0, "<", 5, "=", 3]}]},
     'filter.n: "numeric" needs operator/number pairs'),
    ("numeric-bad-op", {"n": [{"numeric": ["~", 0]}]},
     'filter.n: "numeric" needs operator/number pairs'),
    ("numeric-string-bound", {"n": [{"numeric": [">", "0"]}]},
     'filter.n: "numeric" needs operator/number pairs'),
    ("numeric-bool-bound", {"n": [{"numeric": [">", True]}]},
     'filter.n: "numeric" needs operator/number pairs'),
    ("numeric-infinite", {"n": [{"numeric": [">", float("inf")]}]},
     'filter.n: "numeric" bounds must be finite'),
    ("exists-string", {"n": [{"exists": "yes"}]},
     'filter.n: "exists" takes true or false, got string'),
    ("anything-but-empty", {"n": [{"anything-but": []}]},
     'filter.n: "anything-but" needs at least one value'),
    ("anything-but-nested", {"n": [{"anything-but": [["x"]]}]},
     'filter.n: "anything-but" values must be strings'),
    ("anything-but-numeric", {"n": [{"anything-but": {"numeric": [">", 1]}}]},
     'filter.n: "anything-but" cannot hold "numeric"'),
    ("anything-but-two", {"n": [{"anything-but": {"prefix": "a", "suffix": "b"}}]},
     'filter.n: "anything-but" takes a value'),
    ("wildcard-escape", {"n": [{"wildcard": "a\\b"}]},
     'filter.n: "wildcard" escapes only * and \\'),
    ("or-not-list", {"$or": {"a": ["b"]}}, "filter.$or must be a non-empty list of patterns"),
    ("or-empty", {"$or": []}, "filter.$or must be a non-empty list of patterns"),
    ("or-member", {"$or": [{"a": ["b"]}, {"c": "d"}]}, "filter.$or[1].c must be a list of values"),
    ("dollar-key", {"$and": [{"a": ["b"]}]}, 'filter.$and: unknown key; the only $-key is "$or"'),
    ("v01-name", {"eventType": ["a"]},
     'filter.eventType: filters use CloudEvents 1.0 names for 0.1 events too; write "type"'),
    ("v01-id", {"eventID": ["a"]},
     'filter.eventID: filters use CloudEvents 1.0 names for 0.1 events too; write "id"'),
    ("v01-version", {"eventTypeVersion": ["1"]},
     "filter.eventTypeVersion: the 0.1 attribute eventTypeVersion cannot be filtered on"),
    ("key-not-string", {1: ["a"]}, "filter has a key 1; keys are strings"),
    ("key-empty", {"": ["a"]}, "filter has an empty key; top-level keys name event attributes"),
    ("key-empty-or", {"$or": [{"": ["a"]}]}, "filter.$or[0] has an empty key"),
    ("int-too-big", {"data": {"n": [2**63]}},
     "filter.data.n: integers must be between -2**63 and 2**63-1 (64 bits), got "
     "9223372036854775808; write it as a float to compare it as one (9.223372036854776e+18)"),
    ("int-too-small", {"data": {"n": [-(2**63) - 1]}},
     "filter.data.n: integers must be between -2**63 and 2**63-1 (64 bits), got "
     "-9223372036854775809"),
    ("numeric-int-bound", {"data": {"n": [{"numeric": [">", 0, "<", 2**64]}]}},
     "filter.data.n: integers must be between -2**63 and 2**63-1 (64 bits), got "
     "18446744073709551616"),
    ("anything-but-int", {"data": {"n": [{"anything-but": 2**70}]}},
     "filter.data.n: integers must be between -2**63 and 2**63-1"),
    ("anything-but-int-list", {"data": {"n": [{"anything-but": ["x", -(2**70)]}]}},
     "filter.data.n: integers must be between -2**63 and 2**63-1"),
    ("or-int", {"$or": [{"a": ["x"]}, {"data": {"n": [2**64]}}]},
     "filter.$or[1].data.n: integers must be between -2**63 and 2**63-1"),
    ("int-beyond-float", {"n": [10**400]},
     "filter.n: integers must be between -2**63 and 2**63-1 (64 bits), got an integer of "
     "about 401 digits"),
    ("int-beyond-str", {"n": [2**20_000]},  # too long for str(); still named, not a crash
     "filter.n: integers must be between -2**63 and 2**63-1 (64 bits), got an integer of "
     "about 6021 digits"),
    ("nan", {"n": [float("nan")]}, "filter.n: numbers must be finite"),
    ("not-json", {"n": [object()]},
     "filter.n: a value list holds operator objects, strings, numbers, booleans or null, "
     "got object"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_patterns_are_refused_naming_the_path(pattern: Any, message: str):
    with pytest.raises(FilterError) as caught:
        compile_filter(pattern)

    assert str(caught.value).startswith(message)


def test_the_64_bit_integers_and_larger_floats_are_fine():
    compile_filter(
        {
            "n": [2**63 - 1, -(2**63), 1.8446744073709552e19],
            "m": [{"numeric": [">=", -(2**63), "<=", 2**63 - 1]}],
            "o": [{"anything-but": [2**63 - 1, -1e300]}],
        }
    )


def test_an_empty_key_is_fine_below_the_top_level():
    # An event's data may have a member named "": a pattern can name it too.
    compile_filter({"data": {"": ["x"], "a": {"": [{"exists": True}]}}})

    with pytest.raises(FilterError, match=r'^filter\.data\[""\]: needs at least one value'):
        compile_filter({"data": {"": []}})


def test_0_1_names_are_fine_below_the_top_level():
    # data may hold any keys: only attribute names are spelled the 1.0 way
    compile_filter({"data": {"eventType": ["x"], "eventID": ["y"]}})


def test_dollar_keys_are_reserved_at_every_level():
    with pytest.raises(FilterError, match=r"^filter\.data\.\$in: unknown key"):
        compile_filter({"data": {"$in": ["y"]}})


def nested(levels: int) -> dict[str, Any]:
    pattern: dict[str, Any] = {"leaf": ["x"]}
    for _ in range(levels - 1):
        pattern = {"k": pattern}
    return pattern


def test_depth_limit():
    compile_filter(nested(MAX_DEPTH))

    with pytest.raises(FilterError, match=r"^filter(\.k){10}: patterns nest at most 10"):
        compile_filter(nested(MAX_DEPTH + 1))


def test_or_members_count_as_a_level():
    compile_filter({"$or": [nested(MAX_DEPTH - 1)]})

    with pytest.raises(FilterError, match=r"^filter\.\$or\[0\](\.k){9}: patterns nest"):
        compile_filter({"$or": [nested(MAX_DEPTH)]})


def test_value_limit_counts_every_list():
    compile_filter({"a": list(range(60)), "b": [{"anything-but": list(range(40))}]})

    with pytest.raises(FilterError, match=r"^filter\.b: a filter holds at most 100 values"):
        compile_filter({"a": list(range(60)), "b": [*range(40), "x"]})
    assert MAX_VALUES == 100


def test_size_limit():
    big = "x" * (MAX_JSON_BYTES // 2)

    with pytest.raises(FilterError, match=r"^filter is \d+ bytes as JSON; the limit is 65536"):
        compile_filter({"a": [big], "b": [big]})


def test_a_long_hostile_wildcard_compiles():
    compile_filter({"s": [{"wildcard": "*" * 10_000}]})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["$or", "data", "a", "prefix", "numeric", "exists", "anything-but"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(pattern=JSON, data=JSON)
def test_any_json_compiles_or_is_refused_and_matching_never_raises(pattern: Any, data: Any):
    try:
        compiled = compile_filter(pattern)
    except FilterError:
        return
    event = CloudEvent("1.0", "1", "/s", "t", extensions={"a": data}, data=data)

    assert compiled.matches_event(event) in (True, False)
