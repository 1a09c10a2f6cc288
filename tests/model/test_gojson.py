"""Bodies decode like Go's encoding/json did: messages, key folding, nulls, type errors."""

from __future__ import annotations

import pytest

from eventgateway.model.gojson import (
    FieldSpec,
    GoJSONError,
    StructSpec,
    as_bool,
    as_string,
    as_string_list,
    as_string_map,
    decode_struct,
    decode_value,
    replace_lone_surrogates,
)

STRUCT = StructSpec(
    "pkg.Thing",
    "Thing",
    (
        FieldSpec("name", as_string("pkg.Name")),
        FieldSpec("flag", as_bool),
        FieldSpec("tags", as_string_list, null_clears=True),
        FieldSpec("metadata", as_string_map, null_clears=True),
    ),
)


def go_error(raw: bytes) -> str:
    with pytest.raises(GoJSONError) as caught:
        decode_struct(decode_value(raw), STRUCT)
    return str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "EOF"),
        (b" \n\t ", "EOF"),
        (b'{"name":', "unexpected EOF"),
        (b'{"name": "x', "unexpected EOF"),
        (b"{", "unexpected EOF"),
        (b"}", "invalid character '}' looking for beginning of value"),
        (b'{"name" "x"}', "invalid character '\"' after object key"),
        (b"{name: 1}", "invalid character 'n' looking for beginning of object key string"),
        (b'{"a": 1 "b": 2}', "invalid character '\"' after object key:value pair"),
        (b'{"a": [1 2]}', "invalid character '2' after array element"),
        (b'{"a": NaN}', "invalid character 'N' looking for beginning of value"),
        (b'{"a": "x\ny"}', "invalid character '\\n' in string literal"),
        (b'{"a": "\\q"}', "invalid character 'q' in string escape code"),
        (b'{"a": "\\u12"}', "invalid character '\"' in \\u hexadecimal character escape"),
        (b'{"a": "\\u12', "unexpected EOF"),
        (b'{"a": 1,}', "invalid character '}' looking for beginning of object key string"),
        (b"[1,]", "invalid character ']' looking for beginning of value"),
        pytest.param(b"[" * 20000, "exceeded max depth", id="deep-nesting"),
        (b"[]", "json: cannot unmarshal array into Go value of type pkg.Thing"),
        (b'"x"', "json: cannot unmarshal string into Go value of type pkg.Thing"),
        (b"12", "json: cannot unmarshal number into Go value of type pkg.Thing"),
        (b"true", "json: cannot unmarshal bool into Go value of type pkg.Thing"),
    ],
)
def test_decode_errors_carry_go_messages(raw: bytes, message: str) -> None:
    assert go_error(raw) == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b'{"name": 1}',
            "json: cannot unmarshal number into Go struct field Thing.name of type pkg.Name",
        ),
        (
            b'{"flag": "yes"}',
            "json: cannot unmarshal string into Go struct field Thing.flag of type bool",
        ),
        (
            b'{"tags": "a"}',
            "json: cannot unmarshal string into Go struct field Thing.tags of type []string",
        ),
        (
            b'{"tags": [1]}',
            "json: cannot unmarshal number into Go struct field Thing.tags of type string",
        ),
        (
            b'{"metadata": []}',
            "json: cannot unmarshal array into Go struct field Thing.metadata "
            "of type map[string]string",
        ),
        (
            b'{"metadata": {"a": true}}',
            "json: cannot unmarshal bool into Go struct field Thing.metadata of type string",
        ),
    ],
)
def test_type_mismatches_name_the_go_field(raw: bytes, message: str) -> None:
    assert go_error(raw) == message


def test_the_first_type_error_in_document_order_wins() -> None:
    assert go_error(b'{"flag": 1, "name": 2}').endswith("Thing.flag of type bool")


def test_keys_match_case_insensitively_and_unknown_keys_are_dropped() -> None:
    fields = decode_struct(decode_value(b'{"NAME": "x", "Flag": true, "other": 1}'), STRUCT)

    assert fields == {"name": "x", "flag": True}


def test_exact_key_is_preferred_and_the_last_one_wins() -> None:
    fields = decode_struct(decode_value(b'{"Name": "a", "name": "b", "NAME": "c"}'), STRUCT)

    assert fields == {"name": "c"}


def test_null_body_sets_nothing() -> None:
    assert decode_struct(decode_value(b"null"), STRUCT) == {}


def test_null_keeps_a_string_but_clears_a_list() -> None:
    fields = decode_struct(
        decode_value(b'{"name": "x", "name": null, "tags": ["a"], "tags": null}'), STRUCT
    )

    assert fields == {"name": "x"}


def test_only_the_first_value_is_read() -> None:
    assert decode_struct(decode_value(b'{"name": "x"} trailing {junk'), STRUCT) == {"name": "x"}


def test_invalid_utf8_is_replaced_not_refused() -> None:
    assert decode_struct(decode_value(b'{"name": "a\xffb"}'), STRUCT) == {"name": "a\ufffdb"}


def test_a_mapping_decodes_like_a_body() -> None:
    assert decode_struct({"Name": "x", "tags": ["a", None]}, STRUCT) == {
        "name": "x",
        "tags": ["a", ""],
    }


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (rb'"\ud800"', "\ufffd"),
        (rb'"\uDC00x"', "\ufffdx"),
        (rb'"\ud800\u0041"', "\ufffdA"),
        (rb'"\ud800\ud800\udc00"', "\ufffd\U00010000"),
        (rb'"\ud83d\ude00"', "\U0001f600"),  # a valid pair stays one character
        (rb'"\\ud800"', "\\ud800"),  # an escaped backslash, then plain text
        (rb'"\ud7ff\ue000"', "\ud7ff\ue000"),  # next to the range, not in it
    ],
)
def test_lone_surrogate_escapes_read_as_replacement_characters(raw: bytes, decoded: str) -> None:
    # Go's decoder does this; a lone surrogate in a str could never be encoded again.
    assert decode_value(raw) == decoded


def test_bodies_without_surrogate_escapes_are_not_rewritten() -> None:
    raw = rb'{"name": "\u00e9\n"}'

    assert replace_lone_surrogates(raw) is raw
