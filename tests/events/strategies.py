"""Hypothesis strategies for requests to the Events API, shared by the fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

MEDIA_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "application/json",
            "application/x+json; charset=utf-8",
            "text/plain",
            "multipart/form-data; boundary=b",
        ]
    ),
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
)
HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            b"ce-specversion", b"ce-id", b"ce-source", b"ce-type", b"ce-time", b"ce-data",
            b"ce-eventtype", b"ce-cloudeventsversion", b"ce-eventid", b"ce-eventtime",
            b"ce-x-a", b"event", b"host", b"content-type", b"transfer-encoding",
            b"content-length",
        ]
    ),
    st.binary(min_size=1, max_size=12).map(bytes.lower),
)  # fmt: skip
# Numbers as headers carry them: huge, non-ASCII digits, over int()'s 4,300-digit limit.
NUMERIC_VALUES = st.sampled_from(
    [b"0", b"7", b"99999999999999999999999", "²".encode("latin-1"), b"1" * 5000, b"-1"]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
# Shallow values with many siblings, and chains deep enough to pass the small limits.
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=10,
)


def chain(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


DEEP = st.integers(min_value=0, max_value=12).map(chain)
ATTRIBUTES = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
EVENTS = st.fixed_dictionaries(
    {}, optional={**{k: st.just(v) | JSON for k, v in ATTRIBUTES.items()}, "data": JSON | DEEP}
)
