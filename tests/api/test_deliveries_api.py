"""The delivery log and dead letters on the Configuration API (``api/deliveries.py``).

A whole gateway runs in the test's event loop, on SQLite files and on memory backends,
against a real receiver. Dead letters come quickly from subscriptions with
``retryPolicy: {"maxAttempts": 1}`` whose function answers 500. Every wait polls a
condition under a deadline.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
import pytest
from starlette.routing import Route

from eventgateway.api.deliveries import create_deliveries_app
from eventgateway.queue.log_views import (
    AttemptView,
    DeadLetter,
    DeliveryView,
    EventSummary,
    EventView,
)
from eventgateway.queue.memory import MemoryQueue
from eventgateway.queue.replay import ReplayResult, ReplaySkipped
from eventgateway.routing.table import RoutingTable
from tests.support.inprocess import InProcess, in_process_gateway
from tests.support.receiver import Receiver, Reply

T = TypeVar("T")

TYPE = "user.created"
STRUCTURED = {"content-type": "application/cloudevents+json"}
DEAD_AFTER_ONE = {"maxAttempts": 1}
# A retry an hour away: a failed delivery stays "retrying" for the whole test.
RETRY_MUCH_LATER = {
    "maxAttempts": 5,
    "initialDelayMs": 3_600_000,
    "maxDelayMs": 3_600_000,
    "jitter": False,
}
EVENT_FIELDS = ["seq", "id", "source", "type", "receivedAt", "state", "deliveries"]
VIEW_FIELDS = ["id", "source", "type", "specversion", "receivedAt", "state", "event", "deliveries"]
ATTEMPT_FIELDS = ["attempt", "startedAt", "durationMs", "outcome", "status", "error"]
DEAD_REASON = "max attempts 1 reached: function '{}' answered HTTP 500"
NO_REDRIVE = (
    'Name what to redrive: {"ids": [...]}, a filter (subscriptionId, since, until) '
    'or {"all": true}.'
)
NO_PURGE = "Name what to purge: subscriptionId, since, until, or all=true."


@pytest.fixture(params=["sqlite", "memory"])
async def gw(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[InProcess]:
    settings: dict[str, Any] = {"shutdown_timeout_s": 2.0}
    if request.param == "sqlite":
        settings["data_dir"] = tmp_path / "data"
    async with in_process_gateway(**settings) as gateway:
        yield gateway


# -- helpers ----------------------------------------------------------------------------


def ce(event_id: str, **extra: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "/t", "type": TYPE, **extra}


async def subscribe(
    gw: InProcess,
    receiver: Receiver,
    name: str,
    *,
    space: str = "acme",
    path: str = "/acme",
    reply: Reply | None = None,
    **options: Any,
) -> str:
    """Function ``name`` at the receiver's ``/<space>/<name>``, subscribed async on ``path``."""
    route = f"/{space}/{name}"
    if reply is not None:
        receiver.reply(route, reply)
    await gw.http_function(name, receiver.url(route), space)
    subscription = await gw.subscribe(
        space, type="async", eventType=TYPE, functionId=name, path=path, **options
    )
    return str(subscription["subscriptionId"])


async def failing(
    gw: InProcess, receiver: Receiver, name: str, *, space: str = "acme", path: str = "/acme"
) -> str:
    """A subscription whose deliveries are dead letters after one 500."""
    return await subscribe(
        gw,
        receiver,
        name,
        space=space,
        path=path,
        reply=Reply(status=500, body=b"down"),
        retryPolicy=DEAD_AFTER_ONE,
    )


def heal(receiver: Receiver, name: str, space: str = "acme") -> None:
    receiver.reply(f"/{space}/{name}", Reply(status=200))


def calls(receiver: Receiver, name: str, space: str = "acme") -> list[str]:
    """Event IDs the function received, sorted."""
    return sorted(call.json()["id"] for call in receiver.calls_to(f"/{space}/{name}"))


async def emit(gw: InProcess, *event_ids: str, path: str = "/acme") -> None:
    for event_id in event_ids:
        response = await gw.events.post(path, json=ce(event_id), headers=STRUCTURED)
        assert response.status_code == 202, response.text


async def get_json(gw: InProcess, url: str, **params: str) -> Any:
    response = await gw.config.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def events(gw: InProcess, space: str = "acme", **params: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await get_json(gw, f"/v1/spaces/{space}/events", **params))[
        "events"
    ]
    return listed


async def dead_letters(gw: InProcess, space: str = "acme", **params: str) -> list[dict[str, Any]]:
    url = f"/v1/spaces/{space}/deadletters"
    listed: list[dict[str, Any]] = (await get_json(gw, url, **params))["deadLetters"]
    return listed


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str, timeout_s: float = 10
) -> T:
    """Poll ``probe`` until ``done`` holds of its value; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: still {value!r}"
        await asyncio.sleep(0.01)  # the poll interval; the deadline bounds the wait


async def wait_dead(gw: InProcess, event_ids: list[str], space: str = "acme") -> list[Any]:
    """Wait until the dead letters of ``space`` are exactly for ``event_ids`` (any order)."""
    want = sorted(event_ids)
    return await eventually(
        lambda: dead_letters(gw, space),
        lambda letters: sorted(letter["eventId"] for letter in letters) == want,
        f"dead letters of {space} should be for {want}",
    )


async def die_in_order(
    gw: InProcess, *event_ids: str, dead_before: tuple[str, ...] = ()
) -> list[Any]:
    """Emit one event at a time, each dead before the next, so dead times are ordered.

    ``dead_before``: the events whose dead letters are already there.
    """
    dead, letters = list(dead_before), []
    for event_id in event_ids:
        await emit(gw, event_id)
        dead.append(event_id)
        letters = await wait_dead(gw, dead)
    return letters


async def wait_states(
    gw: InProcess, expected: list[tuple[str, str]], space: str = "acme", **params: str
) -> list[dict[str, Any]]:
    """Wait until the listing (with ``params``) is exactly ``expected`` (id, state) pairs."""
    return await eventually(
        lambda: events(gw, space, **params),
        lambda listed: [(e["id"], e["state"]) for e in listed] == expected,
        f"events of {space} ({params}) should be {expected}",
    )


def moment(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def rfc3339(seconds: float, offset_hours: int = 0) -> str:
    zone = datetime.timezone(datetime.timedelta(hours=offset_hours))
    text = datetime.datetime.fromtimestamp(seconds, zone).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


TIME_FORMATS: dict[str, Callable[[float], str]] = {
    "rfc3339-utc": rfc3339,
    "rfc3339-offset": lambda seconds: rfc3339(seconds, offset_hours=-5),
    "unix-seconds": repr,
}


def error(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message}]}


# -- listing events -----------------------------------------------------------------------


async def test_events_are_listed_newest_first(gw: InProcess, receiver: Receiver) -> None:
    await gw.event_type(TYPE)
    await subscribe(gw, receiver, "crm")
    await emit(gw, *(f"e-{n}" for n in range(5)))

    listed = await wait_states(gw, [(f"e-{n}", "delivered") for n in (4, 3, 2, 1, 0)])

    assert [list(e) for e in listed] == [EVENT_FIELDS] * 5
    assert [{k: e[k] for k in ("source", "type", "deliveries")} for e in listed] == [
        {"source": "/t", "type": TYPE, "deliveries": 1}
    ] * 5
    seqs = [e["seq"] for e in listed]
    assert seqs == sorted(set(seqs), reverse=True)
    received = [moment(e["receivedAt"]) for e in listed]
    assert received == sorted(received, reverse=True)
    assert await events(gw, limit="2") == listed[:2]


async def test_before_pages_through_every_event_with_the_seq_cursor(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    await subscribe(gw, receiver, "crm")
    await emit(gw, *(f"e-{n}" for n in range(7)))
    everything = await wait_states(gw, [(f"e-{n}", "delivered") for n in range(6, -1, -1)])

    pages: list[list[str]] = []
    cursor: dict[str, str] = {}
    while page := await events(gw, limit="3", **cursor):
        pages.append([e["id"] for e in page])
        cursor = {"before": str(page[-1]["seq"])}

    assert pages == [["e-6", "e-5", "e-4"], ["e-3", "e-2", "e-1"], ["e-0"]]
    assert await events(gw, before=str(everything[2]["seq"]), limit="1") == [everything[3]]
    assert await events(gw, before="0") == []
    assert await events(gw, before=str(everything[0]["seq"] + 1)) == everything


async def test_state_filter_selects_pending_retrying_delivered_and_dead(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    await subscribe(gw, receiver, "ok", path="/ok")
    await failing(gw, receiver, "bad", path="/bad")
    # Ordered: while the first event of key "k" waits for its retry, the second is held.
    await subscribe(
        gw,
        receiver,
        "later",
        path="/later",
        reply=Reply(status=503),
        ordered=True,
        retryPolicy=RETRY_MUCH_LATER,
    )
    await emit(gw, "e-delivered", path="/ok")
    await emit(gw, "e-dead", path="/bad")
    for event_id in ("e-retrying", "e-pending"):
        response = await gw.events.post(
            "/later", json=ce(event_id, partitionkey="k"), headers=STRUCTURED
        )
        assert response.status_code == 202, response.text

    await wait_states(
        gw,
        [
            ("e-pending", "pending"),
            ("e-retrying", "retrying"),
            ("e-dead", "dead"),
            ("e-delivered", "delivered"),
        ],
    )

    for state in ("pending", "retrying", "delivered", "dead"):
        assert [e["id"] for e in await events(gw, state=state)] == [f"e-{state}"], state
    assert calls(receiver, "later") == ["e-retrying"]
    retrying = await get_json(gw, "/v1/spaces/acme/events/e-retrying")
    [delivery] = retrying["deliveries"]
    assert (delivery["state"], delivery["attempts"], delivery["lastStatus"]) == (
        "retrying",
        1,
        503,
    )
    assert moment(delivery["nextAttemptAt"]) > time.time() + 3000
    pending = await get_json(gw, "/v1/spaces/acme/events/e-pending")
    [held] = pending["deliveries"]
    assert (held["state"], held["attempts"], held["nextAttemptAt"], held["attemptLog"]) == (
        "pending",
        0,
        None,
        [],
    )


async def test_subscription_filter_shows_that_subscriptions_deliveries(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    ok = await subscribe(gw, receiver, "ok")
    bad = await failing(gw, receiver, "bad")
    await emit(gw, "e-1", "e-2")
    await wait_dead(gw, ["e-1", "e-2"])
    await wait_states(gw, [("e-2", "delivered"), ("e-1", "delivered")], subscriptionId=ok)

    def lines(listed: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
        return [(e["id"], e["state"], e["deliveries"]) for e in listed]

    assert lines(await events(gw)) == [("e-2", "dead", 2), ("e-1", "dead", 2)]
    assert lines(await events(gw, subscriptionId=ok)) == [
        ("e-2", "delivered", 1),
        ("e-1", "delivered", 1),
    ]
    assert lines(await events(gw, subscriptionId=bad)) == [("e-2", "dead", 1), ("e-1", "dead", 1)]
    assert await events(gw, subscriptionId=ok, state="dead") == []
    assert lines(await events(gw, subscriptionId=bad, state="dead")) == [
        ("e-2", "dead", 1),
        ("e-1", "dead", 1),
    ]
    assert await events(gw, subscriptionId="unknown") == []


# -- one event ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_id", ["a\nb", "a/b", "50%"])
async def test_an_event_id_with_any_characters_is_found_percent_encoded(
    gw: InProcess, receiver: Receiver, event_id: str
) -> None:
    # "a\nb" was accepted and listed, but its item route answered 404 (QA).
    await gw.event_type(TYPE)
    await subscribe(gw, receiver, "ok")
    await emit(gw, event_id)
    await wait_states(gw, [(event_id, "delivered")])

    view = await get_json(gw, f"/v1/spaces/acme/events/{quote(event_id, safe='')}")

    assert view["id"] == event_id


async def test_get_event_shows_every_delivery_and_attempt(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    ok = await subscribe(gw, receiver, "ok")
    bad = await failing(gw, receiver, "bad")
    await emit(gw, "e-1")
    await wait_dead(gw, ["e-1"])
    await wait_states(gw, [("e-1", "delivered")], subscriptionId=ok)

    view = await get_json(gw, "/v1/spaces/acme/events/e-1")
    [summary] = await events(gw)

    assert list(view) == VIEW_FIELDS
    assert {k: view[k] for k in ("id", "source", "type", "specversion", "state", "event")} == {
        "id": "e-1",
        "source": "/t",
        "type": TYPE,
        "specversion": "1.0",
        "state": "dead",
        "event": ce("e-1"),
    }
    assert view["receivedAt"] == summary["receivedAt"]
    by_function = {d["functionId"]: d for d in view["deliveries"]}
    assert sorted(by_function) == ["bad", "ok"]
    for delivery in view["deliveries"]:
        assert delivery["deliveryId"].isdigit()
        [attempt] = delivery.pop("attemptLog")
        assert list(attempt) == ATTEMPT_FIELDS
        assert moment(attempt.pop("startedAt")) >= moment(view["receivedAt"])
        assert attempt.pop("durationMs") >= 0
        delivery["attemptLog"] = [attempt]
    bad_error = "function 'bad' answered HTTP 500"
    assert by_function["bad"] == {
        "deliveryId": by_function["bad"]["deliveryId"],
        "subscriptionId": bad,
        "functionId": "bad",
        "state": "dead",
        "attempts": 1,
        "nextAttemptAt": None,
        "lastStatus": 500,
        "lastError": bad_error,
        "deadReason": DEAD_REASON.format("bad"),
        "attemptLog": [{"attempt": 1, "outcome": "failed", "status": 500, "error": bad_error}],
        "replayOf": None,
    }
    assert by_function["ok"] == {
        "deliveryId": by_function["ok"]["deliveryId"],
        "subscriptionId": ok,
        "functionId": "ok",
        "state": "delivered",
        "attempts": 1,
        "nextAttemptAt": None,
        "lastStatus": 200,
        "lastError": "",
        "deadReason": "",
        "attemptLog": [{"attempt": 1, "outcome": "delivered", "status": 200, "error": ""}],
        "replayOf": None,
    }


async def test_unknown_event_is_404_with_its_id(gw: InProcess) -> None:
    response = await gw.config.get("/v1/spaces/acme/events/nope")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == error('Event "nope" not found.')


# -- listing dead letters -----------------------------------------------------------------


async def test_dead_letters_are_listed_most_recent_first_with_every_field(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    sub = await failing(gw, receiver, "crm")
    letters = await die_in_order(gw, "e-0", "e-1", "e-2")

    assert [letter["eventId"] for letter in letters] == ["e-2", "e-1", "e-0"]
    dead_at = [moment(letter["deadAt"]) for letter in letters]
    assert dead_at == sorted(dead_at, reverse=True)
    view = await get_json(gw, "/v1/spaces/acme/events/e-2")
    first = letters[0]
    assert first == {
        "deadLetterId": view["deliveries"][0]["deliveryId"],
        "subscriptionId": sub,
        "functionId": "crm",
        "eventId": "e-2",
        "reason": DEAD_REASON.format("crm"),
        "attempts": 1,
        "lastStatus": 500,
        "responseExcerpt": "down",
        "deadAt": first["deadAt"],
        "event": ce("e-2"),
    }
    assert moment(first["deadAt"]) >= moment(view["receivedAt"])
    assert await dead_letters(gw, limit="2") == letters[:2]
    assert await dead_letters(gw, subscriptionId=sub) == letters
    assert await dead_letters(gw, subscriptionId="unknown") == []


@pytest.mark.parametrize("time_format", list(TIME_FORMATS))
async def test_dead_letters_since_and_until_take_rfc3339_or_unix_seconds(
    gw: InProcess, receiver: Receiver, time_format: str
) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await die_in_order(gw, "e-0", "e-1")
    cut = time.time()  # after e-0 and e-1 died, before e-2 and e-3 are sent
    await die_in_order(gw, "e-2", "e-3", dead_before=("e-0", "e-1"))
    text = TIME_FORMATS[time_format](cut)

    def ids(letters: list[dict[str, Any]]) -> list[str]:
        return [letter["eventId"] for letter in letters]

    assert ids(await dead_letters(gw, since=text)) == ["e-3", "e-2"]
    assert ids(await dead_letters(gw, until=text)) == ["e-1", "e-0"]
    assert ids(await dead_letters(gw, since=text, until=text)) == []
    later = TIME_FORMATS[time_format](time.time() + 60)
    assert ids(await dead_letters(gw, since=text, until=later)) == ["e-3", "e-2"]
    assert ids(await dead_letters(gw, since=later)) == []
    assert ids(await dead_letters(gw, since=text, limit="1")) == ["e-3"]


# -- bad queries ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", ["bogus", "2026-13-01T00:00:00Z", "1,5", "yesterday"])
async def test_a_time_that_is_not_one_is_400_naming_the_parameter(
    gw: InProcess, name: str, value: str
) -> None:
    expected = error(
        f"{name} {value!r} is not a time: use RFC 3339 (2026-11-26T18:00:00Z) or Unix seconds"
    )
    url = "/v1/spaces/acme/deadletters"

    listed = await gw.config.get(url, params={name: value})
    purged = await gw.config.delete(url, params={name: value})
    redriven = await gw.config.post(f"{url}/redrive", json={name: value})

    for response in (listed, purged, redriven):
        assert (response.status_code, response.json()) == (400, expected)


@pytest.mark.parametrize("collection", ["events", "deadletters"])
@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1", "1.5", ""])
async def test_limit_outside_1_to_1000_is_400(gw: InProcess, collection: str, limit: str) -> None:
    response = await gw.config.get(f"/v1/spaces/acme/{collection}", params={"limit": limit})

    assert response.status_code == 400
    assert response.json() == error(f"limit {limit!r} must be a whole number from 1 to 1000")


@pytest.mark.parametrize("collection", ["events", "deadletters"])
@pytest.mark.parametrize("limit", ["1", "1000"])
async def test_limit_bounds_are_accepted(gw: InProcess, collection: str, limit: str) -> None:
    response = await gw.config.get(f"/v1/spaces/acme/{collection}", params={"limit": limit})

    assert response.status_code == 200
    assert response.json() == {"events" if collection == "events" else "deadLetters": []}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"before": "x"}, "before 'x' must be a cursor from a previous page"),
        ({"before": "-1"}, "before '-1' must be a cursor from a previous page"),
        ({"state": "lost"}, "state 'lost' must be one of dead, delivered, pending, retrying"),
        ({"state": ""}, "state '' must be one of dead, delivered, pending, retrying"),
    ],
)
async def test_bad_event_listing_query_is_400(
    gw: InProcess, params: dict[str, str], message: str
) -> None:
    response = await gw.config.get("/v1/spaces/acme/events", params=params)

    assert (response.status_code, response.json()) == (400, error(message))


# -- one dead letter ----------------------------------------------------------------------


async def test_get_dead_letter_by_id_and_404_for_anything_else(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "bad")
    await subscribe(gw, receiver, "ok")
    await emit(gw, "e-1")
    [letter] = await wait_dead(gw, ["e-1"])
    view = await wait_states(gw, [("e-1", "dead")])
    delivered = await get_json(gw, "/v1/spaces/acme/events/e-1")
    [ok_delivery] = [d for d in delivered["deliveries"] if d["functionId"] == "ok"]
    assert view[0]["deliveries"] == 2

    found = await get_json(gw, f"/v1/spaces/acme/deadletters/{letter['deadLetterId']}")

    assert found == letter
    for missing in ("999999", "abc", ok_delivery["deliveryId"]):
        response = await gw.config.get(f"/v1/spaces/acme/deadletters/{missing}")
        assert (response.status_code, response.json()) == (
            404,
            error(f'Dead letter "{missing}" not found.'),
        )


# -- redrive ----------------------------------------------------------------------------------


async def test_redrive_by_ids_delivers_exactly_those(gw: InProcess, receiver: Receiver) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await emit(gw, "e-0", "e-1", "e-2")
    letters = await wait_dead(gw, ["e-0", "e-1", "e-2"])
    ids = {letter["eventId"]: letter["deadLetterId"] for letter in letters}
    heal(receiver, "crm")

    response = await gw.config.post(
        "/v1/spaces/acme/deadletters/redrive", json={"ids": [ids["e-0"], ids["e-2"], "999999"]}
    )

    assert (response.status_code, response.json()) == (200, {"redriven": 2})
    await wait_states(gw, [("e-2", "delivered"), ("e-1", "dead"), ("e-0", "delivered")])
    assert [letter["eventId"] for letter in await dead_letters(gw)] == ["e-1"]
    assert calls(receiver, "crm") == ["e-0", "e-0", "e-1", "e-2", "e-2"]
    [delivery] = (await get_json(gw, "/v1/spaces/acme/events/e-0"))["deliveries"]
    log = [(a["attempt"], a["outcome"], a["status"]) for a in delivery["attemptLog"]]
    assert log == [(1, "failed", 500), (2, "delivered", 200)]
    assert (delivery["state"], delivery["deadReason"]) == ("delivered", "")
    again = await gw.config.post("/v1/spaces/acme/deadletters/redrive", json={"ids": [ids["e-0"]]})
    assert again.json() == {"redriven": 0}


async def test_redrive_by_subscription_leaves_other_subscriptions_dead(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    first = await failing(gw, receiver, "first")
    second = await failing(gw, receiver, "second")
    await emit(gw, "e-0", "e-1")
    await wait_dead(gw, ["e-0", "e-0", "e-1", "e-1"])
    heal(receiver, "first")
    heal(receiver, "second")

    response = await gw.config.post(
        "/v1/spaces/acme/deadletters/redrive", json={"subscriptionId": first}
    )

    assert response.json() == {"redriven": 2}
    await wait_states(gw, [("e-1", "delivered"), ("e-0", "delivered")], subscriptionId=first)
    remaining = await dead_letters(gw)
    assert sorted((x["eventId"], x["subscriptionId"]) for x in remaining) == [
        ("e-0", second),
        ("e-1", second),
    ]
    assert calls(receiver, "second") == ["e-0", "e-1"]


async def test_redrive_by_time_window(gw: InProcess, receiver: Receiver) -> None:
    await gw.event_type(TYPE)
    sub = await failing(gw, receiver, "crm")
    await die_in_order(gw, "e-0")
    cut = time.time()
    await die_in_order(gw, "e-1", "e-2", dead_before=("e-0",))
    heal(receiver, "crm")
    url = "/v1/spaces/acme/deadletters/redrive"

    nothing = await gw.config.post(url, json={"subscriptionId": "other", "since": repr(cut)})
    by_since = await gw.config.post(url, json={"subscriptionId": sub, "since": rfc3339(cut)})

    assert nothing.json() == {"redriven": 0}
    assert by_since.json() == {"redriven": 2}
    await wait_states(gw, [("e-2", "delivered"), ("e-1", "delivered"), ("e-0", "dead")])
    by_until = await gw.config.post(url, json={"until": repr(cut)})
    assert by_until.json() == {"redriven": 1}
    await wait_states(gw, [("e-2", "delivered"), ("e-1", "delivered"), ("e-0", "delivered")])


async def test_redrive_all_redrives_every_dead_letter(gw: InProcess, receiver: Receiver) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "first")
    await failing(gw, receiver, "second")
    await emit(gw, "e-0", "e-1")
    await wait_dead(gw, ["e-0", "e-0", "e-1", "e-1"])
    heal(receiver, "first")
    heal(receiver, "second")

    response = await gw.config.post("/v1/spaces/acme/deadletters/redrive", json={"all": True})

    assert response.json() == {"redriven": 4}
    await wait_states(gw, [("e-1", "delivered"), ("e-0", "delivered")])
    assert await dead_letters(gw) == []


@pytest.mark.parametrize(
    "body", [b"{}", b"", b'{"all": false}', b'{"ids": null}', b'{"subscriptionId": null}']
)
async def test_redrive_that_names_nothing_is_400_and_redrives_nothing(
    gw: InProcess, receiver: Receiver, body: bytes
) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await emit(gw, "e-0")
    letters = await wait_dead(gw, ["e-0"])

    response = await gw.config.post("/v1/spaces/acme/deadletters/redrive", content=body)

    assert (response.status_code, response.json()) == (400, error(NO_REDRIVE))
    assert await dead_letters(gw) == letters


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{", "Input data was truncated"),
        (b'{"ids": [', "Input data was truncated"),
        (b"\xff", "JSON is malformed: invalid character (byte 0)"),
        (b"ids=1", "JSON is malformed: invalid character (byte 0)"),
        (b"null", "Expected `object`, got `null`"),
        (b"[]", "Expected `object`, got `array`"),
        (b'"all"', "Expected `object`, got `str`"),
        (b'{"ids": "1"}', "Expected `array | null`, got `str` - at `$.ids`"),
        (b'{"ids": [1]}', "Expected `str`, got `int` - at `$.ids[0]`"),
        (b'{"all": "yes"}', "Expected `bool`, got `str` - at `$.all`"),
        (b'{"since": true}', "Expected `float | str | null`, got `bool` - at `$.since`"),
        (b'{"subscriptionID": "s"}', "Object contains unknown field `subscriptionID`"),
    ],
)
async def test_malformed_redrive_body_is_400_never_500(
    gw: InProcess, body: bytes, detail: str
) -> None:
    response = await gw.config.post(
        "/v1/spaces/acme/deadletters/redrive",
        content=body,
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == error(f"Redrive body is not valid: {detail}")


# -- purge ------------------------------------------------------------------------------------


async def test_purge_one_answers_204_then_404(gw: InProcess, receiver: Receiver) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await emit(gw, "e-0", "e-1")
    letters = await wait_dead(gw, ["e-0", "e-1"])
    [gone] = [letter for letter in letters if letter["eventId"] == "e-0"]
    url = f"/v1/spaces/acme/deadletters/{gone['deadLetterId']}"
    missing = error(f'Dead letter "{gone["deadLetterId"]}" not found.')

    purged = await gw.config.delete(url)

    assert (purged.status_code, purged.content) == (204, b"")
    fetched = await gw.config.get(url)
    assert (fetched.status_code, fetched.json()) == (404, missing)
    again = await gw.config.delete(url)
    assert (again.status_code, again.json()) == (404, missing)
    assert [letter["eventId"] for letter in await dead_letters(gw)] == ["e-1"]
    # The event had no other delivery: it is deleted with its dead letter.
    event = await gw.config.get("/v1/spaces/acme/events/e-0")
    assert (event.status_code, event.json()) == (404, error('Event "e-0" not found.'))
    assert [e["id"] for e in await events(gw)] == ["e-1"]
    unknown = await gw.config.delete("/v1/spaces/acme/deadletters/abc")
    assert (unknown.status_code, unknown.json()) == (404, error('Dead letter "abc" not found.'))


async def test_purge_by_filter_answers_how_many(gw: InProcess, receiver: Receiver) -> None:
    await gw.event_type(TYPE)
    first = await failing(gw, receiver, "first")
    second = await failing(gw, receiver, "second")
    await emit(gw, "e-0", "e-1")
    await wait_dead(gw, ["e-0", "e-0", "e-1", "e-1"])
    url = "/v1/spaces/acme/deadletters"

    by_subscription = await gw.config.delete(url, params={"subscriptionId": first})

    assert (by_subscription.status_code, by_subscription.json()) == (200, {"purged": 2})
    remaining = await dead_letters(gw)
    assert sorted((x["eventId"], x["subscriptionId"]) for x in remaining) == [
        ("e-0", second),
        ("e-1", second),
    ]
    lines = [(e["id"], e["state"], e["deliveries"]) for e in await events(gw)]
    assert lines == [("e-1", "dead", 1), ("e-0", "dead", 1)]
    assert (await gw.config.delete(url, params={"subscriptionId": first})).json() == {"purged": 0}
    everything = await gw.config.delete(url, params={"all": "true"})
    assert everything.json() == {"purged": 2}
    assert await dead_letters(gw) == []
    assert await events(gw) == []


async def test_purge_by_time_window(gw: InProcess, receiver: Receiver) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await die_in_order(gw, "e-0")
    cut = time.time()
    await die_in_order(gw, "e-1", "e-2", dead_before=("e-0",))
    url = "/v1/spaces/acme/deadletters"

    by_until = await gw.config.delete(url, params={"until": rfc3339(cut)})

    assert by_until.json() == {"purged": 1}
    assert [letter["eventId"] for letter in await dead_letters(gw)] == ["e-2", "e-1"]
    by_since = await gw.config.delete(url, params={"since": repr(cut), "until": repr(cut + 3600)})
    assert by_since.json() == {"purged": 2}
    assert await dead_letters(gw) == []


@pytest.mark.parametrize(
    "params",
    [{}, {"all": "false"}, {"all": "1"}, {"all": "TRUE"}, {"since": ""}, {"until": ""}],
    ids=["none", "all-false", "all-1", "all-upper", "empty-since", "empty-until"],
)
async def test_purge_without_a_filter_or_all_true_is_400_and_purges_nothing(
    gw: InProcess, receiver: Receiver, params: dict[str, str]
) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await emit(gw, "e-0")
    letters = await wait_dead(gw, ["e-0"])

    response = await gw.config.delete("/v1/spaces/acme/deadletters", params=params)

    assert (response.status_code, response.json()) == (400, error(NO_PURGE))
    assert await dead_letters(gw) == letters


# -- isolation of spaces --------------------------------------------------------------------


async def test_spaces_never_see_or_change_each_others_deliveries(
    gw: InProcess, receiver: Receiver
) -> None:
    for space in ("acme", "beta"):
        await gw.event_type(TYPE, space)
    # Same function name and path in both spaces: the subscription IDs are equal too.
    acme_sub = await failing(gw, receiver, "crm", space="acme", path="/shared")
    beta_sub = await failing(gw, receiver, "crm", space="beta", path="/shared")
    assert acme_sub == beta_sub
    await failing(gw, receiver, "private", space="acme", path="/private")
    await emit(gw, "e-shared-1", "e-shared-2", path="/shared")
    await emit(gw, "e-private", path="/private")
    acme_letters = await wait_dead(gw, ["e-shared-1", "e-shared-2", "e-private"], "acme")
    beta_letters = await wait_dead(gw, ["e-shared-1", "e-shared-2"], "beta")
    acme_events = await events(gw, "acme")
    beta = "/v1/spaces/beta"

    # Beta sees only its own deliveries.
    assert [(e["id"], e["deliveries"]) for e in await events(gw, "beta")] == [
        ("e-shared-2", 1),
        ("e-shared-1", 1),
    ]
    private = await gw.config.get(f"{beta}/events/e-private")
    assert (private.status_code, private.json()) == (404, error('Event "e-private" not found.'))
    shared = await get_json(gw, f"{beta}/events/e-shared-1")
    assert [d["deliveryId"] for d in shared["deliveries"]] == [
        x["deadLetterId"] for x in beta_letters if x["eventId"] == "e-shared-1"
    ]
    assert {x["deadLetterId"] for x in acme_letters}.isdisjoint(
        x["deadLetterId"] for x in beta_letters
    )
    acme_ids = [letter["deadLetterId"] for letter in acme_letters]
    for letter_id in acme_ids:
        missing = error(f'Dead letter "{letter_id}" not found.')
        fetched = await gw.config.get(f"{beta}/deadletters/{letter_id}")
        assert (fetched.status_code, fetched.json()) == (404, missing)
        purged = await gw.config.delete(f"{beta}/deadletters/{letter_id}")
        assert (purged.status_code, purged.json()) == (404, missing)
    redrive = f"{beta}/deadletters/redrive"
    assert (await gw.config.post(redrive, json={"ids": acme_ids})).json() == {"redriven": 0}

    # Redrive and purge in beta change beta only.
    heal(receiver, "crm", "beta")
    [beta_first] = [x["deadLetterId"] for x in beta_letters if x["eventId"] == "e-shared-1"]
    by_id = await gw.config.post(redrive, json={"ids": [beta_first], "subscriptionId": beta_sub})
    assert by_id.json() == {"redriven": 1}
    assert await dead_letters(gw, "acme") == acme_letters
    await wait_states(gw, [("e-shared-2", "dead"), ("e-shared-1", "delivered")], "beta")
    purged_all = await gw.config.delete(f"{beta}/deadletters", params={"all": "true"})
    assert purged_all.json() == {"purged": 1}

    assert await dead_letters(gw, "beta") == []
    assert [e["id"] for e in await events(gw, "beta")] == ["e-shared-1"]
    assert await dead_letters(gw, "acme") == acme_letters
    assert await events(gw, "acme") == acme_events
    shared_in_acme = await get_json(gw, "/v1/spaces/acme/events/e-shared-2")
    assert [d["state"] for d in shared_in_acme["deliveries"]] == ["dead"]
    assert calls(receiver, "crm", "acme") == ["e-shared-1", "e-shared-2"]
    assert calls(receiver, "crm", "beta") == ["e-shared-1", "e-shared-1", "e-shared-2"]


# -- OpenAPI ------------------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


async def test_openapi_describes_every_deliveries_route_and_struct() -> None:
    async with in_process_gateway(shutdown_timeout_s=1.0) as gateway:
        response = await gateway.config.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    routes: dict[str, set[str]] = {}
    for route in create_deliveries_app(MemoryQueue(), RoutingTable.empty).routes:
        assert isinstance(route, Route)
        path = route.path.replace(":rest}", "}")  # OpenAPI has no path converters
        routes.setdefault(path, set()).update((route.methods or set()) - {"HEAD"})
    assert len(routes) == 6
    for path, methods in routes.items():
        assert path in paths, path
        assert {m.upper() for m in paths[path] if m != "parameters"} == methods, path

    def query(path: str, method: str) -> list[str]:
        return [p["name"] for p in paths[path][method].get("parameters", [])]

    base = "/v1/spaces/{space}"
    assert query(f"{base}/events", "get") == ["state", "subscriptionId", "limit", "before"]
    assert query(f"{base}/deadletters", "get") == ["subscriptionId", "since", "until", "limit"]
    assert query(f"{base}/deadletters", "delete") == ["subscriptionId", "since", "until", "all"]
    assert [p["name"] for p in paths[f"{base}/deadletters/{{id}}"]["parameters"]] == [
        "space",
        "id",
    ]
    events_query = {p["name"]: p["schema"] for p in paths[f"{base}/events"]["get"]["parameters"]}
    assert (events_query["limit"]["minimum"], events_query["limit"]["maximum"]) == (1, 1000)
    assert events_query["state"]["enum"] == ["pending", "retrying", "delivered", "dead"]
    redrive = paths[f"{base}/deadletters/redrive"]["post"]
    assert redrive["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RedriveInput"
    }
    assert list(schemas["RedriveInput"]["properties"]) == [
        "ids",
        "subscriptionId",
        "since",
        "until",
        "all",
    ]
    replay = paths[f"{base}/events/replay"]["post"]
    assert replay["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReplayInput"
    }
    assert list(schemas["ReplayInput"]["properties"]) == ["ids", "subscriptionId", "since", "until"]
    for path in routes:
        for method, operation in paths[path].items():
            if method == "parameters":
                continue
            errors = {code for code in operation["responses"] if code.startswith(("4", "5"))}
            # Only a replay can find the queue full (as the Events API, 429).
            allowed = {"400", "404", "500"} | ({"429"} if path.endswith("/replay") else set())
            assert errors <= allowed, (path, method)
            for code in errors:
                error_schema = operation["responses"][code]["content"]["application/json"]
                assert error_schema["schema"] == {"$ref": "#/components/schemas/Error"}
    structs: dict[str, type[msgspec.Struct]] = {
        "EventSummary": EventSummary,
        "EventView": EventView,
        "DeliveryView": DeliveryView,
        "AttemptView": AttemptView,
        "DeadLetter": DeadLetter,
        "ReplayResult": ReplayResult,
        "ReplaySkipped": ReplaySkipped,
    }
    for name, struct in structs.items():
        wire_names = [field.encode_name for field in msgspec.structs.fields(struct)]
        assert list(schemas[name]["properties"]) == wire_names, name
        assert schemas[name]["required"] == wire_names, name
    prefix = "#/components/schemas/"
    for ref in _refs(document):
        assert ref.startswith(prefix), ref
        assert ref.removeprefix(prefix) in schemas, ref


# -- known bugs -------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [{"limit": "²"}, {"before": "²"}], ids=["limit", "before"])
async def test_unicode_digit_in_limit_or_before_is_400(
    gw: InProcess, params: dict[str, str]
) -> None:
    response = await gw.config.get("/v1/spaces/acme/events", params=params)

    assert response.status_code == 400


@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
async def test_unicode_digit_dead_letter_id_is_not_found(gw: InProcess, method: str) -> None:
    if method == "POST":
        response = await gw.config.post("/v1/spaces/acme/deadletters/redrive", json={"ids": ["²"]})
        assert response.json() == {"redriven": 0}
    else:
        response = await gw.config.request(method, "/v1/spaces/acme/deadletters/²")
        assert (response.status_code, response.json()) == (
            404,
            error('Dead letter "²" not found.'),
        )


async def test_event_with_a_slash_in_its_id_can_be_fetched(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    await subscribe(gw, receiver, "crm")
    await emit(gw, "orders/1")
    await wait_states(gw, [("orders/1", "delivered")])

    response = await gw.config.get("/v1/spaces/acme/events/orders%2F1")

    assert response.status_code == 200
    assert response.json()["id"] == "orders/1"


@pytest.mark.parametrize("name", ["since", "until"])
async def test_redrive_with_only_an_empty_time_is_400_naming_it(
    gw: InProcess, receiver: Receiver, name: str
) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await emit(gw, "e-0")
    letters = await wait_dead(gw, ["e-0"])

    response = await gw.config.post("/v1/spaces/acme/deadletters/redrive", json={name: ""})

    assert await dead_letters(gw) == letters
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith(f"{name} '' is not a time")


@pytest.mark.parametrize("value", ["nan", "inf"])
async def test_nan_or_infinity_is_not_a_time(gw: InProcess, value: str) -> None:
    response = await gw.config.get("/v1/spaces/acme/deadletters", params={"since": value})

    assert response.status_code == 400


async def test_since_a_letters_dead_at_includes_it_and_until_excludes_it(
    gw: InProcess, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queue's clock (its documented test seam) is put 0.75 µs past whole microseconds,
    # which deadAt rounds up; 1970 keeps the float fine-grained enough for that.
    start = time.monotonic()

    def clock() -> float:
        whole_us = math.floor((1_000_000 + time.monotonic() - start) * 1e6)
        return whole_us / 1e6 + 7.5e-7

    monkeypatch.setattr(gw.gateway.queue, "_clock", clock)
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await emit(gw, "e-0")
    [letter] = await wait_dead(gw, ["e-0"])

    since = await dead_letters(gw, since=letter["deadAt"])
    until = await dead_letters(gw, until=letter["deadAt"])

    assert (since, until) == ([letter], [])


async def test_redrive_takes_unix_seconds_as_a_number_and_refuses_a_window_ending_first(
    gw: InProcess, receiver: Receiver
) -> None:
    await gw.event_type(TYPE)
    await failing(gw, receiver, "crm")
    await emit(gw, "e-0")
    letters = await wait_dead(gw, ["e-0"])
    url = "/v1/spaces/acme/deadletters/redrive"

    backwards = await gw.config.post(url, json={"since": 2_000_000_000, "until": 1_000_000_000})
    assert (backwards.status_code, backwards.json()) == (
        400,
        error("until is before since: the window selects nothing"),
    )
    assert await dead_letters(gw) == letters

    later = await gw.config.post(url, json={"since": 4_000_000_000})
    assert (later.status_code, later.json()) == (200, {"redriven": 0})
    redriven = await gw.config.post(url, json={"since": 1_000_000_000.5})
    assert (redriven.status_code, redriven.json()) == (200, {"redriven": 1})
