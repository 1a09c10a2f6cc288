"""Bad input never produces a 500: malformed bodies, wrong types, bad spaces and IDs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.support_config import ConfigAPI, config_api, errors

GARBAGE = [
    b"",
    b"   ",
    b"{",
    b'{"name":',
    b"[]",
    b"null",
    b'"text"',
    b"12",
    b"true",
    b"\xff\xfe\x00",
    b"{'single': 'quotes'}",
    b'{"a": NaN}',
    b"[" * 20000,
    b'{"name": 1, "functionId": [], "type": {}, "provider": 5, "method": 1, "path": 2}',
    b'{"metadata": "x", "allowedOrigins": "x", "allowCredentials": "yes"}',
    b'{"metadata": {"k": 1}, "allowedHeaders": [1]}',
    b'{"name": "x", "metadata": {"k": 1e400}}',  # out of float64's range, as Go refused
    b'{"name": "x", "timeout": ' + b"9" * 5000 + b"}",  # an integer of 5,000 digits
]
TEMPLATES = {
    "eventtypes": "Event Type doesn't validate. Validation error: ",
    "functions": "Function doesn't validate. Validation error: ",
    "subscriptions": "Subscription doesn't validate. Validation error: ",
    "cors": "CORS configuration doesn't validate. Validation error: ",
}


@pytest.fixture
async def api() -> AsyncIterator[ConfigAPI]:
    async with config_api() as client:
        yield client


@pytest.mark.parametrize("resource", list(TEMPLATES))
@pytest.mark.parametrize("body", GARBAGE, ids=range(len(GARBAGE)))
async def test_garbage_create_is_400_with_the_template(
    api: ConfigAPI, resource: str, body: bytes
) -> None:
    response = await api.http.post(
        api.url(resource), content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert errors(response).startswith(TEMPLATES[resource])


@pytest.mark.parametrize(
    ("resource", "item"),
    [
        ("eventtypes", "e"),
        ("functions", "f"),
        ("subscriptions", "YXN5bmMsZSxmLCUyRixQT1NU"),
        ("cors", "GET%2Fx"),
    ],
)
@pytest.mark.parametrize("body", GARBAGE[:6], ids=range(6))
async def test_garbage_update_is_400_or_404(
    api: ConfigAPI, resource: str, item: str, body: bytes
) -> None:
    response = await api.http.put(api.url(resource, item), content=body)

    assert response.status_code in (400, 404), response.text
    assert errors(response)


async def test_empty_body_reads_eof(api: ConfigAPI) -> None:
    response = await api.http.post(api.url("functions"), content=b"")

    assert response.status_code == 400
    assert errors(response) == "Function doesn't validate. Validation error: EOF"


# A lone UTF-16 surrogate escape in any string, as Go's decoder read it: U+FFFD.
SURROGATE_BODIES = {
    "eventtypes": rb'{"name": "e\ud800", "metadata": {"k\udc00": "\udbff"}}',
    "functions": rb'{"functionId": "g", "type": "http", "provider": {"url": "http://x/\ud800"}}',
    "subscriptions": rb'{"type": "async", "eventType": "e", "functionId": "f", "path": "/\udc00"}',
    "cors": rb'{"method": "GET", "path": "/\uD800", "allowedHeaders": ["X-\udfff"]}',
}


@pytest.mark.parametrize("resource", list(SURROGATE_BODIES))
async def test_lone_surrogates_are_read_as_replacement_characters(
    api: ConfigAPI, resource: str
) -> None:
    await api.event_type("e")
    await api.function("f")

    response = await api.http.post(api.url(resource), content=SURROGATE_BODIES[resource])

    assert response.status_code == 201, response.text
    assert "\ufffd" in response.text
    listed = await api.http.get(api.url(resource))
    assert listed.status_code == 200


async def test_lone_surrogates_in_an_update_are_read_as_replacement_characters(
    api: ConfigAPI,
) -> None:
    await api.event_type("e")

    response = await api.http.put(
        api.url("eventtypes", "e"), content=rb'{"metadata": {"k": "\udc00"}}'
    )

    assert response.status_code == 200, response.text
    assert response.json()["metadata"] == {"k": "\ufffd"}


async def test_deep_nesting_is_a_400(api: ConfigAPI) -> None:
    response = await api.http.post(api.url("eventtypes"), content=b"[" * 20000)

    assert response.status_code == 400
    assert errors(response) == "Event Type doesn't validate. Validation error: exceeded max depth"


async def test_keys_are_matched_case_insensitively(api: ConfigAPI) -> None:
    response = await api.http.post(
        api.url("functions"),
        content=b'{"FunctionID": "f", "Type": "http", "PROVIDER": {"Url": "http://x"}, "junk": 1}',
    )

    assert response.status_code == 201
    assert response.json() == {
        "space": "default",
        "functionId": "f",
        "type": "http",
        "provider": {"url": "http://x"},
    }


@pytest.mark.parametrize("resource", list(TEMPLATES))
@pytest.mark.parametrize(("space", "rule"), [("ab", "min"), ("a%20b", "space"), ("a+b", "space")])
async def test_invalid_space_on_write_is_400(
    api: ConfigAPI, resource: str, space: str, rule: str
) -> None:
    bodies = {
        "eventtypes": {"name": "e"},
        "functions": {"functionId": "f", "type": "http", "provider": {"url": "http://x"}},
        "subscriptions": {"type": "async", "eventType": "e", "functionId": "f"},
        "cors": {"method": "GET", "path": "/x"},
    }

    response = await api.http.post(f"/v1/spaces/{space}/{resource}", json=bodies[resource])

    assert response.status_code == 400
    assert f"Field validation for 'Space' failed on the '{rule}' tag" in errors(response)


@pytest.mark.parametrize(
    ("resource", "item"),
    [("eventtypes", "e"), ("functions", "f"), ("subscriptions", "s"), ("cors", "GET%2Fx")],
)
async def test_reads_on_any_space_are_404_or_empty(
    api: ConfigAPI, resource: str, item: str
) -> None:
    listed = await api.http.get(f"/v1/spaces/x/{resource}")
    one = await api.http.get(f"/v1/spaces/x/{resource}/{item}")
    deleted = await api.http.delete(f"/v1/spaces/x/{resource}/{item}")

    assert listed.status_code == 200
    assert next(iter(listed.json().values())) == []
    assert one.status_code == 404
    assert deleted.status_code == 404


@pytest.mark.parametrize("function_id", ["with space", "a:b", "é"])
async def test_invalid_function_id_in_the_url_is_400_on_update(
    api: ConfigAPI, function_id: str
) -> None:
    response = await api.http.put(
        api.url("functions", function_id), json={"type": "http", "provider": {"url": "http://x"}}
    )

    assert response.status_code == 400
    assert errors(response).endswith("failed on the 'functionid' tag")


async def test_encoded_slash_in_an_id_is_one_id(api: ConfigAPI) -> None:
    # The ID comes from the raw path: a%2Fb is the ID "a/b" (the original: 404 page not found).
    response = await api.http.get(api.url("functions", "a%2Fb"))

    assert response.status_code == 404
    assert errors(response) == 'Function "a/b" not found.'


@pytest.mark.parametrize("resource", ["eventtypes", "functions", "subscriptions"])
async def test_two_raw_segments_after_a_collection_are_an_unknown_route(
    api: ConfigAPI, resource: str
) -> None:
    for path in ("a/b", "a/b/", "/a"):
        response = await api.http.get(api.url(resource, path))

        assert response.status_code == 404, path
        assert response.text == "404 page not found\n"


@pytest.mark.parametrize(
    ("resource", "body", "field"),
    [
        ("functions", {"functionId": "f" * 256, "type": "http", "provider": {"url": "http://x"}},
         "'Function.ID'"),
        ("eventtypes", {"name": "t" * 256}, "'Type.Name'"),
        ("subscriptions", {"type": "async", "eventType": "t" * 256, "functionId": "f"},
         "'Subscription.EventType'"),
        ("subscriptions", {"type": "async", "eventType": "t", "functionId": "f" * 256},
         "'Subscription.FunctionID'"),
    ],
)  # fmt: skip
async def test_a_name_over_255_characters_is_400_naming_the_field(
    api: ConfigAPI, resource: str, body: dict[str, object], field: str
) -> None:
    # In cluster mode names become NATS subject tokens; QA broke an instance with 3,000.
    response = await api.post(resource, body)

    assert response.status_code == 400
    assert f"Key: {field} Error:Field validation for" in errors(response)
    assert errors(response).endswith("failed on the 'max' tag")
    ok = await api.post("functions", {"functionId": "f" * 255, "type": "http",
                                      "provider": {"url": "http://x"}})  # fmt: skip
    assert ok.status_code == 201
