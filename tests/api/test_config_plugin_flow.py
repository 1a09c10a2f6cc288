"""The request sequences of ``sls deploy`` / ``sls remove`` (plugin 0.7.8, contract §6.3-6.5).

The service: ``hello`` (sync ``GET /hello`` on ``http.request`` with ``cors: true``),
``worker`` (async ``user.created``) and a legacy ``event: user.updated`` subscription,
declared types ``user.created`` and ``http.request``, space ``acme-space``.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from eventgateway.store.base import ConfigStore
from eventgateway.store.memory import MemoryStore
from eventgateway.store.sqlite import SqliteStore
from tests.api.support_config import ConfigAPI, config_api, errors

SPACE = "acme-space"
META = {"service": "svc", "stage": "dev"}
FILTER = "?metadata.service=svc&metadata.stage=dev"
PROVIDER = {
    "region": "us-east-1",
    "awsAccessKeyId": "AKIAEXAMPLE",
    "awsSecretAccessKey": "secret",
}


def function_body(key: str) -> dict[str, Any]:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:svc-dev-{key}"
    return {
        "functionId": f"svc-dev-{key}",
        "type": "awslambda",
        "provider": {**PROVIDER, "arn": arn},
        "metadata": META,
    }


HELLO_SUB = {
    "functionId": "svc-dev-hello",
    "path": f"/{SPACE}/hello",
    "metadata": META,
    "type": "sync",
    "eventType": "http.request",
    "method": "GET",
}
WORKER_SUB = {  # no method: the gateway defaults to POST
    "functionId": "svc-dev-worker",
    "path": f"/{SPACE}/",
    "metadata": META,
    "type": "async",
    "eventType": "user.created",
}
LEGACY_SUB = {
    "functionId": "svc-dev-legacy",
    "path": f"/{SPACE}/",
    "metadata": META,
    "type": "async",
    "eventType": "user.updated",
    "method": "POST",
}
HELLO_CORS = {"path": f"/{SPACE}/hello", "method": "GET", "metadata": META}


@pytest.fixture(params=["memory", "sqlite"])
async def api(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[ConfigAPI]:
    store: ConfigStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "c.db")
    )
    async with config_api(store) as client:
        client.space = SPACE
        yield client


def expect(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def deploy(api: ConfigAPI) -> None:
    """One ``sls deploy``, replaying the plugin's requests and its reactions to answers."""
    http, url = api.http, api.url
    known = expect(await http.get(url("eventtypes") + FILTER), 200)
    known_names = {t["name"] for t in known["eventTypes"]}
    for name in ["user.created", "http.request"]:
        if name not in known_names:
            expect(await http.post(url("eventtypes"), json={"name": name, "metadata": META}), 201)
    # Used but not declared: POSTed on every deploy, "already exists" ignored.
    used = await http.post(url("eventtypes"), json={"name": "user.updated", "metadata": META})
    assert used.status_code == 201 or "already exists" in errors(used)

    functions = (expect(await http.get(url("functions") + "?"), 200))["functions"]
    subscriptions = (expect(await http.get(url("subscriptions") + "?"), 200))["subscriptions"]
    cors = (expect(await http.get(url("cors") + FILTER), 200))["cors"]
    registered = {f["functionId"]: f for f in functions if f["functionId"].startswith("svc-dev")}

    for key, sub in [("hello", HELLO_SUB), ("worker", WORKER_SUB), ("legacy", LEGACY_SUB)]:
        body = function_body(key)
        if body["functionId"] not in registered:
            expect(await http.post(url("functions"), json=body), 201)
            expect(await http.post(url("subscriptions"), json=sub), 201)
            if sub is HELLO_SUB:
                expect(await http.post(url("cors"), json=HELLO_CORS), 201)
            continue
        echoed = registered[body["functionId"]]
        assert (echoed["type"], echoed["provider"]) == (body["type"], body["provider"])
        matching = [
            s
            for s in subscriptions
            if s["functionId"] == body["functionId"]
            and s["path"] == sub["path"]
            and s["method"] == sub.get("method", "POST")
        ]
        assert matching, "the stored subscription must match what the plugin declares"
        if sub is HELLO_SUB:
            same = [c for c in cors if (c["method"], c["path"]) == ("GET", HELLO_CORS["path"])]
            if same:
                expect(await http.put(url("cors", same[0]["corsId"]), json=HELLO_CORS), 200)
            else:
                expect(await http.post(url("cors"), json=HELLO_CORS), 201)

    # Plugin bug: every CORS config listed before the deploy is deleted at the end.
    for config in cors:
        expect(await http.delete(url("cors", config["corsId"])), 204)


async def test_first_deploy_registers_everything(api: ConfigAPI) -> None:
    await deploy(api)

    functions = (await api.http.get(api.url("functions") + FILTER)).json()["functions"]
    subscriptions = (await api.http.get(api.url("subscriptions") + FILTER)).json()["subscriptions"]
    cors = (await api.http.get(api.url("cors") + FILTER)).json()["cors"]
    assert [f["functionId"] for f in functions] == [
        "svc-dev-worker",
        "svc-dev-legacy",
        "svc-dev-hello",
    ]
    assert functions[2] == {"space": SPACE, **function_body("hello")}
    assert {(s["type"], s["eventType"], s["path"], s["method"]) for s in subscriptions} == {
        ("sync", "http.request", f"/{SPACE}/hello", "GET"),
        ("async", "user.created", f"/{SPACE}/", "POST"),
        ("async", "user.updated", f"/{SPACE}/", "POST"),
    }
    assert [c["corsId"] for c in cors] == [f"GET%2F{SPACE}%2Fhello"]


async def test_redeploys_alternate_cors_delete_and_create(api: ConfigAPI) -> None:
    await deploy(api)
    await deploy(api)  # PUT then DELETE of the CORS config (plugin bug)
    assert (await api.http.get(api.url("cors") + FILTER)).json() == {"cors": []}

    await deploy(api)  # POST again

    cors = (await api.http.get(api.url("cors") + FILTER)).json()["cors"]
    assert [c["corsId"] for c in cors] == [f"GET%2F{SPACE}%2Fhello"]
    subscriptions = (await api.http.get(api.url("subscriptions") + "?")).json()["subscriptions"]
    assert len(subscriptions) == 3


async def test_lower_case_method_resubscribes_into_409_and_cors_400(api: ConfigAPI) -> None:
    await deploy(api)
    expect(await api.http.post(api.url("functions"), json=function_body("lower")), 201)
    sub = {**HELLO_SUB, "functionId": "svc-dev-lower", "path": f"/{SPACE}/lower", "method": "get"}

    first = await api.http.post(api.url("subscriptions"), json=sub)
    again = await api.http.post(api.url("subscriptions"), json=sub)
    cors = await api.http.post(api.url("cors"), json={**HELLO_CORS, "method": "get"})

    assert (expect(first, 201))["method"] == "GET"
    assert again.status_code == 409
    assert "already exists" in errors(again)
    assert cors.status_code == 400


async def test_remove_deletes_subscriptions_types_and_functions(api: ConfigAPI) -> None:
    await deploy(api)
    http, url = api.http, api.url

    for sub in (expect(await http.get(url("subscriptions") + "?"), 200))["subscriptions"]:
        expect(await http.delete(url("subscriptions", sub["subscriptionId"])), 204)
    for event_type in (expect(await http.get(url("eventtypes") + "?"), 200))["eventTypes"]:
        expect(await http.delete(url("eventtypes", event_type["name"])), 204)
    for function in (expect(await http.get(url("functions") + "?"), 200))["functions"]:
        expect(await http.delete(url("functions", function["functionId"])), 204)

    assert (await http.get(url("functions"))).json() == {"functions": []}
    assert (await http.get(url("eventtypes"))).json() == {"eventTypes": []}
    assert len((await http.get(url("cors"))).json()["cors"]) == 1  # remove keeps CORS


async def test_shared_event_type_blocks_remove_with_400(api: ConfigAPI) -> None:
    await deploy(api)
    await api.function("other-service-fn")
    await api.subscription(type="async", eventType="user.created", functionId="other-service-fn")

    response = await api.http.delete(api.url("eventtypes", "user.created"))

    assert response.status_code == 400
