"""Configuration API: CORS configurations (contract §3.5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.support_config import ConfigAPI, config_api, errors

DEFAULTS = {
    "allowedOrigins": ["*"],
    "allowedMethods": ["HEAD", "GET", "POST"],
    "allowedHeaders": ["Origin", "Accept", "Content-Type"],
    "allowCredentials": False,
}


@pytest.fixture
async def api() -> AsyncIterator[ConfigAPI]:
    async with config_api() as client:
        yield client


async def test_create_applies_defaults_and_derives_the_id(api: ConfigAPI) -> None:
    response = await api.post("cors", {"method": "GET", "path": "/test"})

    assert response.status_code == 201
    assert response.text == (
        '{"space":"default","corsId":"GET%2Ftest","method":"GET","path":"/test",'
        '"allowedOrigins":["*"],"allowedMethods":["HEAD","GET","POST"],'
        '"allowedHeaders":["Origin","Accept","Content-Type"],"allowCredentials":false}\n'
    )


async def test_create_keeps_given_settings(api: ConfigAPI) -> None:
    created = await api.created(
        "cors",
        {
            "method": "POST",
            "path": "/users/:id",
            "allowedOrigins": ["https://*.example.com"],
            "allowedMethods": ["POST", "OPTIONS"],
            "allowedHeaders": ["X-Api-Key"],
            "allowCredentials": True,
            "metadata": {"service": "s"},
        },
    )

    assert created == {
        "space": "default",
        "corsId": "POST%2Fusers%2F:id",
        "method": "POST",
        "path": "/users/:id",
        "allowedOrigins": ["https://*.example.com"],
        "allowedMethods": ["POST", "OPTIONS"],
        "allowedHeaders": ["X-Api-Key"],
        "allowCredentials": True,
        "metadata": {"service": "s"},
    }


async def test_create_duplicate_is_409(api: ConfigAPI) -> None:
    await api.created("cors", {"method": "GET", "path": "/test"})

    response = await api.post("cors", {"method": "GET", "path": "/test"})

    assert response.status_code == 409
    assert errors(response) == 'CORS configuration "GET%2Ftest" already exists.'


async def test_lower_case_method_is_400(api: ConfigAPI) -> None:
    response = await api.post("cors", {"method": "get", "path": "/test"})

    assert response.status_code == 400
    assert errors(response) == (
        "CORS configuration doesn't validate. Validation error: Key: 'CORS.Method' "
        "Error:Field validation for 'Method' failed on the "
        "'eq=GET|eq=POST|eq=DELETE|eq=PUT|eq=PATCH|eq=HEAD|eq=OPTIONS' tag"
    )


async def test_path_without_leading_slash_is_400(api: ConfigAPI) -> None:
    response = await api.post("cors", {"method": "GET", "path": "test"})

    assert response.status_code == 400
    assert errors(response) == (
        "CORS configuration doesn't validate. Validation error: Key: 'CORS.Path' "
        "Error:Field validation for 'Path' failed on the 'path' tag"
    )


async def test_get_by_raw_percent_encoded_id(api: ConfigAPI) -> None:
    created = await api.created("cors", {"method": "GET", "path": "/users/:id"})

    response = await api.http.get(api.url("cors", "GET%2Fusers%2F:id"))

    assert response.status_code == 200
    assert response.json() == created


async def test_get_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.get(api.url("cors", "GET%2Fnope"))

    assert response.status_code == 404
    assert errors(response) == 'CORS configuration "GET%2Fnope" not found.'


async def test_list_and_filters(api: ConfigAPI) -> None:
    await api.created("cors", {"method": "GET", "path": "/a", "metadata": {"stage": "dev"}})
    await api.created("cors", {"method": "POST", "path": "/a"})

    everything = await api.http.get(api.url("cors") + "?")
    filtered = await api.http.get(api.url("cors") + "?metadata.stage=dev")

    assert [c["corsId"] for c in everything.json()["cors"]] == ["POST%2Fa", "GET%2Fa"]
    assert [c["corsId"] for c in filtered.json()["cors"]] == ["GET%2Fa"]


async def test_update_replaces_settings_and_reapplies_defaults(api: ConfigAPI) -> None:
    await api.created("cors", {"method": "GET", "path": "/test", "allowedOrigins": ["https://a"]})

    response = await api.http.put(
        api.url("cors", "GET%2Ftest"),
        json={"method": "GET", "path": "/test", "allowCredentials": True, "metadata": {"m": "1"}},
    )

    assert response.status_code == 200
    assert response.json() == {
        "space": "default",
        "corsId": "GET%2Ftest",
        "method": "GET",
        "path": "/test",
        **DEFAULTS,
        "allowCredentials": True,
        "metadata": {"m": "1"},
    }


@pytest.mark.parametrize(
    ("change", "field"), [({"method": "POST"}, "Method"), ({"path": "/other"}, "Path")]
)
async def test_update_of_method_or_path_is_400(
    api: ConfigAPI, change: dict[str, str], field: str
) -> None:
    # The original answered 500 here; 400 is the deliberate fix.
    await api.created("cors", {"method": "GET", "path": "/test"})

    response = await api.http.put(
        api.url("cors", "GET%2Ftest"), json={"method": "GET", "path": "/test", **change}
    )

    assert response.status_code == 400
    assert errors(response) == (
        f"Invalid update. '{field}' of existing CORS configuration cannot be updated."
    )


async def test_update_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.put(api.url("cors", "GET%2Fx"), json={"method": "GET", "path": "/x"})

    assert response.status_code == 404
    assert errors(response) == 'CORS configuration "GET%2Fx" not found.'


async def test_delete_then_recreate(api: ConfigAPI) -> None:
    await api.created("cors", {"method": "GET", "path": "/test"})

    deleted = await api.http.delete(api.url("cors", "GET%2Ftest"))
    again = await api.post("cors", {"method": "GET", "path": "/test"})

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert again.status_code == 201


async def test_delete_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.delete(api.url("cors", "GET%2Ftest"))

    assert response.status_code == 404
    assert errors(response) == 'CORS configuration "GET%2Ftest" not found.'


async def test_id_with_an_escaped_space_round_trips(api: ConfigAPI) -> None:
    created = await api.created("cors", {"method": "GET", "path": "/a b"})

    response = await api.http.get(api.url("cors", created["corsId"]))

    assert created["corsId"] == "GET%2Fa%20b"
    assert response.json() == created


async def test_trailing_slash_on_an_item_looks_up_an_empty_id(api: ConfigAPI) -> None:
    # httprouter's catch-all also matched here; the raw last segment is empty.
    response = await api.http.get(api.url("cors") + "/")

    assert response.status_code == 404
    assert errors(response) == 'CORS configuration "" not found.'
