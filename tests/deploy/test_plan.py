"""Deploy plans, without a gateway: what is created, changed and removed, and in which order.

The gateway is played by :class:`Space`, which stores each written body the way the server
does (through the server's own parsers), so a plan applied to it and made again must be
empty. ``tests/deploy/test_apply.py`` repeats the important cases against a real gateway.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from eventgateway.deploy.model import (
    CorsSpec,
    EventTypeSpec,
    FunctionSpec,
    GatewayTarget,
    ServiceSpec,
    SubscriptionSpec,
)
from eventgateway.deploy.plan import Action, Current, Plan, make_plan, remove_plan
from eventgateway.errors import ConfigError
from eventgateway.model.validate import (
    parse_cors,
    parse_event_type,
    parse_function,
    parse_subscription,
)

SPACE = "acme-crm"
BUNDLE = "3f2a1c" + "0" * 58
NEW_BUNDLE = "9b0e4d" + "1" * 58
PARSERS: dict[str, Callable[..., Any]] = {
    "function": parse_function,
    "subscription": parse_subscription,
    "eventtype": parse_event_type,
    "cors": parse_cors,
}
IDS = {
    "function": "functionId",
    "subscription": "subscriptionId",
    "eventtype": "name",
    "cors": "corsId",
}


class Space:
    """The resources of one space, stored as the gateway stores and lists them."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in PARSERS}

    def apply(self, plan: Plan) -> Space:
        for action in plan.actions:
            stored = self.items[action.kind]
            if action.op == "delete":
                del stored[action.resource_id]
                continue
            name = action.resource_id if action.kind == "eventtype" else None
            kwargs = {"name": name} if name else {}
            entity = PARSERS[action.kind](SPACE, dict(action.body or {}), **kwargs)
            stored[action.resource_id] = msgspec.to_builtins(entity)
        return self

    def add(self, kind: str, body: dict[str, Any]) -> Space:
        echo = msgspec.to_builtins(PARSERS[kind](SPACE, body))
        self.items[kind][echo[IDS[kind]]] = echo
        return self

    def current(self, service: ServiceSpec) -> Current:
        return Current.of_space(
            service.metadata,
            functions=self.items["function"].values(),
            subscriptions=self.items["subscription"].values(),
            event_types=self.items["eventtype"].values(),
            cors=self.items["cors"].values(),
        )


def crm(**provider: Any) -> FunctionSpec:
    config = {"handler": "handler.handler", "runtime": "python3.11", **provider}
    return FunctionSpec("addUserToCRM", "addUserToCRM", "python", config)


def hook(url: str = "https://hooks.example.com/users") -> FunctionSpec:
    return FunctionSpec("usersHook", "usersHook", "http", {"url": url})


def on_created(function_id: str = "addUserToCRM", **fields: Any) -> SubscriptionSpec:
    return SubscriptionSpec(function_id, "async", "user.created", "/acme-crm/", "POST", **fields)


def get_users(function_id: str = "usersHook", **fields: Any) -> SubscriptionSpec:
    fields.setdefault("cors", CorsSpec())
    return SubscriptionSpec(function_id, "sync", "http.request", "/acme-crm/users", "GET", **fields)


def service(
    *changes: Callable[[ServiceSpec], ServiceSpec], name: str = "crm-service"
) -> ServiceSpec:
    spec = ServiceSpec(
        name=name,
        stage="dev",
        source=pathlib.Path("/srv/crm-service/serverless.yml"),
        gateway=GatewayTarget(space=SPACE),
        functions=(crm(), hook()),
        subscriptions=(on_created(), get_users()),
        event_types=(EventTypeSpec("user.created"),),
    )
    for change in changes:
        spec = change(spec)
    return spec


def replace(**fields: Any) -> Callable[[ServiceSpec], ServiceSpec]:
    return lambda spec: dataclasses.replace(spec, **fields)


def deployed(spec: ServiceSpec, space: Space | None = None) -> Space:
    space = space or Space()
    return space.apply(make_plan(spec, space.current(spec), bundle_id=BUNDLE))


def lines(plan: Plan) -> list[str]:
    return plan.describe().splitlines()


# -- first and repeated deploys ---------------------------------------------------------------


def test_a_first_deploy_creates_everything_in_dependency_order():
    spec = service()

    plan = make_plan(spec, Current(), bundle_id=BUNDLE)

    assert lines(plan) == [
        "+ function      addUserToCRM (python3.11, handler.handler)",
        "+ function      usersHook (http, https://hooks.example.com/users)",
        "+ eventtype     user.created",
        "+ eventtype     http.request",
        "+ subscription  async user.created POST /acme-crm/ → addUserToCRM",
        "+ subscription  sync http.request GET /acme-crm/users → usersHook",
        "+ cors          GET /acme-crm/users",
    ]
    assert (plan.created, plan.changed, plan.removed) == (7, 0, 0)
    function = plan.actions[0]
    assert function.body == {
        "functionId": "addUserToCRM",
        "type": "python",
        "provider": {"handler": "handler.handler", "runtime": "python3.11", "bundle": BUNDLE},
        "metadata": {"service": "crm-service", "stage": "dev"},
    }


def test_deploying_again_without_changes_changes_nothing():
    spec = service()
    space = deployed(spec)

    plan = make_plan(spec, space.current(spec), bundle_id=BUNDLE)

    assert plan.empty
    assert plan.summary() == "no changes"
    assert plan.describe() == ""


def test_values_the_gateway_fills_in_or_normalises_compare_equal():
    # Defaults written out, a lower-case method, a retry policy equal to the default and
    # CORS lists equal to the gateway's defaults all store as the bare body does.
    spec = service()
    space = deployed(spec)
    spelled_out = service(
        replace(
            functions=(crm(memorySize=1024, timeout=6, concurrency=4, environment={}), hook()),
            subscriptions=(
                dataclasses.replace(
                    on_created(options={"retryPolicy": {}, "delivery": "at-least-once"}),
                    method="post",
                ),
                get_users(cors=CorsSpec(allowed_origins=("*",), allow_credentials=False)),
            ),
        )
    )

    assert make_plan(spelled_out, space.current(spelled_out), bundle_id=BUNDLE).empty


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (
            replace(functions=(crm(handler="handler.main"), hook())),
            "~ function      addUserToCRM: provider.handler handler.handler → handler.main",
        ),
        (
            replace(functions=(crm(memorySize=2048), hook())),
            "~ function      addUserToCRM: provider.memorySize 1024 → 2048",
        ),
        (
            replace(functions=(crm(), hook("https://hooks.example.com/v2"))),
            "~ function      usersHook: provider.url https://hooks.example.com/users → "
            "https://hooks.example.com/v2",
        ),
        (
            replace(functions=(crm(environment={"CRM_TOKEN": "s3cret"}), hook())),
            "~ function      addUserToCRM: provider.environment.CRM_TOKEN added",
        ),
        (
            replace(
                subscriptions=(on_created(options={"retryPolicy": {"maxAttempts": 5}}), get_users())
            ),
            "~ subscription  async user.created POST /acme-crm/ → addUserToCRM: "
            "retryPolicy.maxAttempts (none) → 5",
        ),
        (
            replace(
                subscriptions=(
                    on_created(),
                    get_users(cors=CorsSpec(allowed_origins=("https://a.example",))),
                )
            ),
            '~ cors          GET /acme-crm/users: allowedOrigins ["*"] → ["https://a.example"]',
        ),
    ],
    ids=["handler", "memory", "http-url", "environment", "retry-policy", "cors"],
)
def test_a_changed_field_is_one_update_naming_it(changed, expected):
    space = deployed(service())
    spec = service(changed)

    plan = make_plan(spec, space.current(spec), bundle_id=BUNDLE)

    assert lines(plan) == [expected]
    assert (plan.created, plan.changed, plan.removed) == (0, 1, 0)
    assert make_plan(spec, space.apply(plan).current(spec), bundle_id=BUNDLE).empty


def test_a_new_bundle_updates_the_runtime_functions_only():
    spec = service()
    space = deployed(spec)

    plan = make_plan(spec, space.current(spec), bundle_id=NEW_BUNDLE)

    assert lines(plan) == ["~ function      addUserToCRM: provider.bundle 3f2a1c… → 9b0e4d…"]
    [action] = plan.actions
    assert action.before is not None
    assert action.before["provider"]["bundle"] == BUNDLE
    assert action.resource_id == "addUserToCRM"


# -- subscriptions --------------------------------------------------------------------------------


def deleted_event() -> SubscriptionSpec:
    return SubscriptionSpec("addUserToCRM", "async", "user.deleted", "/acme-crm/", "POST")


@pytest.mark.parametrize(
    ("subscriptions", "expected"),
    [
        (
            (on_created(), deleted_event(), get_users()),
            [
                "+ eventtype     user.deleted",
                "+ subscription  async user.deleted POST /acme-crm/ → addUserToCRM",
            ],
        ),
        (
            (get_users(),),
            [
                "- subscription  async user.created POST /acme-crm/ → addUserToCRM",
            ],
        ),
        (
            (dataclasses.replace(on_created(), path="/acme-crm/crm"), get_users()),
            [
                # The new route exists before the old one goes: no event falls between.
                "+ subscription  async user.created POST /acme-crm/crm → addUserToCRM",
                "- subscription  async user.created POST /acme-crm/ → addUserToCRM",
            ],
        ),
        (
            (on_created(), get_users("addUserToCRM")),
            [
                # A sync route has one function: the old subscription goes first.
                "- subscription  sync http.request GET /acme-crm/users → usersHook",
                "+ subscription  sync http.request GET /acme-crm/users → addUserToCRM",
            ],
        ),
        (
            (on_created(), dataclasses.replace(get_users(), path="/acme-crm/users/:id")),
            [
                "- subscription  sync http.request GET /acme-crm/users → usersHook",
                "+ subscription  sync http.request GET /acme-crm/users/:id → usersHook",
                "+ cors          GET /acme-crm/users/:id",
                "- cors          GET /acme-crm/users",
            ],
        ),
    ],
    ids=["added", "removed", "async-path-moved", "sync-function-changed", "sync-path-moved"],
)
def test_subscription_changes(subscriptions, expected):
    space = deployed(service())
    spec = service(replace(subscriptions=subscriptions))

    plan = make_plan(spec, space.current(spec), bundle_id=BUNDLE)

    assert lines(plan) == expected
    assert make_plan(spec, space.apply(plan).current(spec), bundle_id=BUNDLE).empty


def test_a_sync_function_change_counts_as_one_change():
    space = deployed(service())
    spec = service(replace(subscriptions=(on_created(), get_users("addUserToCRM"))))

    plan = make_plan(spec, space.current(spec), bundle_id=BUNDLE)

    assert (plan.created, plan.changed, plan.removed) == (0, 1, 0)


def test_a_removed_function_goes_after_its_subscriptions_and_unused_event_types():
    space = deployed(service())
    spec = service(replace(functions=(hook(),), subscriptions=(get_users(),), event_types=()))

    plan = make_plan(spec, space.current(spec), bundle_id=None)

    assert lines(plan) == [
        "- subscription  async user.created POST /acme-crm/ → addUserToCRM",
        "- eventtype     user.created",
        "- function      addUserToCRM",
    ]
    assert plan.summary() == "0 created, 0 changed, 3 removed"


# -- event types ----------------------------------------------------------------------------------


def with_authorizer(authorizer: str | None) -> Callable[[ServiceSpec], ServiceSpec]:
    return replace(event_types=(EventTypeSpec("user.created", authorizer),))


def test_setting_and_unsetting_an_authorizer_updates_the_event_type():
    space = deployed(service())
    secured = service(with_authorizer("usersHook"))

    set_plan = make_plan(secured, space.current(secured), bundle_id=BUNDLE)
    unset_plan = make_plan(service(), space.apply(set_plan).current(secured), bundle_id=BUNDLE)

    assert lines(set_plan) == ["~ eventtype     user.created: authorizerId (none) → usersHook"]
    assert lines(unset_plan) == ["~ eventtype     user.created: authorizerId usersHook → (none)"]


def test_a_new_authorizer_function_is_created_before_the_event_type_names_it():
    spec = service(with_authorizer("usersHook"))

    plan = make_plan(spec, Current(), bundle_id=BUNDLE)

    # Functions come first, so the event type names its authorizer from the start.
    assert lines(plan)[:4] == [
        "+ function      addUserToCRM (python3.11, handler.handler)",
        "+ function      usersHook (http, https://hooks.example.com/users)",
        "+ eventtype     user.created (authorizer usersHook)",
        "+ eventtype     http.request",
    ]
    assert (plan.created, plan.changed) == (7, 0)
    assert make_plan(spec, Space().apply(plan).current(spec), bundle_id=BUNDLE).empty


def test_an_existing_authorizer_is_named_when_the_event_type_is_created():
    space = deployed(service())
    spec = service(replace(event_types=(EventTypeSpec("user.updated", "usersHook"),)))

    plan = make_plan(spec, space.current(spec), bundle_id=BUNDLE)

    assert lines(plan) == ["+ eventtype     user.updated (authorizer usersHook)"]


def other_service(*subscriptions: SubscriptionSpec) -> ServiceSpec:
    """users-service: one HTTP function ``bHook`` subscribed to ``subscriptions``."""
    return dataclasses.replace(
        service(name="users-service"),
        functions=(FunctionSpec("bHook", "bHook", "http", {"url": "https://b.example/"}),),
        subscriptions=subscriptions or (on_created("bHook"),),
        event_types=(),
    )


def test_event_types_of_other_services_are_used_as_they_are_and_never_deleted():
    space = deployed(other_service())
    spec = service()

    first = make_plan(spec, space.current(spec), bundle_id=BUNDLE)
    removal = remove_plan(spec, space.apply(first).current(spec))

    assert "user.created" not in "\n".join(
        line for line in lines(first) + lines(removal) if "eventtype" in line
    )
    assert "- eventtype     http.request" in lines(removal)


def test_an_own_event_type_still_used_elsewhere_is_kept():
    space = deployed(other_service(), deployed(service()))

    plan = remove_plan(service(), space.current(service()))

    assert "- eventtype     http.request" in lines(plan)
    assert "- eventtype     user.created" not in lines(plan)


def test_a_kept_event_type_loses_an_authorizer_that_is_removed():
    space = deployed(other_service(), deployed(service(with_authorizer("usersHook"))))

    plan = remove_plan(service(), space.current(service()))

    assert lines(plan)[0] == "~ eventtype     user.created: authorizerId usersHook → (none)"
    assert lines(plan)[-1] == "- function      usersHook"
    space.apply(plan)
    assert space.items["eventtype"]["user.created"].get("authorizerId") is None


def test_an_authorizer_on_another_services_event_type_is_refused():
    space = deployed(other_service())

    with pytest.raises(ConfigError, match="belongs to service users-service"):
        make_plan(service(with_authorizer("usersHook")), space.current(service()), bundle_id=BUNDLE)


def test_an_event_type_without_owner_is_adopted_to_set_its_authorizer():
    space = Space().add("eventtype", {"name": "user.created"})
    spec = service(with_authorizer("usersHook"))

    plan = make_plan(spec, space.current(spec), bundle_id=BUNDLE)

    assert "~ eventtype     user.created: authorizerId (none) → usersHook, metadata.service " in (
        plan.describe()
    )
    assert make_plan(spec, space.apply(plan).current(spec), bundle_id=BUNDLE).empty


# -- CORS -----------------------------------------------------------------------------------------


def test_cors_added_and_removed_with_its_subscription_setting():
    space = deployed(service(replace(subscriptions=(on_created(), get_users(cors=None)))))
    spec = service()

    added = make_plan(spec, space.current(spec), bundle_id=BUNDLE)
    removed = make_plan(
        service(replace(subscriptions=(on_created(), get_users(cors=None)))),
        space.apply(added).current(spec),
        bundle_id=BUNDLE,
    )

    assert lines(added) == ["+ cors          GET /acme-crm/users"]
    assert lines(removed) == ["- cors          GET /acme-crm/users"]


def test_unchanged_cors_is_left_alone():
    # The original plugin deleted every CORS configuration on a redeploy (§6.3 step 10).
    spec = service()
    space = deployed(spec)

    assert "cors" not in make_plan(spec, space.current(spec), bundle_id=BUNDLE).describe()


# -- ownership and conflicts ----------------------------------------------------------------------


def test_a_function_id_of_another_service_is_refused_with_the_fix():
    space = deployed(service(name="users-service"))

    with pytest.raises(ConfigError) as refused:
        make_plan(service(), space.current(service()), bundle_id=BUNDLE)

    message = str(refused.value)
    assert "function addUserToCRM" in message
    assert "service users-service (stage dev)" in message
    assert "`name:`" in message
    assert "eg remove" in message


def test_the_same_service_on_another_stage_owns_its_own_functions():
    space = deployed(service())
    prod = dataclasses.replace(service(), stage="prod")

    with pytest.raises(ConfigError, match=r"service crm-service \(stage dev\)"):
        make_plan(prod, space.current(prod), bundle_id=BUNDLE)


def test_a_function_without_metadata_is_refused_with_the_command_removing_it():
    space = Space().add(
        "function", {"functionId": "addUserToCRM", "type": "http", "provider": {"url": "http://x/"}}
    )

    with pytest.raises(ConfigError) as refused:
        make_plan(service(), space.current(service()), bundle_id=BUNDLE)

    assert "no service metadata" in str(refused.value)
    assert "eg functions rm addUserToCRM" in str(refused.value)


def test_a_sync_route_of_another_service_is_refused():
    space = deployed(other_service(get_users("bHook")))

    with pytest.raises(ConfigError, match="already exists in another service: service users"):
        make_plan(service(), space.current(service()), bundle_id=BUNDLE)


def test_a_function_another_service_subscribed_is_not_removed():
    space = deployed(service())
    space.add(
        "subscription",
        {
            "type": "async",
            "eventType": "user.created",
            "functionId": "usersHook",
            "path": "/acme-crm/",
            "metadata": {"service": "users-service", "stage": "dev"},
        },
    )

    with pytest.raises(ConfigError, match=r"usersHook cannot be removed.*users-service"):
        remove_plan(service(), space.current(service()))


def test_cors_of_another_owner_is_refused():
    space = Space().add("cors", {"method": "GET", "path": "/acme-crm/users"})

    with pytest.raises(ConfigError, match="CORS configuration of GET /acme-crm/users belongs"):
        make_plan(service(), space.current(service()), bundle_id=BUNDLE)


def test_two_routes_sharing_cors_must_agree():
    also_async = dataclasses.replace(
        get_users("addUserToCRM", cors=CorsSpec(allow_credentials=True)), type="async"
    )
    agreeing = dataclasses.replace(get_users("addUserToCRM"), type="async")

    with pytest.raises(ConfigError, match="two different CORS settings"):
        make_plan(
            service(replace(subscriptions=(get_users(), also_async))), Current(), bundle_id=BUNDLE
        )
    plan = make_plan(
        service(replace(subscriptions=(get_users(), agreeing))), Current(), bundle_id=BUNDLE
    )
    assert lines(plan).count("+ cors          GET /acme-crm/users") == 1


def test_an_async_subscription_of_an_own_function_without_owner_is_adopted():
    spec = service()
    space = deployed(spec)
    [sid] = [k for k, v in space.items["subscription"].items() if v["type"] == "async"]
    del space.items["subscription"][sid]["metadata"]

    plan = make_plan(spec, space.current(spec), bundle_id=BUNDLE)

    assert [(a.op, a.kind) for a in plan.actions] == [("update", "subscription")]


def test_a_function_authorizing_another_services_event_type_is_not_removed():
    space = deployed(service())
    space.add(
        "eventtype",
        {"name": "user.banned", "authorizerId": "usersHook", "metadata": {"service": "mod"}},
    )

    with pytest.raises(ConfigError, match="usersHook cannot be removed: it authorizes"):
        remove_plan(service(), space.current(service()))


@pytest.mark.parametrize(
    ("spec", "bundle_id", "message"),
    [
        (service(), None, "function addUserToCRM: a python function runs uploaded code"),
        (
            service(replace(functions=(crm(), hook("not a url")))),
            BUNDLE,
            "usersHook: Function doesn't validate. Validation error: missing required fields",
        ),
        (
            service(replace(subscriptions=(on_created(), on_created()))),
            BUNDLE,
            "declared twice",
        ),
        (
            service(with_authorizer("ghost")),
            BUNDLE,
            "event type user.created: its authorizer 'ghost' is neither",
        ),
    ],
    ids=["no-bundle", "invalid-body", "twice", "unknown-authorizer"],
)
def test_a_service_the_gateway_would_refuse_fails_before_any_write(spec, bundle_id, message):
    with pytest.raises(ConfigError, match=message):
        make_plan(spec, Current(), bundle_id=bundle_id)


# -- removal --------------------------------------------------------------------------------------


def test_remove_deletes_everything_of_the_service_in_a_safe_order():
    space = deployed(service(with_authorizer("usersHook")))

    plan = remove_plan(service(), space.current(service()))

    assert lines(plan) == [
        "- subscription  async user.created POST /acme-crm/ → addUserToCRM",
        "- subscription  sync http.request GET /acme-crm/users → usersHook",
        "- cors          GET /acme-crm/users",
        "- eventtype     http.request",
        "- eventtype     user.created",
        "- function      addUserToCRM",
        "- function      usersHook",
    ]
    assert space.apply(plan).items == Space().items


def test_remove_leaves_other_services_alone():
    signup = dataclasses.replace(on_created("bHook"), event_type="user.signup")
    space = deployed(service(), deployed(other_service(signup)))

    space.apply(remove_plan(service(), space.current(service())))

    assert set(space.items["function"]) == {"bHook"}
    assert set(space.items["eventtype"]) == {"user.signup"}
    assert len(space.items["subscription"]) == 1


def test_action_describe_pads_the_kind():
    action = Action("delete", "subscription", "async a.b POST /s/", "id", detail=" → fn")

    assert action.describe() == "- subscription  async a.b POST /s/ → fn"
    assert action.verb == "deleting"
