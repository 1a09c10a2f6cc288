"""Node.js handlers in real worker processes (skipped without ``node``, failed in CI)."""

from __future__ import annotations

import json

import pytest

from tests.runtime.conftest import USER, event, make_spec, requires_node
from tests.runtime.test_child import mb_above_this_process
from tests.runtime.test_python_worker import REPORT, error_of, report_of


@pytest.fixture(autouse=True)
def _node() -> None:
    requires_node()


def node_spec(handler: str, **overrides: object):
    return make_spec(handler, language="nodejs", bundle="node", **overrides)


async def test_the_original_callback_handler_runs_unchanged(runtime, sink):
    result = await runtime.invoke(node_spec("index.handler"), event())

    assert result.ok
    assert json.loads(result.payload) == {"message": "success"}
    rid = result.request_id
    messages = sink.messages(rid)
    assert messages[0] == f"START RequestId: {rid} Version: $LATEST"
    assert messages[1] == "Saving user to CRM: "
    # console.dir prints the user as util.inspect does, over one or more lines.
    printed = "\n".join(messages[2:-2])
    assert all(value in printed for value in USER.values())
    assert messages[-2] == f"END RequestId: {rid}"
    report = REPORT.match(messages[-1])
    assert report is not None
    assert int(report["used"]) > 0
    assert report["init"] is not None


async def test_an_async_handler_gets_a_lambda_context(runtime):
    spec = node_spec("probe.asyncHandler", memory_mb=256, timeout_s=3.0)

    first = await runtime.invoke(spec, event())
    second = await runtime.invoke(spec, event())

    body = json.loads(first.payload)
    assert body["name"] == "addUserToCRM"
    assert body["requestId"] == first.request_id
    assert body["memory"] == "256"
    assert 0 < body["remaining"] <= 3000
    assert body["waits"] is True
    assert json.loads(second.payload)["pid"] == body["pid"]  # warm
    assert second.init_duration_ms is None


async def test_a_handler_returning_a_promise_without_async(runtime):
    result = await runtime.invoke(node_spec("probe.promiseHandler"), event({"n": 2}))

    assert json.loads(result.payload) == {"got": {"n": 2}}


async def test_console_lines_are_framed_in_order(runtime, sink):
    result = await runtime.invoke(node_spec("probe.logs"), event())

    rid = result.request_id
    lines = sink.of(rid)
    # Each stream keeps its order; stdout and stderr are two pipes, so their relative
    # order is as the parent happened to read them.
    # One console.log is one entry, however many lines it prints.
    assert [line.message for line in lines if line.stream == "stdout"] == [
        "first line",
        "multi\nline",
    ]
    assert [line.message for line in lines if line.stream == "stderr"] == ["to stderr"]
    assert [line.message for line in lines[-2:]] == [f"END RequestId: {rid}", lines[-1].message]
    assert lines[-1].message.startswith(f"REPORT RequestId: {rid}")


async def test_a_thrown_error_gives_lambdas_error_shape(runtime):
    result = await runtime.invoke(node_spec("probe.boom"), event())

    assert not result.ok
    error = error_of(result.payload)
    assert error["errorType"] == "TypeError"
    assert error["errorMessage"] == "not a function, apparently"
    assert any("probe.js" in frame for frame in error["stackTrace"])  # type: ignore[attr-defined]


async def test_a_callback_error_gives_lambdas_error_shape(runtime):
    result = await runtime.invoke(node_spec("probe.callbackError"), event())

    assert error_of(result.payload)["errorMessage"] == "callback says no"


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("probe.rejectsNull", "Promise rejected with null"),
        ("probe.rejectsUndefined", "Promise rejected with undefined"),
        ("probe.throwsNull", "Handler threw null"),
        ("probe.failsNull", "context.fail called with null"),
        ("probe.timerThrowsNull", "Uncaught throw of null"),
    ],
)
async def test_a_failure_without_an_error_value_still_fails(runtime, handler, message):
    # `throw null` and `context.fail(null)` were taken for success: never retried.
    result = await runtime.invoke(node_spec(handler), event())

    assert not result.ok
    error = error_of(result.payload)
    assert (error["errorType"], error["errorMessage"]) == ("Error", message)


async def test_a_throw_of_null_after_the_answer_is_logged_with_a_message(runtime, sink):
    result = await runtime.invoke(node_spec("probe.throwsNullLater"), event())
    assert json.loads(result.payload) == "answered"
    expected = "Uncaught error outside an invocation: Error: Uncaught throw of null"

    # Logged by the worker after its answer: nothing to wait on but the line itself.
    await sink.wait_for(lambda: any(expected in line for line in sink.messages(result.request_id)))


async def test_a_result_json_cannot_hold_is_a_logged_marshal_error(runtime, sink):
    result = await runtime.invoke(node_spec("probe.bigInt"), event())

    error = error_of(result.payload)
    assert error["errorType"] == "Runtime.MarshalError"
    logged = [m for m in sink.messages(result.request_id) if m.startswith("Invoke Error")]
    assert len(logged) == 1  # logged as every other failure is (it was not)
    assert "Runtime.MarshalError" in logged[0]


async def test_a_missing_export_is_handler_not_found(runtime):
    result = await runtime.invoke(node_spec("probe.nope"), event())

    assert error_of(result.payload)["errorType"] == "Runtime.HandlerNotFound"


async def test_a_timeout_kills_the_node_worker(runtime, sink):
    result = await runtime.invoke(node_spec("probe.sleepForever", timeout_s=1.0), event())

    assert error_of(result.payload)["errorMessage"] == "Task timed out after 1.00 seconds"
    assert "going to sleep" in sink.messages(result.request_id)
    assert (await runtime.invoke(node_spec("probe.promiseHandler"), event())).ok


async def test_process_exit_is_an_exit_error(runtime):
    result = await runtime.invoke(node_spec("probe.exit3"), event())

    assert error_of(result.payload)["errorType"] == "Runtime.ExitError"
    assert str(error_of(result.payload)["errorMessage"]).endswith("exit status 3")


async def test_a_worker_that_dies_after_allocating_reports_its_peak(runtime, sink):
    mb = mb_above_this_process()
    spec = node_spec("probe.hogThenExit", memory_mb=mb + 256)

    result = await runtime.invoke(spec, event({"mb": mb}))

    assert error_of(result.payload)["errorType"] == "Runtime.ExitError"
    assert result.max_memory_used_mb >= mb
    assert int(report_of(sink, result.request_id)["used"]) == result.max_memory_used_mb


async def test_a_heap_hog_ends_in_out_of_memory(runtime):
    result = await runtime.invoke(node_spec("probe.hog", memory_mb=64, timeout_s=20.0), event())

    assert error_of(result.payload)["errorType"] == "Runtime.OutOfMemory"


async def test_the_pre_callback_context_api_still_works(runtime):
    result = await runtime.invoke(node_spec("probe.legacySucceed"), event())

    assert json.loads(result.payload) == {"legacy": True}


async def test_a_plain_function_returns_its_value(runtime):
    result = await runtime.invoke(node_spec("probe.plainReturn"), event({"n": 3}))

    assert json.loads(result.payload) == {"plain": {"n": 3}}


async def test_a_forgotten_callback_ends_with_null_when_the_event_loop_empties(runtime, sink):
    spec = node_spec("probe.forgetsCallback", timeout_s=5.0)

    result = await runtime.invoke(spec, event())
    again = await runtime.invoke(spec, event())

    assert result.ok
    assert json.loads(result.payload) is None
    assert result.duration_ms < 5000  # not a timeout
    assert "done, but no callback" in sink.messages(result.request_id)
    assert again.ok
    assert again.init_duration_ms is None  # the worker lives on


# -- context.callbackWaitsForEmptyEventLoop (Lambda's default: true) --------------------------


async def test_a_callback_result_waits_for_the_event_loop_to_empty(runtime, sink):
    result = await runtime.invoke(node_spec("probe.waitsForTimers"), event())

    assert json.loads(result.payload) == "answered"
    messages = sink.messages(result.request_id)
    # The timer set before the callback ran inside the invocation, before its END.
    assert "timer ran" in messages
    assert messages.index("timer ran") < messages.index(f"END RequestId: {result.request_id}")


async def test_an_event_loop_that_never_empties_times_out(runtime):
    spec = node_spec("probe.endlessInterval", timeout_s=1.0)

    result = await runtime.invoke(spec, event())

    assert not result.ok
    assert error_of(result.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 1.00 seconds",
        "stackTrace": [],
    }


async def test_a_callback_error_does_not_wait(runtime):
    spec = node_spec("probe.errorWithEndlessInterval", timeout_s=5.0)

    result = await runtime.invoke(spec, event())

    assert error_of(result.payload)["errorMessage"] == "errors do not wait"


async def test_an_async_handler_does_not_wait_for_the_event_loop(runtime):
    spec = node_spec("probe.asyncWithEndlessInterval", timeout_s=5.0)

    result = await runtime.invoke(spec, event())

    assert json.loads(result.payload) == "async handlers do not wait"


async def test_with_false_the_result_goes_at_once_and_pending_work_runs_on(runtime):
    spec = node_spec("probe.doesNotWait", timeout_s=5.0)

    first = await runtime.invoke(spec, event({}))
    later = await runtime.invoke(spec, event({"check": True}))

    assert first.ok
    assert json.loads(first.payload)["answered"] is True
    body = json.loads(later.payload)
    assert body["pid"] == json.loads(first.payload)["pid"]  # the same warm worker
    assert body["ticks"] >= 1  # the interval the first call left kept running
