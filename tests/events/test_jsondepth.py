"""json_depth_exceeds: the nesting limit checked before any JSON decoder runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventgateway.events.jsondepth import json_depth_exceeds


def depth(value: Any) -> int:
    """The reference: levels of lists and dicts in a decoded value."""
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        (b"1", 0),
        (b'"[[[{{{"', 0),
        (b"[]", 1),
        (b"{}", 1),
        (b'[{"a": []}]', 3),
        (b"[[], [], []]", 2),
        (b'["]]]]", [[1]]]', 3),  # closing brackets inside a string do not close anything
        (b'["\\"]]", [[1]]]', 3),  # nor after an escaped quote
        (b'{"\\\\": [[[]]]}', 4),  # an escaped backslash ends before the closing quote
        (b"[" * 10_000 + b"]" * 10_000, 10_000),
    ],
)
def test_depth_is_measured_outside_strings(text: bytes, levels: int) -> None:
    assert not json_depth_exceeds(text, levels)
    assert json_depth_exceeds(text, levels - 1) is (levels > 0)


def test_unbalanced_and_invalid_text_is_measured_as_far_as_it_goes() -> None:
    assert json_depth_exceeds(b"[" * 100, 64)
    assert not json_depth_exceeds(b"]]]]" + b"[" * 10, 64)
    assert json_depth_exceeds(b'"unterminated [[[', 2)  # left for the decoder to refuse


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ax'),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ax', max_size=3), inner, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON, limit=st.integers(min_value=0, max_value=12))
def test_matches_the_depth_of_the_decoded_value(value: Any, limit: int) -> None:
    text = json.dumps(value).encode()

    assert json_depth_exceeds(text, limit) is (depth(value) > limit)
