"""A deploy the gateway refuses midway undoes what it had written, newest first: against a
real gateway (the app under uvicorn on 127.0.0.1, as in test_apply), driven by the SDK.

A sync route held in another space is the refusal (409): event routing is global, so the
plan cannot see it coming, and the function and event type it needs are written before.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from eventgateway.deploy.apply import deploy, fetch_current
from eventgateway.deploy.rollback import DeployFailed
from eventgateway.sdk._wire import GatewayError
from tests.deploy import test_apply
from tests.deploy.test_apply import (
    HANDLER,
    SPACE,
    RecordingGateway,
    Served,
    bundle,
    crm,
    crm_service,
    get_users,
    holdings,
    hook,
    users_service,
)

served = test_apply.served  # the fixture: a fresh gateway per test

TAKEN = f"/{SPACE}/taken"


def hold_route(served: Served, path: str = TAKEN) -> None:
    """Deploy, in another space, a sync route on ``path``: the same route here gets a 409."""
    holder = users_service(
        served,
        space="other-space",
        functions=(hook(served.url, "holderHook"),),
        subscriptions=(dataclasses.replace(get_users("holderHook", path), cors=None),),
    )
    with served.client("other-space") as other:
        deploy(other, holder, bundle=None)


def taken_route(function_id: str = "usersHook") -> Any:
    return dataclasses.replace(get_users(function_id, TAKEN), cors=None)


def test_a_refused_first_deploy_leaves_the_space_empty(served):
    hold_route(served)
    undone: list[str] = []
    service = crm_service(served, subscriptions=(*crm_service(served).subscriptions, taken_route()))

    with served.client() as gateway:
        with pytest.raises(DeployFailed) as refused:
            deploy(gateway, service, bundle=bundle(), undone=lambda a: undone.append(a.describe()))

        assert holdings(gateway) == {
            "functions": [],
            "eventtypes": [],
            "subscriptions": [],
            "cors": [],
        }
    message = str(refused.value)
    assert message.startswith(
        f"creating subscription sync http.request GET {TAKEN}: a subscription for that endpoint"
    )
    assert message.endswith(
        "Rolled back this deploy's 6 changes: space acme-crm is as it was before the deploy."
    )
    assert undone == [
        "- subscription  sync http.request GET /acme-crm/users → usersHook",
        "- subscription  async user.created POST /acme-crm/ → addUserToCRM",
        "- eventtype     http.request",
        "- eventtype     user.created",
        "- function      usersHook (http, " + served.url + "/hook)",
        "- function      addUserToCRM (python3.11, handler.handler)",
    ]


def test_a_refused_redeploy_restores_the_function_it_had_updated(served):
    hold_route(served)
    with served.client() as gateway:
        deploy(gateway, crm_service(served), bundle=bundle())
        before = fetch_current(gateway, crm_service(served))
        changed = crm_service(
            served,
            functions=(crm(memorySize=2048), hook(served.url)),
            subscriptions=(*crm_service(served).subscriptions, taken_route()),
        )

        with pytest.raises(DeployFailed) as refused:
            deploy(gateway, changed, bundle=bundle(HANDLER + "# v2\n"))

        assert fetch_current(gateway, crm_service(served)) == before
    assert [action.describe() for action in refused.value.undone] == [
        "~ function      addUserToCRM: restored"
    ]
    assert refused.value.left_behind == ()


def test_a_replaced_sync_route_is_created_again(served):
    hold_route(served)
    with served.client() as gateway:
        deploy(gateway, crm_service(served), bundle=bundle())
        before = holdings(gateway)
        # GET /acme-crm/users moves to addUserToCRM: its old subscription is deleted first.
        moved = crm_service(
            served,
            subscriptions=(
                crm_service(served).subscriptions[0],
                dataclasses.replace(get_users("addUserToCRM"), cors=None),
                taken_route("addUserToCRM"),
            ),
        )

        with pytest.raises(DeployFailed) as refused:
            deploy(gateway, moved, bundle=bundle())

        assert holdings(gateway) == before
    # The new route's subscription goes, the old one comes back; the CORS configuration
    # of the route was to be deleted after the failed write, so it never was.
    assert [(a.op, a.kind) for a in refused.value.undone] == [
        ("delete", "subscription"),
        ("create", "subscription"),
    ]


class StuckEventTypes(RecordingGateway):
    """Refuses to delete event types, as a gateway that breaks down midway would."""

    def delete_event_type(self, name: str) -> None:
        raise GatewayError("Internal Server Error", status=500)


def test_an_undo_that_fails_names_what_was_left_behind_and_undoes_the_rest(served):
    hold_route(served)
    service = crm_service(served, subscriptions=(*crm_service(served).subscriptions, taken_route()))
    gateway = StuckEventTypes(served.url, config_url=served.config_url, space=SPACE)

    with gateway, pytest.raises(DeployFailed) as refused:
        deploy(gateway, service, bundle=bundle())

    with served.client() as check:
        left = holdings(check)
    assert left == {
        "functions": [],
        "eventtypes": ["http.request:None", "user.created:None"],
        "subscriptions": [],
        "cors": [],
    }
    message = str(refused.value)
    assert message.startswith(f"creating subscription sync http.request GET {TAKEN}: ")
    assert message.endswith(
        "The rollback failed too, so this deploy left behind in space acme-crm: "
        "eventtype http.request (created; deleting it failed: Internal Server Error); "
        "eventtype user.created (created; deleting it failed: Internal Server Error). "
        "See them with `eg info`; deploying again continues from what the space now holds."
    )


class DroppedCors(RecordingGateway):
    """Makes the CORS write, then loses the answer, as a dropped connection would."""

    def create_cors(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        super().create_cors(*args, **kwargs)
        raise GatewayError("connection reset by peer")


def test_a_write_whose_answer_was_lost_is_undone_with_the_others(served):
    gateway = DroppedCors(served.url, config_url=served.config_url, space=SPACE)

    with gateway, pytest.raises(DeployFailed) as refused:
        deploy(gateway, crm_service(served), bundle=bundle())

    with served.client() as check:
        assert holdings(check) == {
            "functions": [],
            "eventtypes": [],
            "subscriptions": [],
            "cors": [],
        }
    assert str(refused.value).startswith(
        "creating cors GET /acme-crm/users: connection reset by peer. Rolled back this "
        "deploy's 7 changes"
    )
