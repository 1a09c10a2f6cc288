"""eventgateway.testing: LocalGateway, its helpers, and the pytest plugin's fixture."""

from __future__ import annotations

import io
import pathlib
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator

import pytest

from eventgateway.testing import Invocation, LocalGateway, find_service

pytest_plugins = ["pytester"]

HANDLER = textwrap.dedent(
    """
    import json

    def handler(event, context):
        print("Saving user to CRM:")
        print(json.dumps(event["data"]))
        return {"message": "success"}

    def fail(event, context):
        print("about to fail")
        raise ValueError("boom")

    def route(event, context):
        body = {"id": event["data"]["params"]["id"]}
        return {"statusCode": 200, "headers": {}, "body": json.dumps(body)}
    """
)


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def local() -> Iterator[LocalGateway]:
    """An empty local gateway, configured by hand through its client (no deploy)."""
    with LocalGateway() as gateway:
        client = gateway.client
        bundle = client.upload_bundle(zipped({"handler.py": HANDLER}))["bundleId"]
        for function_id, handler in [("crm", "handler"), ("broken", "fail"), ("api", "route")]:
            provider = {"bundle": bundle, "handler": f"handler.{handler}"}
            client.create_function(function_id, "python", provider)
        client.create_event_type("user.created")
        client.create_event_type("user.deleted")
        client.create_event_type("http.request")
        client.subscribe("user.created", "crm")
        client.subscribe("user.deleted", "broken")
        client.subscribe(
            "http.request", "api", type="sync", method="GET", path="/default/users/:id"
        )
        yield gateway


@pytest.fixture
def gateway(local: LocalGateway) -> LocalGateway:
    local.reset()
    return local


# -- importing -------------------------------------------------------------------------------


HEAVY = ("eventgateway.app", "eventgateway.embedded", "eventgateway.sdk", "eventgateway.deploy")
HEAVY_LIBRARIES = ("uvicorn", "httpx", "aiohttp", "starlette", "yaml", "sqlite3")


def test_importing_the_plugin_loads_no_server_code():
    code = "import sys, eventgateway.testing; print(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )

    loaded = result.stdout.split()
    heavy = [m for m in loaded if m.startswith(HEAVY) or m.split(".")[0] in HEAVY_LIBRARIES]
    assert "eventgateway.testing" in loaded
    assert heavy == []


# -- finding the service ---------------------------------------------------------------------


def test_find_service_takes_the_nearest_serverless_yml_above(tmp_path: pathlib.Path):
    (tmp_path / "serverless.yml").write_text("service: outer\n")
    inner = tmp_path / "svc"
    (inner / "tests").mkdir(parents=True)
    (inner / "serverless.yaml").write_text("service: inner\n")
    test_file = inner / "tests" / "test_x.py"
    test_file.write_text("")

    assert find_service(test_file) == inner / "serverless.yaml"
    assert find_service(tmp_path) == tmp_path / "serverless.yml"


def test_find_service_stops_at_the_root_it_is_given(tmp_path: pathlib.Path):
    (tmp_path / "serverless.yml").write_text("service: outer\n")
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)

    with pytest.raises(FileNotFoundError, match=r"no serverless\.yml in .*pytest\.mark"):
        find_service(root / "tests" / "test_x.py", root)


# -- emitting and waiting --------------------------------------------------------------------


def test_wait_for_invocation_returns_the_next_invocation_with_its_output(gateway: LocalGateway):
    result = gateway.emit("user.created", data={"username": "ada"})

    invocation = gateway.wait_for_invocation("crm", timeout_s=10)

    assert result.status == 202
    assert invocation.ok
    assert invocation.result == {"message": "success"}
    assert invocation.error is None
    assert invocation.event["data"] == {"username": "ada"}
    assert invocation.logs == ["Saving user to CRM:", '{"username": "ada"}']
    assert "Saving user to CRM:" in invocation.output
    assert invocation.request_id


def test_each_invocation_is_offered_once_in_order(gateway: LocalGateway):
    gateway.emit("user.created", data={"n": 1})
    first = gateway.wait_for_invocation("crm")
    gateway.emit("user.created", data={"n": 2})
    second = gateway.wait_for_invocation("crm")

    assert [first.event["data"], second.event["data"]] == [{"n": 1}, {"n": 2}]
    assert [i.request_id for i in gateway.invocations("crm")][-2:] == [
        first.request_id,
        second.request_id,
    ]


def test_a_failing_handler_gives_a_failed_invocation_with_the_error(gateway: LocalGateway):
    gateway.emit("user.deleted", data={"username": "ada"})

    invocation = gateway.wait_for_invocation("broken")

    assert not invocation.ok
    assert invocation.result is None
    assert invocation.error is not None
    assert (invocation.error["errorType"], invocation.error["errorMessage"]) == (
        "ValueError",
        "boom",
    )
    assert invocation.logs[0] == "about to fail"
    assert "[ERROR] ValueError: boom" in invocation.output


def test_waiting_without_an_invocation_times_out_saying_what_ran(gateway: LocalGateway):
    gateway.emit("user.created", data={})
    gateway.wait_for_invocation("crm")

    with pytest.raises(TimeoutError, match=r"'api' was not invoked within 0.2 s .*crm"):
        gateway.wait_for_invocation("api", timeout_s=0.2)


def test_reset_forgets_earlier_invocations(gateway: LocalGateway):
    gateway.emit("user.created", data={"old": True})
    gateway.wait_for_invocation("crm")
    gateway.emit("user.created", data={"old": False})
    gateway.wait_for_invocation("crm")  # so the next one cannot be the old event
    gateway.reset()
    gateway.emit("user.created", data={"new": True})

    assert gateway.wait_for_invocation("crm").event["data"] == {"new": True}


# -- routes, invoke, logs --------------------------------------------------------------------


def test_request_calls_a_sync_route_relative_to_the_space(gateway: LocalGateway):
    response = gateway.request("GET", "/users/42")

    assert response.status_code == 200
    assert response.json() == {"id": "42"}
    assert gateway.wait_for_invocation("api").ok


def test_invoke_calls_the_function_now_and_is_not_offered_again(gateway: LocalGateway):
    invocation = gateway.invoke("crm", {"username": "grace"})

    assert isinstance(invocation, Invocation)
    assert invocation.ok
    assert invocation.result == {"message": "success"}
    assert invocation.logs == ["Saving user to CRM:", '{"username": "grace"}']
    with pytest.raises(TimeoutError):
        gateway.wait_for_invocation("crm", timeout_s=0.2)


def test_logs_returns_the_functions_log_entries(gateway: LocalGateway):
    invocation = gateway.invoke("crm", {"username": "lin"})

    entries = gateway.logs("crm", filter="lin")

    assert [entry["message"] for entry in entries] == ['{"username": "lin"}']
    assert entries[0]["requestId"] == invocation.request_id


# -- lifecycle -------------------------------------------------------------------------------


def test_stop_is_idempotent_and_removes_the_temporary_data():
    gateway = LocalGateway()
    gateway.start()
    data_dir = gateway._temporary
    assert data_dir is not None
    assert data_dir.is_dir()

    gateway.stop()
    gateway.stop()

    assert not data_dir.exists()
    with pytest.raises(RuntimeError, match=r"call start\(\) first"):
        gateway.emit("user.created")


# -- the pytest plugin -----------------------------------------------------------------------


def test_the_plugin_gives_an_empty_gateway_when_the_marker_says_so(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.eventgateway(service=None)
        def test_empty(eventgateway):
            assert eventgateway.space == "default"
            assert eventgateway.client.status()
            assert eventgateway.emit("anything", data=1).status == 202
        """
    )

    result = pytester.runpytest("-p", "no:asyncio")

    result.assert_outcomes(passed=1)


def test_the_plugin_says_where_it_looked_for_the_service(pytester: pytest.Pytester):
    pytester.makepyfile("def test_needs_a_service(eventgateway):\n    pass\n")

    result = pytester.runpytest("-p", "no:asyncio")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no serverless.yml in*"])


def test_the_plugin_refuses_an_unknown_scope(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\neventgateway_scope = session\n")
    pytester.makepyfile("def test_x(eventgateway):\n    pass\n")

    result = pytester.runpytest("-p", "no:asyncio")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*eventgateway_scope is 'session': use function or module*"])


# -- the plugin with a service ---------------------------------------------------------------

SERVICE = """
service: crm-service
provider:
  name: eventgateway
  runtime: python3.11
custom:
  eventgateway:
    space: ${env:CRM_SPACE, 'acme-crm'}
functions:
  addUserToCRM:
    handler: handler.handler
    events:
      - eventgateway:
          event: user.created
  route:
    handler: handler.route
    events:
      - eventgateway:
          type: sync
          eventType: http.request
          path: /users/:id
          method: GET
"""

SERVICE_TESTS = """
import pytest

URLS = []

def test_emit_reaches_the_function(eventgateway):
    URLS.append(eventgateway.events_url)
    assert eventgateway.emit("user.created", data={"username": "ada"}).status == 202
    invocation = eventgateway.wait_for_invocation("addUserToCRM", timeout_s=10)
    assert invocation.ok and "Saving user to CRM:" in invocation.output
    assert invocation.result == {"message": "success"}

def test_a_route_answers(eventgateway):
    URLS.append(eventgateway.events_url)
    response = eventgateway.request("GET", "/users/7")
    assert response.json() == {"id": "7"}
    assert eventgateway.wait_for_invocation("route").ok
    with pytest.raises(TimeoutError):  # the first test's invocation is not offered again
        eventgateway.wait_for_invocation("addUserToCRM", timeout_s=0.2)

def test_the_gateway_lived_as_long_as_its_scope(request):
    shared = request.config.getini("eventgateway_scope") == "module"
    assert len(set(URLS)) == (1 if shared else 2)
"""


def write_service(pytester: pytest.Pytester, tests: str = SERVICE_TESTS) -> None:
    pytester.makefile(".yml", serverless=SERVICE)
    pytester.makepyfile(handler=HANDLER, test_service=tests)


@pytest.mark.parametrize("scope", ["function", "module"])
def test_the_fixture_deploys_the_service_beside_the_test(pytester: pytest.Pytester, scope: str):
    write_service(pytester)
    pytester.makeini(f"[pytest]\neventgateway_scope = {scope}\n")

    result = pytester.runpytest("-p", "no:asyncio")

    result.assert_outcomes(passed=3)


def test_the_marker_names_the_service_and_its_variables(pytester: pytest.Pytester):
    service_dir = pytester.mkdir("crm")
    (service_dir / "serverless.yml").write_text(SERVICE)
    (service_dir / "handler.py").write_text(HANDLER)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.eventgateway(service="crm/serverless.yml", environ={"CRM_SPACE": "crm-x"})
        def test_space_from_environ(eventgateway):
            assert eventgateway.space == "crm-x"
            assert eventgateway.service.name == "crm-service"
            assert eventgateway.invoke("addUserToCRM", {"username": "ada"}).ok
        """
    )

    result = pytester.runpytest("-p", "no:asyncio")

    result.assert_outcomes(passed=1)


def test_an_invalid_service_fails_the_test_with_the_files_message(pytester: pytest.Pytester):
    pytester.makefile(".yml", serverless="service: broken\nfunctions: [1, 2]\n")
    pytester.makepyfile("def test_x(eventgateway):\n    pass\n")

    result = pytester.runpytest("-p", "no:asyncio")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*serverless.yml*functions*"])


# -- the examples, through the kit -----------------------------------------------------------

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "example",
    [
        "crm-service",
        pytest.param(
            "crm-service-node",
            marks=pytest.mark.skipif(shutil.which("node") is None, reason="needs node"),
        ),
    ],
)
def test_the_crm_examples_save_an_emitted_user(example: str):
    with LocalGateway(EXAMPLES / example, environ={}) as gateway:
        gateway.emit("user.created", data={"username": "ada"})
        invocation = gateway.wait_for_invocation("addUserToCRM")

    assert invocation.ok, invocation.error
    assert "Saving user to CRM:" in invocation.output
    assert "ada" in invocation.output


def test_the_users_example_serves_its_routes():
    with LocalGateway(EXAMPLES / "users-service", environ={}) as gateway:
        found = gateway.request("GET", "/users/1")
        created = gateway.request("POST", "/users", json={"username": "grace"})
        missing = gateway.request("GET", "/users/404")

    assert (found.status_code, found.json()["username"]) == (200, "ada")
    assert (created.status_code, created.json()["username"]) == (201, "grace")
    assert missing.status_code == 404
