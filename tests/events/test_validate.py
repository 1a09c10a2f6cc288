"""Media types (Go's mime.ParseMediaType), RFC 3339 timestamps, URIs and attribute names."""

from __future__ import annotations

import pytest

from eventgateway.events.headers import canonical_header_name
from eventgateway.events.validate import (
    MediaTypeError,
    go_validation_line,
    is_attribute_name,
    is_request_uri,
    is_uri,
    is_uri_reference,
    media_type,
    normalize_rfc3339,
    valid_rfc3339,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", "application/json"),
        ("Application/JSON; charset=UTF-8", "application/json"),
        ("  text/plain  ", "text/plain"),
        ("application/json;", "application/json"),
        ("application/json; charset=utf-8;", "application/json"),
        ('text/plain; name="a \\"quoted\\" value"', "text/plain"),
        ('text/plain; a=""', "text/plain"),
        ("text/plain; x=1; x=1", "text/plain"),
        ("multipart/form-data; boundary=----abc", "multipart/form-data"),
        ("text/plain; charset=utf-8  ", "text/plain"),
        ("text", "text"),
        # Go's "mime: no media type", which the gateway treated as an absent header.
        ("", "application/octet-stream"),
        ("; charset=utf-8", "application/octet-stream"),
        ("/json", "application/octet-stream"),
    ],
)
def test_media_type_strips_parameters_and_lower_cases(header, expected):
    assert media_type(header) == expected


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("application/", "mime: expected token after slash"),
        ("application/ json", "mime: expected token after slash"),
        ("foo bar", "mime: expected slash after first token"),
        ("text/plain text", "mime: unexpected content after media subtype"),
        ("text/plain; charset", "mime: invalid media parameter"),
        ("text/plain; charset=", "mime: invalid media parameter"),
        ("text/plain; =utf-8", "mime: invalid media parameter"),
        ('text/plain; a="unterminated', "mime: invalid media parameter"),
        ('text/plain; a="line\nbreak"', "mime: invalid media parameter"),
        ("text/plain junk; a=b", "mime: unexpected content after media subtype"),
        ("text/plain; a=b c", "mime: invalid media parameter"),
        ("text/plain; ;", "mime: invalid media parameter"),
        ("text/plain; x=1; X=2", "mime: duplicate parameter name"),
    ],
)
def test_media_type_errors_carry_go_text(header, message):
    with pytest.raises(MediaTypeError) as info:
        media_type(header)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2018-01-01T00:00:00Z", "2018-01-01T00:00:00Z"),
        ("2018-01-01T00:00:00.123Z", "2018-01-01T00:00:00.123Z"),
        ("2018-01-01T00:00:00.120000Z", "2018-01-01T00:00:00.12Z"),
        ("2018-01-01T00:00:00.000Z", "2018-01-01T00:00:00Z"),
        ("2018-01-01T00:00:00.1234567891234Z", "2018-01-01T00:00:00.123456789Z"),
        ("2018-01-01T00:00:00+00:00", "2018-01-01T00:00:00Z"),
        ("2018-01-01T00:00:00-00:00", "2018-01-01T00:00:00Z"),
        ("2018-01-01T00:00:00.50+05:30", "2018-01-01T00:00:00.5+05:30"),
        ("2018-01-01T00:00:00-23:59", "2018-01-01T00:00:00-23:59"),
        ("2016-02-29T23:59:59Z", "2016-02-29T23:59:59Z"),
        ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"),
        ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
    ],
)
def test_normalize_rfc3339_reformats_like_go(value, expected):
    assert normalize_rfc3339(value) == expected
    assert valid_rfc3339(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "2018-01-01",
        "2018-01-01T00:00Z",
        "2018-01-01 00:00:00Z",
        "2018-01-01T00:00:00",
        "2018-01-01T00:00:00.Z",
        "2018-13-01T00:00:00Z",
        "2018-00-01T00:00:00Z",
        "2018-04-31T00:00:00Z",
        "2018-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2018-01-01T24:00:00Z",
        "2018-01-01T00:60:00Z",
        "2018-01-01T00:00:60Z",
        "2018-01-01T00:00:00+24:00",
        "2018-01-01T00:00:00+00:60",
        "2018-01-01T00:00:00+0000",
        "\uff12018-01-01T00:00:00Z",
        "2018-01-01T00:00:00Z ",
    ],
)
def test_invalid_timestamps_are_refused_by_both_versions(value):
    assert normalize_rfc3339(value) is None
    assert not valid_rfc3339(value)


def test_lower_case_t_and_z_are_rfc3339_but_not_go():
    assert valid_rfc3339("2018-01-01t00:00:00z")
    assert normalize_rfc3339("2018-01-01t00:00:00z") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/services/users", True),
        ("https://example.com/x/y?q=1", True),
        ("https://serverless.com/event-gateway/#transformationVersion=0.1", True),
        ("urn:event:from:users", True),
        ("mailto:ops@example.com", True),
        ("http://user:pw@host:8080/", True),
        ("http://[::1]:80/x", True),
        ("http://host:/x", True),
        ("/a%20b", True),
        ("/a?", True),
        ("*", True),
        ("svn+ssh2://host/x", True),
        ("abc", False),
        ("", False),
        ("my source", False),
        ("services/users", False),
        (":nope", False),
        ("1http://x/", False),
        ("/a%zz", False),
        ("/a%2", False),
        ("http://host:port/", False),
        ("http://[::1/x", False),
        ("http://[::1]x/", False),
        ("http://a b/", False),
        ("http://us er@host/", False),
        ("/a\x00b", False),
        ("/a\x7f", False),
    ],
)
def test_is_request_uri_follows_go_parse_request_uri(value, expected):
    assert is_request_uri(value) is expected


@pytest.mark.parametrize(
    ("value", "reference", "absolute"),
    [
        ("https://example.com/a", True, True),
        ("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", True, True),
        ("/services/users", True, False),
        ("relative/path", True, False),
        ("#fragment", True, False),
        ("?q=1", True, False),
        ("a/b:c", True, False),
        ("%41", True, False),
        ("", False, False),
        ("my source", False, False),
        ("1abc:x", False, False),
        ("a%2", False, False),
        ("/caf\u00e9", False, False),
        ("/a\nb", False, False),
        # An authority's host and port must parse (QA: these were accepted in 1.0 while
        # 0.1 refused them).
        ("http://[::1", False, False),
        ("http://x:port/", False, False),
        ("//x:port/p", False, False),
        ("http://[::1]:80/a", True, True),
        ("//host:8080/p", True, False),
        ("http://user@host:1/", True, True),
        ("http://x:/", True, True),  # RFC 3986: the port may be empty
    ],
)
def test_uri_reference_and_absolute_uri(value, reference, absolute):
    assert is_uri_reference(value) is reference
    assert is_uri(value) is absolute


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("traceparent", True),
        ("abc123", True),
        ("a" * 40, True),
        ("", False),
        ("Trace", False),
        ("trace-id", False),
        ("trace_id", False),
        ("caf\u00e9", False),
    ],
)
def test_attribute_names_are_lower_case_letters_and_digits(name, expected):
    assert is_attribute_name(name) is expected


def test_go_validation_line_has_the_validator_wording():
    assert go_validation_line("EventID", "required") == (
        "Key: 'Event.EventID' Error:Field validation for 'EventID' failed on the 'required' tag"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (b"content-type", "Content-Type"),
        (b"x-api-key", "X-Api-Key"),
        (b"user-agent", "User-Agent"),
        (b"ce-x-trace-id", "Ce-X-Trace-Id"),
        (b"X-UPPER", "X-Upper"),
        (b"x_y", "X_y"),
        (b"-x", "-X"),
        (b"a b", "a b"),
        (b"x\xe9", "x\xe9"),
    ],
)
def test_canonical_header_name_matches_go(name, expected):
    assert canonical_header_name(name) == expected
