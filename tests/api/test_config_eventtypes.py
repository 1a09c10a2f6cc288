"""Configuration API: event types (contract §3.2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from tests.api.support_config import ConfigAPI, config_api, errors


@pytest.fixture
async def api() -> AsyncIterator[ConfigAPI]:
    async with config_api() as client:
        yield client


async def test_create_answers_201_with_the_stored_object(api: ConfigAPI) -> None:
    response = await api.post("eventtypes", {"name": "user.created"})

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.text == '{"space":"default","name":"user.created"}\n'


async def test_create_ignores_a_space_in_the_body(api: ConfigAPI) -> None:
    created = await api.created("eventtypes", {"name": "e1", "space": "other"}, space="acme")

    assert created == {"space": "acme", "name": "e1"}


async def test_create_duplicate_is_409(api: ConfigAPI) -> None:
    await api.event_type("user.created")

    response = await api.post("eventtypes", {"name": "user.created"})

    assert response.status_code == 409
    assert errors(response) == 'Event Type "user.created" already exists.'


async def test_create_with_unknown_authorizer_is_400(api: ConfigAPI) -> None:
    # The original answered 500 here (unmapped error); 400 is the deliberate fix.
    response = await api.post("eventtypes", {"name": "secured", "authorizerId": "auth"})

    assert response.status_code == 400
    assert errors(response) == "Authorizer function doesn't exists."


async def test_create_with_authorizer_and_metadata(api: ConfigAPI) -> None:
    await api.function("auth")

    created = await api.event_type("secured", authorizerId="auth", metadata={"service": "s"})

    assert created == {
        "space": "default",
        "name": "secured",
        "authorizerId": "auth",
        "metadata": {"service": "s"},
    }


async def test_create_without_name_is_400(api: ConfigAPI) -> None:
    response = await api.post("eventtypes", {})

    assert response.status_code == 400
    assert errors(response) == (
        "Event Type doesn't validate. Validation error: Key: 'Type.Name' "
        "Error:Field validation for 'Name' failed on the 'required' tag"
    )


async def test_get_one(api: ConfigAPI) -> None:
    await api.event_type("user.created")

    response = await api.http.get(api.url("eventtypes", "user.created"))

    assert response.status_code == 200
    assert response.text == '{"space":"default","name":"user.created"}\n'


async def test_get_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.get(api.url("eventtypes", "nope"))

    assert response.status_code == 404
    assert errors(response) == 'Event Type "nope" not found.'


async def test_list_is_wrapped_and_sorted_descending(api: ConfigAPI) -> None:
    for name in ["b", "c", "a"]:
        await api.event_type(name)

    response = await api.http.get(api.url("eventtypes") + "?")

    assert response.status_code == 200
    assert response.text.endswith("]}\n")
    assert [e["name"] for e in response.json()["eventTypes"]] == ["c", "b", "a"]


async def test_empty_list_is_an_empty_array(api: ConfigAPI) -> None:
    response = await api.http.get(api.url("eventtypes", space="never-used"))

    assert response.status_code == 200
    assert response.text == '{"eventTypes":[]}\n'


async def test_metadata_filters_are_anded_and_other_params_ignored(api: ConfigAPI) -> None:
    await api.event_type("match", metadata={"service": "s", "stage": "dev"})
    await api.event_type("other-stage", metadata={"service": "s", "stage": "prod"})
    await api.event_type("bare")

    response = await api.http.get(
        api.url("eventtypes"),
        params={"metadata.service": "s", "metadata.stage": "dev", "unrelated": "x"},
    )

    assert [e["name"] for e in response.json()["eventTypes"]] == ["match"]


async def test_update_replaces_authorizer_and_metadata(api: ConfigAPI) -> None:
    await api.function("auth")
    await api.event_type("secured", authorizerId="auth")

    response = await api.http.put(
        api.url("eventtypes", "secured"), json={"name": "ignored", "metadata": {"a": "b"}}
    )

    assert response.status_code == 200
    # Omitting authorizerId removes the authorizer (the plugin relies on it).
    assert response.text == '{"space":"default","name":"secured","metadata":{"a":"b"}}\n'
    stored = await api.http.get(api.url("eventtypes", "secured"))
    assert stored.json() == {"space": "default", "name": "secured", "metadata": {"a": "b"}}


async def test_update_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.put(api.url("eventtypes", "nope"), json={"name": "nope"})

    assert response.status_code == 404
    assert errors(response) == 'Event Type "nope" not found.'


async def test_update_with_unknown_authorizer_is_400(api: ConfigAPI) -> None:
    await api.event_type("secured")

    response = await api.http.put(
        api.url("eventtypes", "secured"), json={"name": "secured", "authorizerId": "ghost"}
    )

    assert response.status_code == 400
    assert errors(response) == "Authorizer function doesn't exists."


async def test_delete_answers_204_with_no_body(api: ConfigAPI) -> None:
    await api.event_type("user.created")

    response = await api.http.delete(api.url("eventtypes", "user.created"))

    assert response.status_code == 204
    assert response.content == b""
    assert (await api.http.get(api.url("eventtypes", "user.created"))).status_code == 404


async def test_delete_missing_is_404(api: ConfigAPI) -> None:
    response = await api.http.delete(api.url("eventtypes", "nope"))

    assert response.status_code == 404
    assert errors(response) == 'Event Type "nope" not found.'


async def test_delete_in_use_is_400(api: ConfigAPI) -> None:
    await api.event_type("user.created")
    await api.function("f1")
    await api.subscription(type="async", eventType="user.created", functionId="f1")

    response = await api.http.delete(api.url("eventtypes", "user.created"))

    assert response.status_code == 400
    assert errors(response) == (
        "Event type cannot be deleted because there are subscriptions using it."
    )


async def test_spaces_are_separate(api: ConfigAPI) -> None:
    await api.event_type("user.created", space="one")

    assert (
        await api.http.get(api.url("eventtypes", "user.created", space="two"))
    ).status_code == 404
    await api.event_type("user.created", space="two")


@pytest.mark.parametrize("name", ["a/b", "a b?c#d", "50%", "é/ü", "x\ny", "x\r\n"])
async def test_a_name_with_reserved_characters_is_addressed_percent_encoded(
    api: ConfigAPI, name: str
) -> None:
    # The original routed on the decoded path, so "a/b" could never be read or deleted.
    await api.event_type(name)
    item = api.url("eventtypes", quote(name, safe=""))

    got = await api.http.get(item)
    updated = await api.http.put(item, json={"metadata": {"k": "v"}})
    deleted = await api.http.delete(item)

    assert got.status_code == 200
    assert got.json() == {"space": "default", "name": name}
    assert updated.status_code == 200
    assert updated.json() == {"space": "default", "name": name, "metadata": {"k": "v"}}
    assert deleted.status_code == 204
    assert (await api.http.get(api.url("eventtypes"))).json() == {"eventTypes": []}


async def test_an_unencoded_slash_is_not_part_of_the_name(api: ConfigAPI) -> None:
    await api.event_type("a/b")

    response = await api.http.get(api.url("eventtypes", "a/b"))

    assert response.status_code == 404
    assert response.text == "404 page not found\n"
