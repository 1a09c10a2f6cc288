"""The number Go's decoder refused, found again: its path, and the message naming it."""

from __future__ import annotations

import pytest

from eventgateway.model.gojson import (
    FieldSpec,
    GoNumberError,
    StructSpec,
    as_raw,
    as_string,
    decode_value,
)
from eventgateway.model.gojson_numbers import refused_number_message, refused_number_path

STRUCT = StructSpec(
    "pkg.Thing",
    "Thing",
    (FieldSpec("name", as_string()), FieldSpec("pattern", as_raw), FieldSpec("other", as_raw)),
)


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (b"NaN", ()),
        (b' \n{"a": [1, 2.5, {"b": -Infinity}]}', ("a", 2, "b")),
        (b'{"a": 1e400}', ("a",)),
        (b'{"a": -1e400}', ("a",)),
        (b'{"a": ' + b"9" * 400 + b"}", ("a",)),
        # the first in document order, duplicate keys included
        (b'{"a": 1, "a": [0, NaN], "b": Infinity}', ("a", 1)),
        (b'{"\\ud800": NaN}', ("\ufffd",)),
        (b'{"a": NaN} trailing bytes are not read', ("a",)),
    ],
)
def test_the_path_of_the_first_refused_number(raw: bytes, path: tuple[str | int, ...]):
    with pytest.raises(GoNumberError):
        decode_value(raw)

    assert refused_number_path(raw) == path


@pytest.mark.parametrize(
    "raw",
    [b'{"a": 1.5, "b": ' + b"9" * 300 + b"}", b'{"a": NaN, "b": }', b'{"a": [NaN'],
)
def test_no_path_when_nothing_is_refused_or_the_rest_does_not_parse(raw: bytes):
    assert refused_number_path(raw) is None


def message(raw: bytes) -> str:
    with pytest.raises(GoNumberError) as caught:
        decode_value(raw)
    return refused_number_message(caught.value, raw, STRUCT, {"pattern"})


def test_a_number_in_a_named_field_is_named_by_its_path():
    assert message(b'{"name": "x", "PATTERN": {"a": [1, {"b": NaN}]}}') == (
        "pattern.a[1].b: NaN is not a JSON number; numbers must be finite"
    )
    assert message(b'{"pattern": {"": {"a": [NaN]}}}') == (
        'pattern[""].a[0]: NaN is not a JSON number; numbers must be finite'
    )
    assert message(b'{"pattern": [1e999]}') == (
        "pattern[0]: number 1e999 is out of range; numbers must fit a 64-bit float "
        "(up to about 1.8e308)"
    )


@pytest.mark.parametrize(
    ("raw", "go_message"),
    [
        (b'{"other": NaN, "pattern": NaN}', "invalid character 'N' looking for beginning of value"),
        (
            b'{"unknown": 1e400}',
            "json: cannot unmarshal number 1e400 into Go value of type float64",
        ),
        (b"[Infinity]", "invalid character 'I' looking for beginning of value"),
        (b'{"pattern": NaN, "x": }', "invalid character 'N' looking for beginning of value"),
    ],
)
def test_elsewhere_it_is_gos_message(raw: bytes, go_message: str):
    assert message(raw) == go_message
