"""Deploy and remove against a real gateway: the app under uvicorn on two 127.0.0.1 ports in
a background thread (memory store, real code bundles), driven by the blocking SDK.

Services are built by hand, not read from a serverless.yml. Each test gets a fresh gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import pathlib
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import uvicorn

from eventgateway.app import Gateway
from eventgateway.deploy.apply import apply_plan, deploy, fetch_current, remove
from eventgateway.deploy.model import (
    CorsSpec,
    EventTypeSpec,
    FunctionSpec,
    GatewayTarget,
    ServiceSpec,
    SubscriptionSpec,
)
from eventgateway.deploy.plan import Action, Plan
from eventgateway.errors import ConfigError
from eventgateway.sdk._wire import Call
from eventgateway.sdk.sync import EventGateway
from eventgateway.settings import Settings
from eventgateway.store.memory import MemoryStore

T = TypeVar("T")

SPACE = "acme-crm"
HANDLER = 'def handler(event, context):\n    print("Saving user to CRM:", event["data"])\n'
WRITES = ("POST", "PUT", "DELETE")
SECURED = (EventTypeSpec("user.created", authorizer_id="usersHook"),)


@dataclass(frozen=True)
class Bundle:
    data: bytes
    bundle_id: str
    size: int


def bundle(source: str = HANDLER) -> Bundle:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        # A fixed timestamp: the same source must give the same bundle id.
        zipped.writestr(zipfile.ZipInfo("handler.py", (2024, 1, 1, 0, 0, 0)), source)
    data = archive.getvalue()
    return Bundle(data, hashlib.sha256(data).hexdigest(), len(data))


class RecordingGateway(EventGateway):
    """The blocking client, remembering the method and URL of every request it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str]] = []

    def _send(self, call: Call[T]) -> T:
        self.sent.append((call.request.method, call.request.url))
        return super()._send(call)

    def writes(self) -> list[tuple[str, str]]:
        return [(method, url) for method, url in self.sent if method in WRITES]


@dataclass
class Served:
    url: str
    config_url: str

    @contextlib.contextmanager
    def client(self, space: str = SPACE) -> Iterator[RecordingGateway]:
        gateway = RecordingGateway(self.url, config_url=self.config_url, space=space)
        with gateway:
            yield gateway


def listening() -> socket.socket:
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # then, and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.fixture
def served() -> Iterator[Served]:
    events, config = listening(), listening()
    config_port = config.getsockname()[1]
    settings = Settings(store_url="memory://", dispatch="inline", shutdown_timeout_s=0.5)
    app = Gateway(settings, store=MemoryStore()).asgi(config_port)
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    )
    # The sockets already listen, so requests sent before uvicorn is up wait in the backlog.
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[events, config]),))
    thread.start()
    try:
        yield Served(
            f"http://127.0.0.1:{events.getsockname()[1]}", f"http://127.0.0.1:{config_port}"
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        events.close()
        config.close()
    assert not thread.is_alive(), "uvicorn did not stop"


def crm(**provider: Any) -> FunctionSpec:
    return FunctionSpec(
        "addUserToCRM", "addUserToCRM", "python", {"handler": "handler.handler", **provider}
    )


def hook(served_url: str, function_id: str = "usersHook") -> FunctionSpec:
    return FunctionSpec(function_id, function_id, "http", {"url": f"{served_url}/hook"})


def on_created(function_id: str = "addUserToCRM") -> SubscriptionSpec:
    return SubscriptionSpec(function_id, "async", "user.created", f"/{SPACE}/", "POST")


def get_users(function_id: str = "usersHook", path: str = f"/{SPACE}/users") -> SubscriptionSpec:
    return SubscriptionSpec(
        function_id, "sync", "http.request", path, "GET", cors=CorsSpec(allowed_origins=("*",))
    )


def crm_service(served: Served, **fields: Any) -> ServiceSpec:
    base = ServiceSpec(
        name="crm-service",
        stage="dev",
        source=pathlib.Path("/srv/crm-service/serverless.yml"),
        gateway=GatewayTarget(url=served.url, config_url=served.config_url, space=SPACE),
        functions=(crm(), hook(served.url)),
        subscriptions=(on_created(), get_users()),
        event_types=(EventTypeSpec("user.created"),),
    )
    return dataclasses.replace(base, **fields)


def users_service(served: Served, space: str = SPACE, **fields: Any) -> ServiceSpec:
    base = ServiceSpec(
        name="users-service",
        stage="dev",
        source=pathlib.Path("/srv/users-service/serverless.yml"),
        gateway=GatewayTarget(url=served.url, config_url=served.config_url, space=space),
        functions=(hook(served.url, "welcomeMail"),),
        subscriptions=(on_created("welcomeMail"),),
    )
    return dataclasses.replace(base, **fields)


def holdings(gateway: EventGateway) -> dict[str, list[str]]:
    """Every resource of the gateway's space, by kind, as short sortable strings."""
    return {
        "functions": sorted(f["functionId"] for f in gateway.list_functions()),
        "eventtypes": sorted(
            f"{e['name']}:{e.get('authorizerId')}" for e in gateway.list_event_types()
        ),
        "subscriptions": sorted(
            f"{s['type']} {s['eventType']} {s['method']} {s['path']} {s['functionId']}"
            for s in gateway.list_subscriptions()
        ),
        "cors": sorted(c["corsId"] for c in gateway.list_cors()),
    }


# -- deploy -----------------------------------------------------------------------------------


def test_a_first_deploy_uploads_the_code_and_creates_everything(served):
    code = bundle()
    applied: list[Action] = []
    with served.client() as gateway:
        service = crm_service(served, event_types=SECURED)
        result = deploy(gateway, service, bundle=code, progress=applied.append)

        assert result.uploaded is True
        assert (result.bundle_id, result.bundle_bytes) == (code.bundle_id, code.size)
        assert applied == list(result.plan.actions)
        assert result.plan.summary() == "7 created, 0 changed, 0 removed"
        assert holdings(gateway) == {
            "functions": ["addUserToCRM", "usersHook"],
            "eventtypes": ["http.request:None", "user.created:usersHook"],
            "subscriptions": [
                "async user.created POST /acme-crm/ addUserToCRM",
                "sync http.request GET /acme-crm/users usersHook",
            ],
            "cors": ["GET%2Facme-crm%2Fusers"],
        }
        [function] = [f for f in gateway.list_functions() if f["type"] == "python"]
        assert function["provider"]["bundle"] == code.bundle_id
        assert function["metadata"] == {"service": "crm-service", "stage": "dev"}


def test_the_deployed_function_runs_its_uploaded_code(served):
    user = {"username": "ada", "email": "ada@example.com"}
    with served.client() as gateway:
        deploy(gateway, crm_service(served), bundle=bundle())

        assert gateway.emit("user.created", user).status == 202
        # The log stream ends the wait; its keep-alive deadline bounds it.
        with contextlib.closing(gateway.tail_logs("addUserToCRM", since="1h")) as tail:
            messages = []
            for line in tail:
                messages.append(line["message"])
                if line["message"].startswith("REPORT"):
                    break

    assert f"Saving user to CRM: {user}" in messages


def test_deploying_again_without_changes_writes_nothing(served):
    code = bundle()
    with served.client() as gateway:
        deploy(gateway, crm_service(served), bundle=code)
        gateway.sent.clear()

        again = deploy(gateway, crm_service(served), bundle=code)

        assert again.plan.empty
        assert again.plan.summary() == "no changes"
        assert again.uploaded is False
        assert gateway.writes() == []


def test_a_change_updates_only_what_changed(served):
    with served.client() as gateway:
        deploy(gateway, crm_service(served), bundle=bundle())
        before = holdings(gateway)
        gateway.sent.clear()
        new_code = bundle(HANDLER + "# v2\n")

        result = deploy(
            gateway,
            crm_service(served, functions=(crm(memorySize=2048), hook(served.url))),
            bundle=new_code,
        )

        assert [a.describe() for a in result.plan.actions] == [
            "~ function      addUserToCRM: provider.bundle "
            f"{bundle().bundle_id[:6]}… → {new_code.bundle_id[:6]}…, "
            "provider.memorySize 1024 → 2048"
        ]
        assert result.uploaded is True
        assert [method for method, _ in gateway.writes()] == ["POST", "PUT"]  # upload, update
        assert holdings(gateway) == before
        [function] = [f for f in gateway.list_functions() if f["type"] == "python"]
        assert function["provider"]["memorySize"] == 2048


def test_updates_of_every_kind_are_accepted_and_converge(served):
    with served.client() as gateway:
        deploy(gateway, crm_service(served), bundle=bundle())
        changed = crm_service(
            served,
            event_types=SECURED,
            subscriptions=(
                dataclasses.replace(on_created(), options={"retryPolicy": {"maxAttempts": 5}}),
                dataclasses.replace(get_users(), cors=CorsSpec(allow_credentials=True)),
            ),
        )

        result = deploy(gateway, changed, bundle=bundle())
        again = deploy(gateway, changed, bundle=bundle())

    assert [(a.op, a.kind) for a in result.plan.actions] == [
        ("update", "eventtype"),
        ("update", "subscription"),
        ("update", "cors"),
    ]
    assert again.plan.empty


def test_a_dry_run_plans_but_writes_nothing(served):
    with served.client() as gateway:
        result = deploy(gateway, crm_service(served), bundle=bundle(), dry_run=True)

        assert result.plan.created == 7
        assert result.uploaded is False
        assert gateway.writes() == []
        assert gateway.bundle_exists(result.bundle_id or "") is False


# -- remove -----------------------------------------------------------------------------------


def test_remove_takes_off_everything_of_the_service_and_nothing_else(served):
    with served.client() as gateway:
        deploy(gateway, users_service(served), bundle=None)
        others = holdings(gateway)
        deploy(gateway, crm_service(served), bundle=bundle())

        plan = remove(gateway, crm_service(served))

        assert plan.removed == 6
        # user.created was created by users-service, which still uses it.
        assert holdings(gateway) == others
        assert remove(gateway, crm_service(served)).empty


def test_an_event_type_the_service_created_stays_while_another_uses_it(served):
    with served.client() as gateway:
        deploy(gateway, crm_service(served, event_types=SECURED), bundle=bundle())
        deploy(gateway, users_service(served), bundle=None)

        remove(gateway, crm_service(served, event_types=SECURED))

        assert holdings(gateway)["eventtypes"] == ["user.created:None"]
        assert fetch_current(gateway, users_service(served)).functions[0]["functionId"] == (
            "welcomeMail"
        )


# -- conflicts ----------------------------------------------------------------------------------


def test_a_function_id_owned_by_another_service_fails_without_writing(served):
    with served.client() as gateway:
        deploy(gateway, crm_service(served), bundle=bundle())
        gateway.sent.clear()
        thief = users_service(served, functions=(hook(served.url, "usersHook"),), subscriptions=())

        with pytest.raises(ConfigError) as refused:
            deploy(gateway, thief, bundle=None)

        assert "belongs to service crm-service (stage dev)" in str(refused.value)
        assert gateway.writes() == []


def test_a_sync_route_taken_in_another_space_names_the_conflict(served):
    with served.client() as gateway:
        deploy(gateway, crm_service(served), bundle=bundle())
    # Event routing is global, so the same route in another space is refused (409).
    taken = users_service(
        served,
        space="other-space",
        functions=(hook(served.url, "otherHook"),),
        subscriptions=(dataclasses.replace(get_users("otherHook"), cors=None),),
    )
    with served.client("other-space") as other, pytest.raises(ConfigError) as refused:
        deploy(other, taken, bundle=None)

    assert str(refused.value).startswith(
        "creating subscription sync http.request GET /acme-crm/users: a subscription for that "
        "endpoint and method already exists in another service"
    )
    assert "already exists." in str(refused.value)  # the gateway's own words follow


def test_a_refused_write_names_the_action_and_quotes_the_gateway(served):
    body = {
        "type": "async",
        "eventType": "user.created",
        "functionId": "ghost",
        "path": f"/{SPACE}/",
        "method": "POST",
    }
    name = "async user.created POST /acme-crm/"
    plan = Plan((Action("create", "subscription", name, "id", body),))

    with served.client() as gateway, pytest.raises(ConfigError) as refused:
        apply_plan(gateway, plan)

    assert str(refused.value) == (
        'creating subscription async user.created POST /acme-crm/: Event Type "user.created" '
        "not found."
    )


def test_deleting_what_is_already_gone_counts_as_done(served):
    applied: list[Action] = []
    plan = Plan((Action("delete", "function", "gone", "gone"),))

    with served.client() as gateway:
        apply_plan(gateway, plan, progress=applied.append)

    assert applied == list(plan.actions)
