"""The sync response object of contract §2.5 and the Content-Type sniffing of Go's http package."""

from __future__ import annotations

import pytest

from eventgateway.dispatch.response import HttpResult, parse_http_result
from eventgateway.dispatch.sniff import sniff_content_type

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
BINARY = "application/octet-stream"


# -- parse_http_result ---------------------------------------------------------------------


def test_full_response_object_maps_status_headers_and_body():
    raw = (
        b'{"statusCode":201,"headers":{"X-Custom":"yes","Content-Type":"application/json"},'
        b'"body":"{\\"id\\":\\"42\\"}"}'
    )

    assert parse_http_result(raw) == HttpResult(
        201, [("X-Custom", "yes"), ("Content-Type", "application/json")], b'{"id":"42"}'
    )


def test_status_code_defaults_to_200_when_absent():
    assert parse_http_result(b'{"body":"hi"}') == HttpResult(200, [("Content-Type", TEXT)], b"hi")


@pytest.mark.parametrize("raw", [b"{}", b"null", b" {} ", b"\n null\n"])
def test_empty_object_or_null_is_200_with_empty_body_and_no_content_type(raw: bytes):
    assert parse_http_result(raw) == HttpResult(200, [], b"")


def test_unknown_members_are_ignored():
    raw = b'{"statusCode":204,"isBase64Encoded":false,"extra":[1,2]}'

    assert parse_http_result(raw) == HttpResult(204, [], b"")


def test_body_is_written_as_utf8_bytes_as_is():
    result = parse_http_result(b'{"body":"caf\\u00e9 \xe2\x9c\x93"}')

    assert result is not None
    assert result.body == "café ✓".encode()


def test_content_type_is_sniffed_when_the_function_set_none():
    result = parse_http_result(b'{"body":"<html><body>hi</body></html>"}')

    assert result == HttpResult(200, [("Content-Type", HTML)], b"<html><body>hi</body></html>")


def test_json_body_without_content_type_is_sniffed_as_plain_text_like_go():
    result = parse_http_result(b'{"body":"{\\"a\\":1}"}')

    assert result == HttpResult(200, [("Content-Type", TEXT)], b'{"a":1}')


@pytest.mark.parametrize("name", ["content-type", "CONTENT-TYPE", "Content-type"])
def test_a_content_type_set_by_the_function_in_any_case_is_kept_and_not_sniffed(name: str):
    result = parse_http_result(b'{"headers":{"%s":"application/xml"},"body":"<a>"}' % name.encode())

    assert result == HttpResult(200, [(name, "application/xml")], b"<a>")


def test_empty_body_gets_no_content_type_even_with_other_headers():
    result = parse_http_result(b'{"statusCode":302,"headers":{"Location":"/next"},"body":""}')

    assert result == HttpResult(302, [("Location", "/next")], b"")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[]", id="empty array"),
        pytest.param(b'[{"statusCode":200}]', id="array of objects"),
        pytest.param(b"not json", id="not JSON"),
        pytest.param(b"", id="empty bytes"),
        pytest.param(b'{"statusCode":200', id="truncated JSON"),
        pytest.param(b'"hello"', id="JSON string"),
        pytest.param(b"42", id="JSON number"),
        pytest.param(b"true", id="JSON bool"),
    ],
)
def test_anything_but_an_object_or_null_is_malformed(raw: bytes):
    assert parse_http_result(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"body":{"id":42}}', id="object"),
        pytest.param(b'{"body":42}', id="number"),
        pytest.param(b'{"body":["a"]}', id="array"),
        pytest.param(b'{"body":true}', id="bool"),
    ],
)
def test_body_that_is_not_a_string_is_malformed(raw: bytes):
    assert parse_http_result(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"headers":{"X-Count":1}}', id="number value"),
        pytest.param(b'{"headers":{"X-List":["a","b"]}}', id="array value"),
        pytest.param(b'{"headers":{"X-Flag":true}}', id="bool value"),
        pytest.param(b'{"headers":["X-A","1"]}', id="headers as array"),
        pytest.param(b'{"headers":"X-A: 1"}', id="headers as string"),
    ],
)
def test_header_values_that_are_not_strings_are_malformed(raw: bytes):
    assert parse_http_result(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"statusCode":"201"}', id="string"),
        pytest.param(b'{"statusCode":201.5}', id="fraction"),
        pytest.param(b'{"statusCode":true}', id="bool"),
        pytest.param(b'{"statusCode":99}', id="below 100"),
        pytest.param(b'{"statusCode":100}', id="100 continue"),
        pytest.param(b'{"statusCode":101}', id="101 switching protocols"),
        pytest.param(b'{"statusCode":199}', id="199"),
        pytest.param(b'{"statusCode":600}', id="600"),
        pytest.param(b'{"statusCode":999}', id="999"),
        pytest.param(b'{"statusCode":1000}', id="above 999"),
        pytest.param(b'{"statusCode":0}', id="zero"),
    ],
)
def test_status_code_that_is_not_an_integer_from_200_to_599_is_malformed(raw: bytes):
    assert parse_http_result(raw) is None


@pytest.mark.parametrize("status", [200, 299, 418, 599])
def test_any_final_status_code_is_kept(status: int):
    assert parse_http_result(b'{"statusCode":%d}' % status) == HttpResult(status, [], b"")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"headers":{"bad header":"v"}}', id="space in name"),
        pytest.param(b'{"headers":{"":"v"}}', id="empty name"),
        pytest.param(b'{"headers":{"x:y":"v"}}', id="colon in name"),
        pytest.param(b'{"headers":{"caf\\u00e9":"v"}}', id="non-ASCII name"),
        pytest.param(b'{"headers":{"x-a":"a\\r\\nx-injected: 1"}}', id="CRLF in value"),
        pytest.param(b'{"headers":{"x-a":"a\\nb"}}', id="LF in value"),
        pytest.param(b'{"headers":{"x-a":"a\\u0000b"}}', id="NUL in value"),
    ],
)
def test_header_that_cannot_be_written_is_malformed(raw: bytes):
    assert parse_http_result(raw) is None


def test_non_ascii_header_values_and_tabs_are_kept():
    # QA: "5 €" was malformed; Go wrote any string's UTF-8 bytes (the API encodes them).
    result = parse_http_result(b'{"headers":{"X-Name":"caf\\u00e9\\tnoir","X-Price":"5 \\u20ac"}}')

    assert result == HttpResult(200, [("X-Name", "caf\u00e9\tnoir"), ("X-Price", "5 \u20ac")], b"")


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        pytest.param(b'{"body":"caf\xe9"}', "caf\ufffd", id="invalid UTF-8"),
        pytest.param(b'{"body":"\\ud800!"}', "\ufffd!", id="lone surrogate escape"),
        pytest.param(b'{"body":"ok","headers":{"x-a":"\\udc00"}}', "ok", id="in a header"),
    ],
)
def test_invalid_text_is_read_as_replacement_characters_like_go(raw: bytes, body: str):
    # QA: invalid UTF-8 was a 500 with a traceback, a lone surrogate "malformed"; Go's
    # json.Unmarshal reads both as U+FFFD.
    result = parse_http_result(raw)

    assert result is not None
    assert (result.status, result.body) == (200, body.encode())


@pytest.mark.parametrize("name", ["Content-Length", "transfer-encoding", "Date"])
def test_framing_and_date_headers_set_by_the_function_are_dropped(name: str):
    result = parse_http_result(b'{"headers":{"%s":"999","X-Kept":"1"},"body":"hi"}' % name.encode())

    assert result == HttpResult(200, [("X-Kept", "1"), ("Content-Type", TEXT)], b"hi")


@pytest.mark.parametrize("status", [204, 304])
def test_no_content_statuses_drop_the_body(status: int):
    result = parse_http_result(b'{"statusCode":%d,"body":"not empty"}' % status)

    assert result == HttpResult(status, [], b"")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            b'{"statusCode":null,"body":"ok"}',
            HttpResult(200, [("Content-Type", TEXT)], b"ok"),
            id="statusCode null",
        ),
        pytest.param(
            b'{"headers":null,"body":"ok"}',
            HttpResult(200, [("Content-Type", TEXT)], b"ok"),
            id="headers null",
        ),
        pytest.param(b'{"statusCode":201,"body":null}', HttpResult(201, [], b""), id="body null"),
    ],
)
def test_null_members_count_as_absent_like_go(raw: bytes, expected: HttpResult):
    assert parse_http_result(raw) == expected


def test_member_names_match_case_insensitively_like_go():
    result = parse_http_result(b'{"StatusCode":201,"Body":"ok"}')

    assert result == HttpResult(201, [("Content-Type", TEXT)], b"ok")


# -- sniff_content_type --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"hello", b'{"json": true}', b"line one\nline two\ttabbed\r\n", "café".encode(), b"\x1b[1m"],
)
def test_plain_text_is_text_plain_utf8(body: bytes):
    assert sniff_content_type(body) == TEXT


@pytest.mark.parametrize(
    "body",
    [
        b"<!DOCTYPE html><html></html>",
        b"<!doctype HTML>",
        b"<html>",
        b"<HTML lang='en'>",
        b"<head><title>x</title></head>",
        b"<script>alert(1)</script>",
        b"<iframe src=x>",
        b"<h1>Title</h1>",
        b"<div class=a>",
        b"<font size=1>",
        b"<table>",
        b"<a href='/'>link</a>",
        b"<style>p{}</style>",
        b"<title>x</title>",
        b"<b>bold</b>",
        b"<body>",
        b"<br>",
        b"<p>para</p>",
        b"<!-- comment -->",
    ],
)
def test_html_signatures_followed_by_space_or_gt_are_text_html(body: bytes):
    assert sniff_content_type(body) == HTML


@pytest.mark.parametrize("body", [b"  <html>", b"\n\n<p>x</p>", b"\t\r\n\x0c <div>"])
def test_leading_whitespace_is_skipped_before_matching_html(body: bytes):
    assert sniff_content_type(body) == HTML


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<pre>code</pre>", id="<pre> is not <p>"),
        pytest.param(b"<bold>", id="<bold> is not <b>"),
        pytest.param(b"<html", id="no terminating byte"),
        pytest.param(b"<xml>", id="unknown tag"),
        pytest.param(b"text <html>", id="tag not at start"),
    ],
)
def test_tags_that_are_not_go_signatures_are_plain_text(body: bytes):
    assert sniff_content_type(body) == TEXT


@pytest.mark.parametrize(
    "body",
    [b"\x00\x01\x02", b"abc\x00def", b"\x7fELF\x02\x01\x01\x00", b"PK\x03", b"\x1f\x8b"],
)
def test_binary_bytes_are_application_octet_stream(body: bytes):
    assert sniff_content_type(body) == BINARY


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<?xml version='1.0'?><a/>", "text/xml; charset=utf-8"),
        (b"\n  <?xml version='1.0'?>", "text/xml; charset=utf-8"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"%!PS-Adobe-3.0", "application/postscript"),
        (b"\xef\xbb\xbfhello\x00", TEXT),
        (b"GIF87a....", "image/gif"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"BM6\x00\x00\x00", "image/bmp"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x89PNG\r\n\x1a\n\x00", "image/png"),
        (b"\xff\xd8\xff\xe0", "image/jpeg"),
        (b"FORM\x00\x00\x00\x10AIFF", "audio/aiff"),
        (b"ID3\x04\x00", "audio/mpeg"),
        (b"OggS\x00\x02", "application/ogg"),
        (b"MThd\x00\x00\x00\x06\x00", "audio/midi"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", "video/avi"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "audio/wave"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp41isom", "video/mp4"),
        (b"\x1a\x45\xdf\xa3\x01", "video/webm"),
        (b"\x00\x01\x00\x00\x00\x10", "font/ttf"),
        (b"OTTO\x00\x0a", "font/otf"),
        (b"wOFF\x00\x01", "font/woff"),
        (b"\x1f\x8b\x08\x00", "application/x-gzip"),
        (b"PK\x03\x04\x14\x00", "application/zip"),
        (b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
        (b"\x00asm\x01\x00\x00\x00", "application/wasm"),
        (b"%PDX-", TEXT),
        (b" %PDF-", TEXT),  # only <?xml and HTML skip leading whitespace
    ],
)
def test_go_signatures_name_their_type(body: bytes, expected: str):
    # QA: only HTML, text and binary were told apart; Go's DetectContentType knows these.
    assert sniff_content_type(body) == expected


def test_only_the_first_512_bytes_are_inspected():
    assert sniff_content_type(b"a" * 512 + b"\x00") == TEXT
    assert sniff_content_type(b"a" * 511 + b"\x00") == BINARY


def test_vertical_tab_is_a_binary_byte_like_go():
    assert sniff_content_type(b"a\x0bb") == BINARY


def test_comment_without_terminating_byte_is_plain_text_like_go():
    assert sniff_content_type(b"<!--x-->") == TEXT


def test_a_reply_nested_past_the_stack_is_malformed_not_an_error():
    # The function's reply is untrusted: a 500 "malformed" for the client, no traceback.
    raw = b'{"statusCode": 200, "body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

    assert parse_http_result(raw) is None
