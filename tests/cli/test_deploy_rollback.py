"""`eg deploy` against a real `eg serve` that refuses a function midway (no `node` on its
PATH): the deploy undoes what it had written, prints each undo, and fails with the
gateway's refusal first. The space is left as the deploy found it."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

from eventgateway.sdk.sync import EventGateway
from tests.support.ports import free_port
from tests.support.process import GatewayProcess

# Nothing listens there: the events of `notify` are never delivered in these tests.
HOOK = f"http://127.0.0.1:{free_port()}/hook"
REFUSAL = (
    "Error: creating function addUserToCRM: Function doesn't validate. Validation error: "
    "Node.js is required to run function 'addUserToCRM'"
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    # Only the directory of this Python on the PATH: the gateway finds no `node`.
    path = str(pathlib.Path(sys.executable).parent)
    data = tmp_path_factory.mktemp("no-node") / "data"
    process = GatewayProcess(data, env={"PATH": path}).start()
    yield process
    process.stop()


def write_service(directory: pathlib.Path, space: str, *, node: bool, version: str = "v1") -> None:
    """A service with an HTTP function, a Python one, an event type and subscriptions; with
    ``node``, also a Node.js function after them, which a gateway without `node` refuses."""
    (directory / "handler.py").write_text(
        f"def handler(event, context):\n    return {{'version': {version!r}}}\n", encoding="utf-8"
    )
    (directory / "index.js").write_text(
        "exports.handler = async (event) => ({ok: true});\n", encoding="utf-8"
    )
    functions = (
        "  notify:\n    type: http\n"
        f"    url: {HOOK}\n"
        "    events:\n      - eventgateway: {type: async, eventType: user.created}\n"
        "  saveUser:\n    handler: handler.handler\n"
        "    events:\n      - eventgateway: {type: async, eventType: user.saved}\n"
    )
    if node:
        functions += (
            "  addUserToCRM:\n    handler: index.handler\n    runtime: nodejs20.x\n"
            "    events:\n      - eventgateway: {type: async, eventType: user.created}\n"
        )
    (directory / "serverless.yml").write_text(
        f"service: rollback-{space}\n"
        "provider: {name: eventgateway, runtime: python3.11}\n"
        f"custom:\n  eventgateway:\n    space: {space}\n"
        "  eventTypes:\n    user.created:\n"
        f"functions:\n{functions}",
        encoding="utf-8",
    )


def holdings(gateway: GatewayProcess, space: str) -> dict[str, object]:
    with EventGateway(gateway.events_url, config_url=gateway.config_url, space=space) as client:
        return {
            "functions": {f["functionId"]: f for f in client.list_functions()},
            "eventtypes": sorted(e["name"] for e in client.list_event_types()),
            "subscriptions": sorted(s["subscriptionId"] for s in client.list_subscriptions()),
        }


def test_a_refused_first_deploy_leaves_no_event_type_or_subscription(gateway, tmp_path):
    write_service(tmp_path, "first-deploy", node=True)

    failed = gateway.eg(tmp_path, "deploy", expect=1)

    assert holdings(gateway, "first-deploy") == {
        "functions": {},
        "eventtypes": [],
        "subscriptions": [],
    }
    assert failed.stderr.startswith(REFUSAL)
    assert failed.stderr.rstrip().endswith(
        "Rolled back this deploy's 2 changes: space first-deploy is as it was before the deploy."
    )
    assert failed.stderr.count("\n") == 1  # one line
    out = failed.stdout.splitlines()
    rollback = out.index("Rolling back what this deploy changed (a write was refused):")
    assert [line.split(" (")[0] for line in out[rollback + 1 :]] == [
        "  - function      saveUser",
        "  - function      notify",
    ]


def test_a_refused_redeploy_puts_back_the_function_it_had_updated(gateway, tmp_path):
    write_service(tmp_path, "redeploy", node=False)
    gateway.eg(tmp_path, "deploy")
    before = holdings(gateway, "redeploy")
    # New code for saveUser (a new bundle), and a Node.js function written after it.
    write_service(tmp_path, "redeploy", node=True, version="v2")

    failed = gateway.eg(tmp_path, "deploy", expect=1)

    assert holdings(gateway, "redeploy") == before
    assert failed.stderr.startswith(REFUSAL)
    assert "Rolled back this deploy's 1 change: " in failed.stderr
    assert "  ~ function      saveUser: provider.bundle " in failed.stdout
    assert failed.stdout.splitlines()[-2:] == [
        "Rolling back what this deploy changed (a write was refused):",
        "  ~ function      saveUser: restored",
    ]
