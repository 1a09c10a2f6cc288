"""The Events API end to end in one event loop: real receiver sockets, in-process gateway."""

from __future__ import annotations

import json

import pytest

from eventgateway.settings import Limits
from tests.support.inprocess import in_process_gateway
from tests.support.receiver import Receiver, Reply

CE01 = {
    "eventType": "user.created",
    "cloudEventsVersion": "0.1",
    "source": "/services/users",
    "eventID": "e-1",
    "contentType": "application/json",
    "data": {"name": "Ada"},
}
STRUCTURED = {"content-type": "application/cloudevents+json"}


async def test_event_without_subscribers_is_accepted_with_empty_202():
    async with in_process_gateway() as gw:
        response = await gw.events.post("/anything", json=CE01, headers=STRUCTURED)
    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    assert "content-type" not in response.headers


async def test_async_subscription_receives_the_event_as_cloudevents_json(receiver: Receiver):
    async with in_process_gateway() as gw:
        await gw.http_function("crm", receiver.url("/crm"))
        await gw.event_type("user.created")
        await gw.subscribe(type="async", eventType="user.created", functionId="crm", path="/acme")
        response = await gw.events.post(
            "/acme", content=json.dumps(CE01, separators=(",", ":")), headers=STRUCTURED
        )
        assert response.status_code == 202
        [call] = await receiver.wait_for(1, "/crm")
    assert call.method == "POST"
    assert call.headers["Content-Type"] == "application/cloudevents+json"
    assert call.body == (
        b'{"eventType":"user.created","cloudEventsVersion":"0.1","source":"/services/users",'
        b'"eventID":"e-1","contentType":"application/json","data":{"name":"Ada"}}'
    )


async def test_async_fan_out_reaches_every_subscriber(receiver: Receiver):
    async with in_process_gateway() as gw:
        await gw.event_type("user.created")
        for name in ("crm", "mail", "chat"):
            await gw.http_function(name, receiver.url(f"/{name}"))
            await gw.subscribe(
                type="async", eventType="user.created", functionId=name, path="/acme"
            )
        await gw.events.post("/acme", json=CE01, headers=STRUCTURED)
        await receiver.wait_for(3)
    assert sorted(call.path for call in receiver.calls) == ["/chat", "/crm", "/mail"]


async def test_sync_http_route_answers_with_the_functions_response(receiver: Receiver):
    receiver.reply_json(
        "/get-user",
        {"statusCode": 201, "headers": {"X-Custom": "yes"}, "body": '{"id":"42"}'},
    )
    async with in_process_gateway() as gw:
        await gw.http_function("getUser", receiver.url("/get-user"))
        await gw.event_type("http.request")
        await gw.subscribe(
            type="sync",
            eventType="http.request",
            functionId="getUser",
            path="/acme/users/:id",
            method="GET",
        )
        response = await gw.events.get("/acme/users/42?verbose=1")
    assert response.status_code == 201
    assert response.headers["x-custom"] == "yes"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == b'{"id":"42"}'
    event = receiver.calls[0].json()
    assert event["eventType"] == "http.request"
    assert event["data"]["params"] == {"id": "42"}
    assert event["data"]["query"] == {"verbose": ["1"]}
    assert event["data"]["method"] == "GET"
    assert event["data"]["path"] == "/acme/users/42"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(status=500, body=b"boom"), "Function call failed. Please check logs."),
        (Reply(status=200, body=b"not json"), "HTTP response object malformed"),
        (Reply(status=200, body=b'{"body": 5}'), "HTTP response object malformed"),
        (Reply(status=200, body=b'{"headers": {"a": 1}}'), "HTTP response object malformed"),
    ],
)
async def test_failing_or_malformed_sync_function_gives_500(receiver: Receiver, reply, message):
    receiver.reply("/f", reply)
    async with in_process_gateway() as gw:
        await gw.http_function("f", receiver.url("/f"))
        await gw.event_type("http.request")
        await gw.subscribe(
            type="sync", eventType="http.request", functionId="f", path="/acme/x", method="GET"
        )
        response = await gw.events.get("/acme/x")
    assert response.status_code == 500
    assert response.json() == {"errors": [{"message": message}]}


async def test_empty_function_reply_object_means_200_with_empty_body(receiver: Receiver):
    receiver.reply("/f", Reply(body=b"{}"))
    async with in_process_gateway() as gw:
        await gw.http_function("f", receiver.url("/f"))
        await gw.event_type("http.request")
        await gw.subscribe(
            type="sync", eventType="http.request", functionId="f", path="/acme/x", method="GET"
        )
        response = await gw.events.get("/acme/x")
    assert (response.status_code, response.content) == (200, b"")
    assert "content-type" not in response.headers


async def test_unreachable_sync_function_gives_500():
    async with in_process_gateway() as gw:
        await gw.http_function("gone", "http://127.0.0.1:9/nothing-listens-here")
        await gw.event_type("http.request")
        await gw.subscribe(
            type="sync", eventType="http.request", functionId="gone", path="/acme/x", method="GET"
        )
        response = await gw.events.get("/acme/x")
    assert response.status_code == 500
    assert response.json()["errors"][0]["message"] == "Function call failed. Please check logs."


async def test_authorizer_denial_is_403_and_allowance_reaches_the_function(receiver: Receiver):
    receiver.reply_json("/deny", {"error": {"message": "no"}})
    receiver.reply_json("/allow", {"authorization": {"principalId": "u1", "context": {"k": "v"}}})
    receiver.reply_json("/f", {"statusCode": 200, "body": "hi"})
    async with in_process_gateway() as gw:
        await gw.http_function("deny", receiver.url("/deny"))
        await gw.http_function("allow", receiver.url("/allow"))
        await gw.http_function("f", receiver.url("/f"))
        await gw.event_type("secured.a", authorizerId="deny")
        await gw.event_type("secured.b", authorizerId="allow")
        for name in ("secured.a", "secured.b"):
            await gw.subscribe(
                type="sync", eventType=name, functionId="f", path="/acme/s", method="POST"
            )
        denied = await gw.events.post(
            "/acme/s", json={**CE01, "eventType": "secured.a"}, headers=STRUCTURED
        )
        allowed = await gw.events.post(
            "/acme/s", json={**CE01, "eventType": "secured.b"}, headers=STRUCTURED
        )
    assert (denied.status_code, denied.content) == (403, b"")
    assert (allowed.status_code, allowed.content) == (200, b"hi")
    auth_payload = receiver.calls_to("/deny")[0].json()
    assert auth_payload["event"]["eventType"] == "secured.a"
    assert auth_payload["request"]["body"] is None
    assert auth_payload["request"]["path"] == "/acme/s"
    delivered = receiver.calls_to("/f")[0].json()
    assert delivered["extensions"]["eventgateway"]["authorization"] == {
        "principalId": "u1",
        "context": {"k": "v"},
    }


async def test_system_namespace_cannot_be_emitted():
    async with in_process_gateway() as gw:
        response = await gw.events.post(
            "/", json={**CE01, "eventType": "eventgateway.event.received"}, headers=STRUCTURED
        )
    assert response.status_code == 400
    assert "eventgateway." in response.json()["errors"][0]["message"]


async def test_invalid_cloudevent_is_400_with_the_contract_error_shape():
    async with in_process_gateway() as gw:
        response = await gw.events.post("/", content=b"{not json", headers=STRUCTURED)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    [error] = response.json()["errors"]
    assert error["message"]


async def test_oversized_body_is_413_and_oversized_headers_431():
    async with in_process_gateway(limits=Limits(max_body_bytes=100, max_header_bytes=500)) as gw:
        big_body = await gw.events.post("/", content=b"x" * 101)
        big_headers = await gw.events.get("/", headers={"x-filler": "y" * 600})
    assert big_body.status_code == 413
    assert "100 bytes" in big_body.json()["errors"][0]["message"]
    assert big_headers.status_code == 431


async def test_full_queue_answers_429_with_retry_after(receiver: Receiver):
    receiver.reply("/slow", Reply(delay_s=2))
    async with in_process_gateway(
        limits=Limits(queue_max_deliveries=2, dispatch_concurrency=1)
    ) as gw:
        await gw.http_function("slow", receiver.url("/slow"))
        await gw.event_type("user.created")
        await gw.subscribe(type="async", eventType="user.created", functionId="slow", path="/acme")
        statuses = [
            (
                await gw.events.post(
                    "/acme", json={**CE01, "eventID": f"e-{n}"}, headers=STRUCTURED
                )
            ).status_code
            for n in range(4)
        ]
        last = await gw.events.post("/acme", json={**CE01, "eventID": "e-last"}, headers=STRUCTURED)
    assert statuses[:2] == [202, 202]
    assert last.status_code == 429
    assert last.headers["retry-after"] == "1"


async def test_cors_preflight_is_answered_by_the_gateway(receiver: Receiver):
    async with in_process_gateway() as gw:
        await gw.create(
            "cors",
            {"method": "POST", "path": "/acme/hello", "allowedOrigins": ["http://*.example.com"]},
        )
        preflight = await gw.events.options(
            "/acme/hello",
            headers={"Origin": "http://app.example.com", "Access-Control-Request-Method": "POST"},
        )
        actual = await gw.events.post(
            "/acme/hello", json=CE01, headers={**STRUCTURED, "Origin": "http://app.example.com"}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://app.example.com"
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert actual.status_code == 202
    assert actual.headers["access-control-allow-origin"] == "http://app.example.com"


async def test_cors_update_takes_effect_at_once():
    async with in_process_gateway() as gw:
        created = await gw.create(
            "cors", {"method": "GET", "path": "/acme/c", "allowedOrigins": ["http://a.test"]}
        )
        headers = {"Origin": "http://b.test"}
        before = await gw.events.get("/acme/c", headers=headers)
        updated = await gw.config.put(
            f"/v1/spaces/acme/cors/{created['corsId']}",
            json={"method": "GET", "path": "/acme/c", "allowedOrigins": ["http://b.test"]},
        )
        assert updated.status_code == 200, updated.text
        after = await gw.events.get("/acme/c", headers=headers)
    assert "access-control-allow-origin" not in before.headers
    assert after.headers["access-control-allow-origin"] == "http://b.test"


async def test_hosted_domain_routes_space_subdomain_to_the_space_prefix(receiver: Receiver):
    receiver.reply_json("/f", {"statusCode": 200, "body": "from acme"})
    async with in_process_gateway(domain="localhost") as gw:
        await gw.http_function("f", receiver.url("/f"))
        await gw.event_type("http.request")
        await gw.subscribe(
            type="sync", eventType="http.request", functionId="f", path="/acme/hello", method="GET"
        )
        hosted = await gw.events.get("/hello", headers={"Host": "acme.localhost:4000"})
        plain = await gw.events.get("/acme/hello")
        other = await gw.events.get("/hello")
    assert (hosted.status_code, hosted.content) == (200, b"from acme")
    assert plain.status_code == 200
    assert other.status_code == 202
    assert receiver.calls[0].json()["data"]["path"] == "/hello"


@pytest.mark.parametrize("domain", [None, "example.com"])
async def test_a_localhost_subdomain_names_the_space_without_any_flag(
    receiver: Receiver, domain: str | None
):
    # The walkthrough's laptop URL, http://<space>.localhost:4000, needs no --domain (and
    # `eg dev` has none); --domain adds its own domain beside it.
    receiver.reply_json("/f", {"statusCode": 200, "body": "from acme"})
    async with in_process_gateway(domain=domain) as gw:
        await gw.http_function("f", receiver.url("/f"))
        await gw.event_type("http.request")
        await gw.subscribe(
            type="sync", eventType="http.request", functionId="f", path="/acme/hello", method="GET"
        )
        hosted = await gw.events.get("/hello", headers={"Host": "acme.localhost:4000"})
        bare = await gw.events.get("/hello", headers={"Host": "localhost:4000"})
        address = await gw.events.get("/hello", headers={"Host": "127.0.0.1:4000"})
        other = await gw.events.get("/hello", headers={"Host": "acme.example.org"})
    assert (hosted.status_code, hosted.content) == (200, b"from acme")
    assert [r.status_code for r in (bare, address, other)] == [202, 202, 202]


async def test_draining_gateway_answers_503():
    async with in_process_gateway() as gw:
        gw.gateway.begin_drain()
        response = await gw.events.post("/", json=CE01, headers=STRUCTURED)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"  # another instance can take the event
    assert response.json() == {"errors": [{"message": "Service Unavailable"}]}


async def test_cloudevents_1_0_batch_routes_each_entry(receiver: Receiver):
    async with in_process_gateway() as gw:
        await gw.event_type("a.happened")
        await gw.event_type("b.happened")
        await gw.http_function("fa", receiver.url("/fa"))
        await gw.http_function("fb", receiver.url("/fb"))
        await gw.subscribe(type="async", eventType="a.happened", functionId="fa", path="/acme")
        await gw.subscribe(type="async", eventType="b.happened", functionId="fb", path="/acme")
        batch = [
            {
                "specversion": "1.0",
                "id": "1",
                "source": "/s",
                "type": "a.happened",
                "data": {"n": 1},
            },
            {
                "specversion": "1.0",
                "id": "2",
                "source": "/s",
                "type": "b.happened",
                "data": {"n": 2},
            },
        ]
        response = await gw.events.post(
            "/acme",
            content=json.dumps(batch),
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        assert response.status_code == 202
        await receiver.wait_for(2)
    [a] = receiver.calls_to("/fa")
    assert a.json()["specversion"] == "1.0"
    assert a.json()["id"] == "1"
    assert a.json()["data"] == {"n": 1}
    assert receiver.calls_to("/fb")[0].json()["id"] == "2"


async def test_subscription_change_routes_without_restart(receiver: Receiver):
    async with in_process_gateway() as gw:
        await gw.http_function("f", receiver.url("/f"))
        await gw.event_type("user.created")
        sub = await gw.subscribe(
            type="async", eventType="user.created", functionId="f", path="/acme"
        )
        await gw.events.post("/acme", json=CE01, headers=STRUCTURED)
        await receiver.wait_for(1)
        deleted = await gw.config.delete(f"/v1/spaces/acme/subscriptions/{sub['subscriptionId']}")
        assert deleted.status_code == 204
        await gw.events.post("/acme", json={**CE01, "eventID": "e-2"}, headers=STRUCTURED)
        await gw.subscribe(type="async", eventType="user.created", functionId="f", path="/acme/2")
        await gw.events.post("/acme/2", json={**CE01, "eventID": "e-3"}, headers=STRUCTURED)
        await receiver.wait_for(2)
    assert len(receiver.calls) == 2


async def test_system_events_on_a_space_path_are_that_spaces_only(receiver: Receiver):
    # The hosted original's routing: a subscription on POST /<space>/ to a system event
    # gets the events of its own space, never another tenant's.
    async with in_process_gateway() as gw:
        for space in ("alpha", "bravo"):
            await gw.http_function("watch", receiver.url(f"/{space}"), space=space)
            await gw.event_type("eventgateway.event.received", space=space)
            await gw.subscribe(
                space=space,
                type="async",
                eventType="eventgateway.event.received",
                functionId="watch",
                path=f"/{space}/",
            )
        for path in ("/alpha/users", "/alpha/orders"):
            response = await gw.events.post(path, json={"name": "Ada"})
            assert response.status_code == 202
        calls = await receiver.wait_for(2, "/alpha")
        # bravo's subscriber: a third emit into bravo arrives, and nothing of alpha's did
        await gw.events.post("/bravo/users", json={"name": "Bob"})
        [bravo] = await receiver.wait_for(1, "/bravo")

    assert sorted(call.json()["data"]["path"] for call in calls) == [
        "/alpha/orders",
        "/alpha/users",
    ]
    assert bravo.json()["data"]["path"] == "/bravo/users"
    assert len([call for call in receiver.calls if call.path == "/bravo"]) == 1


async def test_received_counter_labels_only_configured_types():
    # Types come from clients: each unconfigured one would otherwise be a new series.
    async with in_process_gateway() as gw:
        await gw.event_type("user.created")
        for index in range(5):
            event = {**CE01, "eventType": f"junk.{index}", "eventID": f"j-{index}"}
            assert (await gw.events.post("/x", json=event, headers=STRUCTURED)).status_code == 202
        assert (await gw.events.post("/x", json=CE01, headers=STRUCTURED)).status_code == 202
        metrics = (await gw.config.get("/v1/metrics")).text
    received = [
        line
        for line in metrics.splitlines()
        if line.startswith("eventgateway_events_received_total{")
    ]
    assert sorted(received) == [
        'eventgateway_events_received_total{space="",type="custom"} 5.0',
        'eventgateway_events_received_total{space="",type="user.created"} 1.0',
    ]


async def test_received_counter_follows_the_configuration():
    async with in_process_gateway() as gw:
        await gw.events.post("/x", json=CE01, headers=STRUCTURED)
        await gw.event_type("user.created")
        await gw.events.post("/x", json=CE01, headers=STRUCTURED)
        metrics = (await gw.config.get("/v1/metrics")).text
    assert 'eventgateway_events_received_total{space="",type="custom"} 1.0' in metrics
    assert 'eventgateway_events_received_total{space="",type="user.created"} 1.0' in metrics
