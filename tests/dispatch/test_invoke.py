"""One attempt through the real HttpProvider against a real receiver (contract §2.5, §2.6, §4.6)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from eventgateway.dispatch.invoke import Authorization, Invoker, apply_authorization
from eventgateway.events.codec import encode_event
from eventgateway.events.model import CloudEvent
from eventgateway.model.entities import Function
from eventgateway.providers.http import HttpProvider
from eventgateway.providers.registry import ProviderRegistry
from tests.support.ports import free_port
from tests.support.receiver import Receiver, Reply

REQUEST = {
    "headers": {"X-Api-Key": "k"},
    "query": {},
    "body": None,
    "host": "localhost:4000",
    "path": "/acme/users",
    "method": "POST",
    "params": None,
}


def http_function(url: str, function_id: str = "fn", space: str = "acme") -> Function:
    return Function(space=space, function_id=function_id, type="http", provider={"url": url})


def v1_event(event_type: str = "user.created", **extensions: Any) -> CloudEvent:
    return CloudEvent(
        "1.0",
        "e-1",
        "/users",
        event_type,
        datacontenttype="application/json",
        extensions=extensions,
        data=msgspec.Raw(b'{"name":"Ada"}'),
    )


def v01_event(extensions: dict[str, Any] | None = None) -> CloudEvent:
    return CloudEvent(
        "0.1",
        "e-2",
        "/users",
        "user.created",
        datacontenttype="application/json",
        extensions=extensions,
        data=msgspec.Raw(b'{"name":"Ada"}'),
    )


class Emitted(list[tuple[str, dict[str, Any]]]):
    """A ``system_emit`` callable that records what it was given."""

    def __call__(self, event_type: str, data: dict[str, Any]) -> None:
        self.append((event_type, data))

    @property
    def types(self) -> list[str]:
        return [event_type for event_type, _ in self]


@pytest.fixture
async def providers() -> AsyncIterator[ProviderRegistry]:
    registry = ProviderRegistry({"http": HttpProvider()})
    await registry.open()
    yield registry
    await registry.close()


@pytest.fixture
def invoker(providers: ProviderRegistry) -> Invoker:
    return Invoker(providers, timeout_s=2.0)


# -- call: what is sent ----------------------------------------------------------------------


async def test_call_posts_the_encoded_event_as_cloudevents_json(
    invoker: Invoker, receiver: Receiver
):
    receiver.reply("/fn", Reply(status=200, body=b"thanks"))
    event = v1_event()

    outcome = await invoker.call(http_function(receiver.url("/fn")), event, sync=False)

    [call] = receiver.calls_to("/fn")
    assert call.method == "POST"
    assert call.headers["Content-Type"] == "application/cloudevents+json"
    assert call.body == encode_event(event)
    assert outcome.ok is True
    assert outcome.reply is not None
    assert (outcome.reply.status, outcome.reply.body) == (200, b"thanks")
    assert outcome.error == ""
    assert outcome.duration_s > 0


async def test_call_sends_the_stored_encoding_it_is_given_as_is(
    invoker: Invoker, receiver: Receiver
):
    # The queue's stored form of the event: sent without encoding the event again.
    receiver.reply("/fn", Reply(status=200, body=b""))
    stored = b'{"specversion":"1.0","id":"as-stored"}'

    outcome = await invoker.call(
        http_function(receiver.url("/fn")), v1_event(), sync=False, encoded=stored
    )

    [call] = receiver.calls_to("/fn")
    assert call.body == stored
    assert outcome.ok is True


# -- call: sync vs async classification --------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 302, 400, 404, 408, 429, 502, 503])
async def test_sync_call_succeeds_on_every_status_but_500(
    invoker: Invoker, receiver: Receiver, status: int
):
    receiver.reply("/fn", Reply(status=status, body=b"{}"))

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=True)

    assert outcome.ok is True
    assert outcome.reply is not None
    assert outcome.reply.status == status


async def test_sync_call_fails_on_500(invoker: Invoker, receiver: Receiver):
    receiver.reply("/fn", Reply(status=500, body=b"boom"))

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=True)

    assert outcome.ok is False
    assert outcome.retryable is True
    assert outcome.error == "function 'fn' answered HTTP 500"
    assert outcome.reply is not None
    assert (outcome.reply.status, outcome.reply.body) == (500, b"boom")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_async_delivery_fails_retryably_on_408_429_and_5xx(
    invoker: Invoker, receiver: Receiver, status: int
):
    receiver.reply("/fn", Reply(status=status))

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=False)

    assert outcome.ok is False
    assert outcome.retryable is True
    assert outcome.error == f"function 'fn' answered HTTP {status}"
    assert outcome.reply is not None
    assert outcome.reply.status == status


@pytest.mark.parametrize("status", [200, 201, 202, 204, 301, 302])
async def test_async_delivery_counts_2xx_and_3xx_as_delivered(
    invoker: Invoker, receiver: Receiver, status: int
):
    receiver.reply("/fn", Reply(status=status))

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=False)

    assert outcome.ok is True
    assert outcome.retryable is False
    assert outcome.retry_after_s is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
async def test_async_delivery_fails_other_4xx_without_retry(
    invoker: Invoker, receiver: Receiver, status: int
):
    receiver.reply("/fn", Reply(status=status))

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=False)

    assert outcome.ok is False
    assert outcome.retryable is False
    assert outcome.error == f"function 'fn' answered HTTP {status}"


# -- call: no reply --------------------------------------------------------------------------


@pytest.mark.parametrize("sync", [True, False])
async def test_missing_function_fails_without_retry(invoker: Invoker, sync: bool):
    outcome = await invoker.call(None, v1_event(), sync=sync, function_id="ghost")

    assert outcome.ok is False
    assert outcome.reply is None
    assert outcome.retryable is False
    assert outcome.error == "function 'ghost' does not exist"


async def test_unreachable_url_fails_retryably(invoker: Invoker):
    url = f"http://127.0.0.1:{free_port()}/fn"

    outcome = await invoker.call(http_function(url), v1_event(), sync=False)

    assert outcome.ok is False
    assert outcome.reply is None
    assert outcome.retryable is True
    assert outcome.error.startswith(f"function 'fn' could not be reached at {url}: ")


async def test_reply_slower_than_the_timeout_fails_retryably(
    providers: ProviderRegistry, receiver: Receiver
):
    receiver.reply("/slow", Reply(delay_s=1.0))
    invoker = Invoker(providers, timeout_s=0.2)
    url = receiver.url("/slow")

    outcome = await invoker.call(http_function(url, "slow"), v1_event(), sync=True)

    assert outcome.ok is False
    assert outcome.reply is None
    assert outcome.retryable is True
    assert outcome.error == f"function 'slow' timed out after 0.2 s ({url})"
    assert 0.2 <= outcome.duration_s < 1.0


async def test_reply_within_the_timeout_succeeds(providers: ProviderRegistry, receiver: Receiver):
    receiver.reply("/quick", Reply(body=b"done", delay_s=0.05))
    invoker = Invoker(providers, timeout_s=2.0)

    outcome = await invoker.call(http_function(receiver.url("/quick")), v1_event(), sync=True)

    assert outcome.ok is True
    assert outcome.reply is not None
    assert outcome.reply.body == b"done"


# -- call: Retry-After -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("Retry-After", "7", 7.0),
        ("Retry-After", "1.5", 1.5),
        ("retry-after", "30", 30.0),
        ("Retry-After", "0", 0.0),
        ("Retry-After", "-3", 0.0),
        ("Retry-After", "soon", None),
    ],
)
async def test_retry_after_of_a_failed_delivery_is_parsed_as_seconds(
    invoker: Invoker, receiver: Receiver, name: str, value: str, expected: float | None
):
    receiver.reply("/fn", Reply(status=503, headers={name: value}))

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=False)

    assert outcome.ok is False
    assert outcome.retry_after_s == expected


async def test_failed_delivery_without_retry_after_has_none(invoker: Invoker, receiver: Receiver):
    receiver.reply("/fn", Reply(status=429))

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=False)

    assert outcome.retry_after_s is None


async def test_retry_after_on_a_success_is_ignored(invoker: Invoker, receiver: Receiver):
    receiver.reply("/fn", Reply(status=200, headers={"Retry-After": "5"}))

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=False)

    assert outcome.ok is True
    assert outcome.retry_after_s is None


async def test_retry_after_as_an_http_date_is_honoured(invoker: Invoker, receiver: Receiver):
    receiver.reply(
        "/fn", Reply(status=503, headers={"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"})
    )

    outcome = await invoker.call(http_function(receiver.url("/fn")), v1_event(), sync=False)

    assert outcome.retry_after_s is not None
    assert outcome.retry_after_s > 0


# -- authorize (contract §4.6) ---------------------------------------------------------------


async def test_authorizer_receives_the_event_and_the_request(invoker: Invoker, receiver: Receiver):
    receiver.reply_json("/auth", {})
    event = v1_event()

    await invoker.authorize(http_function(receiver.url("/auth"), "auth"), event, REQUEST)

    [call] = receiver.calls_to("/auth")
    assert call.method == "POST"
    assert call.headers["Content-Type"] == "application/cloudevents+json"
    assert call.json() == {"event": json.loads(encode_event(event)), "request": REQUEST}


async def test_authorizer_allows_and_returns_the_authorization(
    invoker: Invoker, receiver: Receiver
):
    authorization = {"principalId": "u-1", "context": {"role": "admin"}}
    receiver.reply_json("/auth", {"authorization": authorization})

    verdict = await invoker.authorize(
        http_function(receiver.url("/auth"), "auth"), v1_event(), REQUEST
    )

    assert verdict == Authorization(True, authorization=authorization)


@pytest.mark.parametrize(
    "result",
    [{}, {"authorization": None}, {"authorization": None, "error": None}, {"other": 1}],
)
async def test_authorizer_allows_without_an_authorization(
    invoker: Invoker, receiver: Receiver, result: dict[str, Any]
):
    receiver.reply_json("/auth", result)

    verdict = await invoker.authorize(
        http_function(receiver.url("/auth"), "auth"), v1_event(), REQUEST
    )

    assert verdict == Authorization(True, authorization=None)


async def test_authorizer_reply_status_other_than_500_still_counts_as_an_answer(
    invoker: Invoker, receiver: Receiver
):
    # An http function's call only fails on 500 (contract §2.6); the body decides.
    receiver.reply_json("/auth", {"authorization": {"principalId": "u-1"}}, status=403)

    verdict = await invoker.authorize(
        http_function(receiver.url("/auth"), "auth"), v1_event(), REQUEST
    )

    assert verdict == Authorization(True, authorization={"principalId": "u-1"})


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"error": {"message": "token expired"}}, "token expired"),
        (
            {"authorization": {"principalId": "u-1"}, "error": {"message": "no"}},
            "no",
        ),
        ({"error": {}}, "denied"),
    ],
)
async def test_authorizer_error_denies(
    invoker: Invoker, receiver: Receiver, result: dict[str, Any], message: str
):
    receiver.reply_json("/auth", result)

    verdict = await invoker.authorize(
        http_function(receiver.url("/auth"), "auth"), v1_event(), REQUEST
    )

    assert verdict == Authorization(False, error=message)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'{"authorization":{"principalId":"u-1","context":{"age":42}}}',
            id="non-string context value",
        ),
        pytest.param(b'{"authorization":{"principalId":7}}', id="non-string principalId"),
        pytest.param(b'{"authorization":"u-1"}', id="authorization not an object"),
        pytest.param(b"", id="empty body"),
        pytest.param(b"allowed", id="not JSON"),
        pytest.param(b"[]", id="array"),
    ],
)
async def test_unparsable_authorizer_result_denies(
    invoker: Invoker, receiver: Receiver, body: bytes
):
    receiver.reply("/auth", Reply(body=body))

    verdict = await invoker.authorize(
        http_function(receiver.url("/auth"), "auth"), v1_event(), REQUEST
    )

    assert verdict.allowed is False
    assert verdict.authorization is None
    assert verdict.error.startswith("authorizer result is malformed: ")


async def test_authorizer_answering_500_denies(invoker: Invoker, receiver: Receiver):
    receiver.reply_json("/auth", {"authorization": {"principalId": "u-1"}}, status=500)

    verdict = await invoker.authorize(
        http_function(receiver.url("/auth"), "auth"), v1_event(), REQUEST
    )

    assert verdict == Authorization(False, error="function 'auth' answered HTTP 500")


async def test_unreachable_authorizer_denies(invoker: Invoker):
    url = f"http://127.0.0.1:{free_port()}/auth"

    verdict = await invoker.authorize(http_function(url, "auth"), v1_event(), REQUEST)

    assert verdict.allowed is False
    assert verdict.error.startswith(f"function 'auth' could not be reached at {url}: ")


async def test_missing_authorizer_denies(invoker: Invoker):
    verdict = await invoker.authorize(None, v1_event(), REQUEST)

    assert verdict == Authorization(False, error="authorizer function does not exist")


# -- apply_authorization ---------------------------------------------------------------------

AUTHORIZATION = {"principalId": "u-1", "context": {"role": "admin"}}


def test_authorization_goes_under_the_eventgateway_extension_of_a_01_event():
    event = v01_event()

    authorized = apply_authorization(event, AUTHORIZATION)

    assert authorized.extensions == {"eventgateway": {"authorization": AUTHORIZATION}}
    assert event.extensions == {}


def test_authorization_joins_an_existing_eventgateway_extension_of_a_01_event():
    transformed = {"transformed": "true", "transformation-version": "0.1"}
    event = v01_event({"eventgateway": dict(transformed), "tenant": "t-1"})

    authorized = apply_authorization(event, AUTHORIZATION)

    assert authorized.extensions == {
        "eventgateway": {**transformed, "authorization": AUTHORIZATION},
        "tenant": "t-1",
    }
    assert event.extensions == {"eventgateway": transformed, "tenant": "t-1"}


def test_other_extensions_of_a_01_event_are_kept():
    authorized = apply_authorization(v01_event({"tenant": "t-1"}), None)

    assert authorized.extensions == {"tenant": "t-1", "eventgateway": {"authorization": None}}


@pytest.mark.parametrize("sent", ["spoofed", [1, 2], 7, True])
def test_a_client_eventgateway_extension_that_is_no_object_is_replaced(sent):
    event = v01_event({"eventgateway": sent, "tenant": "t-1"})

    authorized = apply_authorization(event, AUTHORIZATION)

    assert authorized.extensions == {
        "eventgateway": {"authorization": AUTHORIZATION},
        "tenant": "t-1",
    }
    assert event.extensions["eventgateway"] == sent


def test_authorization_of_a_10_event_is_a_json_text_extension():
    event = v1_event(tenant="t-1")

    authorized = apply_authorization(event, AUTHORIZATION)

    assert authorized.extensions == {
        "tenant": "t-1",
        "authorization": '{"principalId":"u-1","context":{"role":"admin"}}',
    }
    assert event.extensions == {"tenant": "t-1"}
    assert (
        json.loads(encode_event(authorized))["authorization"]
        == authorized.extensions["authorization"]
    )


def test_null_authorization_of_a_10_event_is_the_text_null():
    assert apply_authorization(v1_event(), None).extensions == {"authorization": "null"}


# -- system events ---------------------------------------------------------------------------


async def test_successful_call_emits_invoking_then_invoked_with_the_reply(
    providers: ProviderRegistry, receiver: Receiver
):
    receiver.reply("/fn", Reply(body=b"result bytes"))
    emitted = Emitted()
    invoker = Invoker(providers, system_emit=emitted)
    event = v1_event()

    await invoker.call(http_function(receiver.url("/fn")), event, sync=False)

    assert emitted == [
        (
            "eventgateway.function.invoking",
            {"space": "acme", "functionId": "fn", "event": event},
        ),
        (
            "eventgateway.function.invoked",
            {"space": "acme", "functionId": "fn", "event": event, "result": b"result bytes"},
        ),
    ]


async def test_failed_call_emits_invoking_then_invocation_failed_with_the_error(
    providers: ProviderRegistry, receiver: Receiver
):
    receiver.reply("/fn", Reply(status=503))
    emitted = Emitted()
    invoker = Invoker(providers, system_emit=emitted)
    event = v1_event()

    await invoker.call(http_function(receiver.url("/fn")), event, sync=False)

    assert emitted == [
        (
            "eventgateway.function.invoking",
            {"space": "acme", "functionId": "fn", "event": event},
        ),
        (
            "eventgateway.function.invocationFailed",
            {
                "space": "acme",
                "functionId": "fn",
                "event": event,
                "error": {"message": "function 'fn' answered HTTP 503"},
            },
        ),
    ]


async def test_unreachable_function_emits_invocation_failed(providers: ProviderRegistry):
    emitted = Emitted()
    invoker = Invoker(providers, system_emit=emitted)

    await invoker.call(http_function(f"http://127.0.0.1:{free_port()}/"), v1_event(), sync=True)

    assert emitted.types == [
        "eventgateway.function.invoking",
        "eventgateway.function.invocationFailed",
    ]


@pytest.mark.parametrize(
    "event_type",
    [
        "eventgateway.event.received",
        "eventgateway.function.invoking",
        "eventgateway.function.invoked",
        "eventgateway.function.invocationFailed",
    ],
)
async def test_delivering_a_system_event_emits_nothing(
    providers: ProviderRegistry, receiver: Receiver, event_type: str
):
    emitted = Emitted()
    invoker = Invoker(providers, system_emit=emitted)

    outcome = await invoker.call(
        http_function(receiver.url("/fn")), v1_event(event_type), sync=False
    )

    assert outcome.ok is True
    assert len(receiver.calls_to("/fn")) == 1
    assert emitted == []
