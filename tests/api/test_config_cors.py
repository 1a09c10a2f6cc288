"""Configuration API: CORS configurations (contract §3.5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from eventgateway.model.entities import encode_entity
from eventgateway.model.validate import parse_cors
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


@pytest.mark.parametrize(
    "written",
    [
        "GET%2Fcfgt%2Fusers%2F:id%2F%2Arest",  # the ID as answered
        "GET%2fcfgt%2fusers%2f%3Aid%2f*rest",  # the same, encoded another way
    ],
)
async def test_an_id_round_trips_however_it_is_percent_encoded(
    api: ConfigAPI, written: str
) -> None:
    created = await api.created("cors", {"method": "GET", "path": "/cfgt/users/:id/*rest"})
    item = api.url("cors", written)

    got = await api.http.get(item)
    updated = await api.http.put(item, json={**created, "allowCredentials": True})
    deleted = await api.http.delete(item)

    assert created["corsId"] == "GET%2Fcfgt%2Fusers%2F:id%2F%2Arest"
    assert got.json() == created
    assert updated.json() == {**created, "allowCredentials": True}
    assert deleted.status_code == 204


@pytest.mark.parametrize(
    ("existing", "new", "conflict"),
    [
        (None, "/cfgt/x/*p/y", "wildcard must be the last parameter"),
        ("/cfgt/w/*p", "/cfgt/w/:id", 'wildcard with different name ("p") already defined: '),
        ("/cfgt/w/:id", "/cfgt/w/*p", 'wildcard with different name ("id") already defined: '),
        ("/cfgt/w/:id", "/cfgt/w/me", 'parameter with different name ("id") already defined: '),
    ],
)
async def test_a_path_the_routing_table_would_skip_is_400(
    api: ConfigAPI, existing: str | None, new: str, conflict: str
) -> None:
    # The same check as sync subscription paths; the original stored these (201) and
    # then silently never applied them.
    if existing is not None:
        await api.created("cors", {"method": "GET", "path": existing})

    response = await api.post("cors", {"method": "GET", "path": new})

    assert response.status_code == 400
    assert errors(response).startswith(f"CORS configuration path conflict: {conflict}")
    listed = (await api.http.get(api.url("cors"))).json()["cors"]
    assert listed == ([] if existing is None else [stored_defaults(existing)])


def stored_defaults(path: str) -> dict[str, object]:
    return {
        "space": "default",
        "corsId": "GET" + quote(path, safe=":"),
        "method": "GET",
        "path": path,
        **DEFAULTS,
    }


async def test_paths_of_other_methods_do_not_conflict(api: ConfigAPI) -> None:
    await api.created("cors", {"method": "GET", "path": "/cfgt/w/*p"})

    response = await api.post("cors", {"method": "POST", "path": "/cfgt/w/:id"})

    assert response.status_code == 201


async def test_the_same_route_in_another_space_is_409(api: ConfigAPI) -> None:
    # CORS entries are routed across spaces: the second would never apply.
    await api.created("cors", {"method": "GET", "path": "/cfgt/shared"}, space="one")

    response = await api.post("cors", {"method": "GET", "path": "/cfgt/shared"}, space="two")

    assert response.status_code == 409
    assert errors(response) == 'CORS configuration "GET%2Fcfgt%2Fshared" already exists.'


async def test_an_update_of_an_entry_the_table_skips_is_400(api: ConfigAPI) -> None:
    # Stored before the check existed: "/cfgt/w/*p" sorts first, so routing keeps it.
    for path in ("/cfgt/w/*p", "/cfgt/w/:id"):
        entry = parse_cors("default", {"method": "GET", "path": path})
        await api.store.create("cors", "default", entry.cors_id, encode_entity(entry))

    kept = await api.http.put(
        api.url("cors", "GET%2Fcfgt%2Fw%2F%2Ap"), json={"method": "GET", "path": "/cfgt/w/*p"}
    )
    skipped = await api.http.put(
        api.url("cors", "GET%2Fcfgt%2Fw%2F:id"), json={"method": "GET", "path": "/cfgt/w/:id"}
    )

    assert kept.status_code == 200
    assert skipped.status_code == 400
    assert errors(skipped).startswith("CORS configuration path conflict: ")
