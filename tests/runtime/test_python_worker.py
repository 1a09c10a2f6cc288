"""Python handlers in real worker processes: results, errors, context, logs and limits."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal

from eventgateway.runtime.child import own_peak_kib
from eventgateway.runtime.pool import FunctionRuntime
from tests.runtime.conftest import USER, RecordingSink, event, make_spec
from tests.runtime.test_child import mb_above_this_process

REPORT = re.compile(
    r"REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d\d) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms\tMemory Size: (?P<size>\d+) MB"
    r"\tMax Memory Used: (?P<used>\d+) MB(?:\tInit Duration: (?P<init>\d+\.\d\d) ms)?$"
)


def error_of(payload: bytes) -> dict[str, object]:
    error = json.loads(payload)
    assert set(error) == {"errorType", "errorMessage", "stackTrace"}
    return error


async def test_the_crm_handler_returns_success_and_logs_in_lambdas_frame(runtime, sink):
    spec = make_spec("handler.handler", memory_mb=1024)

    result = await runtime.invoke(spec, event())

    assert result.ok
    assert json.loads(result.payload) == {"message": "success"}
    rid = result.request_id
    lines = sink.of(rid)
    assert [line.message for line in lines[:3]] == [
        f"START RequestId: {rid} Version: $LATEST",
        "Saving user to CRM:",
        str(USER),
    ]
    assert [line.stream for line in lines] == ["system", "stdout", "stdout", "system", "system"]
    assert lines[3].message == f"END RequestId: {rid}"
    report = REPORT.match(lines[4].message)
    assert report is not None, lines[4].message
    assert report["id"] == rid
    assert float(report["duration"]) > 0
    assert int(report["billed"]) == math.ceil(float(report["duration"]))
    assert int(report["size"]) == 1024
    assert int(report["used"]) > 0
    assert report["init"] is not None  # first call: a cold start


async def test_the_report_figures_match_the_result(runtime, sink):
    result = await runtime.invoke(make_spec("handler.handler"), event())

    report = REPORT.match(sink.messages(result.request_id)[-1])

    assert report is not None
    assert float(report["duration"]) == round(result.duration_ms, 2)
    assert int(report["billed"]) == result.billed_ms == math.ceil(result.duration_ms)
    assert int(report["used"]) == result.max_memory_used_mb
    assert result.init_duration_ms is not None
    assert float(report["init"]) == round(result.init_duration_ms, 2)


async def test_an_async_handler_runs_on_an_event_loop(runtime, sink):
    result = await runtime.invoke(make_spec("handler.async_handler"), event())

    assert result.ok
    assert json.loads(result.payload) == {"message": "success"}
    assert sink.messages(result.request_id)[1:3] == ["Saving user to CRM:", str(USER)]


async def test_the_handler_gets_the_event_decoded(runtime):
    result = await runtime.invoke(make_spec("probe.async_echo"), event({"n": 1}))

    body = json.loads(result.payload)
    assert body["event"]["data"] == {"n": 1}
    assert body["event"]["eventType"] == "user.created"
    assert body["async"] is True


async def test_context_and_environment_look_like_lambdas(runtime, sink):
    spec = make_spec(
        "probe.context_fields", memory_mb=512, timeout_s=5.0, environment={"GREETING": "hi"}
    )

    result = await runtime.invoke(spec, event())

    fields = json.loads(result.payload)
    assert fields["function_name"] == "addUserToCRM"
    assert fields["function_version"] == "$LATEST"
    assert fields["aws_request_id"] == fields["request_id"] == result.request_id
    assert fields["memory_limit_in_mb"] == 512
    assert 0 < fields["remaining_ms"] <= 5000
    assert fields["logger"] == "Logger"
    assert fields["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "addUserToCRM",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "GREETING": "hi",
        "SECRET_OF_THE_GATEWAY": None,
    }
    assert fields["cwd"] == str(spec.bundle_dir)
    assert fields["sys_path_0"] == str(spec.bundle_dir)
    assert "via context.log" in sink.messages(result.request_id)


async def test_the_gateways_environment_does_not_leak_into_workers(runtime, monkeypatch):
    monkeypatch.setenv("SECRET_OF_THE_GATEWAY", "hunter2")

    result = await runtime.invoke(make_spec("probe.context_fields"), event())

    assert json.loads(result.payload)["env"]["SECRET_OF_THE_GATEWAY"] is None


async def test_logging_print_and_stderr_are_captured_with_lambdas_log_format(runtime, sink):
    result = await runtime.invoke(make_spec("probe.logs"), event())

    assert result.ok
    rid = result.request_id
    by_stream = {(line.stream, line.message) for line in sink.of(rid)}
    logged = [m for s, m in by_stream if s == "stderr" and m.startswith("[")]
    pattern = r"\[(INFO|WARNING|ERROR)\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t" + rid + "\t"
    assert len(logged) == 3
    assert all(re.match(pattern, message) for message in logged)
    assert {m.rsplit("\t", 1)[1] for m in logged} == {
        "info from the module logger",
        "warning from the root logger",
        "error from context.logger",
    }
    assert ("stderr", "to stderr") in by_stream
    # A last line without a newline still lands, before END.
    stdout = [line.message for line in sink.of(rid) if line.stream == "stdout"]
    assert stdout == ["no newline at the end"]
    assert sink.messages(rid)[-2] == f"END RequestId: {rid}"


async def test_an_exception_gives_lambdas_error_shape(runtime, sink):
    result = await runtime.invoke(make_spec("probe.boom"), event())

    assert not result.ok
    error = error_of(result.payload)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "the answer is not 42"
    stack = "".join(error["stackTrace"])  # type: ignore[arg-type]
    assert 'probe.py", line' in stack
    assert "in boom" in stack
    assert "python_worker" not in stack
    # Lambda's error line and the traceback are one entry, as one logging record would be.
    logged = [m for m in sink.messages(result.request_id) if m.startswith("[ERROR]")]
    assert len(logged) == 1
    first, traceback, *frames = logged[0].split("\n")
    assert first == "[ERROR] ValueError: the answer is not 42"
    assert traceback == "Traceback (most recent call last):"
    assert any("in boom" in frame for frame in frames)


async def test_an_exception_whose_str_fails_is_still_the_handlers_error(runtime, sink):
    # QA: the worker's own str(exc) raised, so the worker died (Runtime.ExitError) and its
    # internals were logged as the function's traceback.
    first = await runtime.invoke(make_spec("probe.boom_unprintable"), event())
    second = await runtime.invoke(make_spec("probe.boom_unprintable"), event())

    error = error_of(first.payload)
    assert error["errorType"] == "Unprintable"
    assert error["errorMessage"] == "<str() of the Unprintable failed: RuntimeError>"
    assert second.init_duration_ms is None  # the same warm worker: it survived
    logged = "\n".join(sink.messages(first.request_id))
    assert "[ERROR] Unprintable: <str() of the Unprintable failed" in logged
    assert "python_worker" not in logged


async def test_the_worker_survives_a_handler_error(runtime):
    first = await runtime.invoke(make_spec("probe.boom"), event())
    second = await runtime.invoke(make_spec("probe.boom"), event())

    assert first.init_duration_ms is not None
    assert second.init_duration_ms is None  # same warm worker


async def test_a_result_that_is_not_json_is_a_marshal_error(runtime):
    result = await runtime.invoke(make_spec("probe.not_json"), event())

    assert not result.ok
    error = error_of(result.payload)
    assert error["errorType"] == "Runtime.MarshalError"
    assert "not JSON serializable" in str(error["errorMessage"])


async def test_a_module_that_fails_to_import_is_an_import_module_error(runtime, sink):
    result = await runtime.invoke(make_spec("broken_import.handler"), event())

    assert not result.ok
    error = error_of(result.payload)
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == (
        "Unable to import module 'broken_import': No module named 'a_module_that_is_not_installed'"
    )
    assert any("Runtime.ImportModuleError" in m for m in sink.messages(result.request_id))


async def test_a_missing_module_and_a_missing_function_are_named(runtime):
    no_module = await runtime.invoke(make_spec("nowhere.handler", function_id="a"), event())
    no_function = await runtime.invoke(make_spec("probe.nope", function_id="b"), event())

    assert error_of(no_module.payload)["errorMessage"] == (
        "Unable to import module 'nowhere': No module named 'nowhere'"
    )
    assert error_of(no_function.payload) == {
        "errorType": "Runtime.HandlerNotFound",
        "errorMessage": "Handler 'nope' missing on module 'probe'",
        "stackTrace": [],
    }


async def test_a_syntax_error_is_reported_and_init_is_retried(runtime, tmp_path):
    (tmp_path / "bad.py").write_text("def handler(event, context)\n    return 1\n")
    spec = make_spec("bad.handler", bundle=tmp_path)

    first = await runtime.invoke(spec, event())
    (tmp_path / "bad.py").write_text("def handler(event, context):\n    return 1\n")
    second = await runtime.invoke(spec, event())

    assert error_of(first.payload)["errorType"] == "Runtime.UserCodeSyntaxError"
    assert "Syntax error in module 'bad'" in str(error_of(first.payload)["errorMessage"])
    # Like Lambda, a failed init is not cached: the next call loads the module afresh.
    assert second.ok
    assert second.init_duration_ms is not None


async def test_dependencies_in_dot_deps_are_importable(runtime, tmp_path):
    (tmp_path / ".deps" / "greeter").mkdir(parents=True)
    (tmp_path / ".deps" / "greeter" / "__init__.py").write_text("WORD = 'hello'\n")
    (tmp_path / "app.py").write_text(
        "import greeter\n\ndef handler(event, context):\n    return greeter.WORD\n"
    )

    result = await runtime.invoke(make_spec("app.handler", bundle=tmp_path), event())

    assert json.loads(result.payload) == "hello"


async def test_a_timeout_kills_the_worker_and_the_next_call_gets_a_new_one(runtime, sink):
    spec = make_spec("probe.sleep_forever", timeout_s=1.0)
    first = await runtime.invoke(spec, event())

    assert not first.ok
    error = error_of(first.payload)
    assert error["errorMessage"] == "Task timed out after 1.00 seconds"
    assert first.duration_ms >= 1000
    rid = first.request_id
    assert sink.messages(rid)[1] == "going to sleep"
    assert sink.messages(rid)[-3:-1] == [
        "Task timed out after 1.00 seconds",
        f"END RequestId: {rid}",
    ]

    again = await runtime.invoke(make_spec("probe.echo", timeout_s=1.0), event())
    assert again.ok
    assert again.init_duration_ms is not None  # a fresh worker


async def test_a_memory_hog_fails_and_its_worker_is_replaced(runtime):
    spec = make_spec("probe.hog", memory_mb=128, timeout_s=20.0)

    result = await runtime.invoke(spec, event())

    assert not result.ok
    assert error_of(result.payload)["errorType"] in {"Runtime.OutOfMemory", "MemoryError"}
    after = await runtime.invoke(make_spec("probe.echo", memory_mb=128), event())
    assert after.ok
    assert after.init_duration_ms is not None


def report_of(sink: RecordingSink, request_id: str) -> re.Match[str]:
    report = REPORT.match(sink.messages(request_id)[-1])
    assert report is not None
    return report


async def test_a_worker_that_dies_after_allocating_reports_its_peak(runtime, sink):
    mb = mb_above_this_process()  # else the kernel's figure could be this process's
    spec = make_spec("probe.hog_then_exit", memory_mb=mb + 256)

    result = await runtime.invoke(spec, event({"mb": mb}))

    assert error_of(result.payload)["errorType"] == "Runtime.ExitError"
    assert result.max_memory_used_mb >= mb
    assert int(report_of(sink, result.request_id)["used"]) == result.max_memory_used_mb


async def test_a_worker_killed_at_its_timeout_reports_its_peak(runtime, sink):
    mb = mb_above_this_process()
    spec = make_spec("probe.hog_then_sleep", memory_mb=mb + 256, timeout_s=4.0)

    result = await runtime.invoke(spec, event({"mb": mb}))

    assert error_of(result.payload)["errorType"] == "Sandbox.Timedout"
    assert "holding it" in sink.messages(result.request_id)  # else the timeout came first
    assert int(report_of(sink, result.request_id)["used"]) >= mb


async def test_a_small_worker_that_dies_does_not_report_the_gateways_memory(runtime, sink):
    result = await runtime.invoke(make_spec("probe.exit3"), event())

    # The kernel's figure for it is at least this process's peak (carried over through
    # exec); what it used itself is far less.
    assert error_of(result.payload)["errorType"] == "Runtime.ExitError"
    assert 0 < result.max_memory_used_mb < own_peak_kib() // 1024


async def test_os_exit_is_an_exit_error_and_the_gateway_lives_on(runtime, sink):
    result = await runtime.invoke(make_spec("probe.exit3"), event())

    assert not result.ok
    error = error_of(result.payload)
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3"
    )
    messages = sink.messages(result.request_id)
    assert "about to exit" in messages
    assert messages[-2] == f"END RequestId: {result.request_id}"
    assert (await runtime.invoke(make_spec("probe.echo"), event())).ok


async def test_a_segfault_is_an_exit_error_with_the_signal(runtime):
    result = await runtime.invoke(make_spec("probe.segfault"), event())

    assert error_of(result.payload)["errorMessage"].endswith(  # type: ignore[union-attr]
        "Runtime exited with error: signal: segmentation fault"
    )


async def test_endless_output_is_streamed_not_buffered(runtime_factory):
    sink = RecordingSink(keep=1000)
    runtime: FunctionRuntime = runtime_factory(sink=sink)
    rss_before = sink.peak_rss_kib

    result = await runtime.invoke(make_spec("probe.chatty", timeout_s=1.0), event())

    assert error_of(result.payload)["errorMessage"] == "Task timed out after 1.00 seconds"
    assert sink.count > 10_000
    assert all(len(line.message) == 100 for line in sink.lines[-900:-4])
    # The parent's memory does not follow the output (100 bytes x >10k lines and counting).
    assert sink.peak_rss_kib - rss_before < 64 * 1024


async def test_large_events_and_results_cross_the_pipes_intact(runtime):
    blob = "é" * (3 * 1024 * 1024)  # 6 MiB of UTF-8: many pipe buffers each way

    result = await runtime.invoke(make_spec("probe.echo"), event({"blob": blob}))

    assert result.ok
    assert json.loads(result.payload)["event"]["data"]["blob"] == blob


async def test_a_grandchild_holding_stdout_does_not_hang_the_runtime(runtime, sink):
    try:
        result = await asyncio.wait_for(runtime.invoke(make_spec("probe.escape"), event()), 10)

        assert error_of(result.payload)["errorType"] == "Runtime.ExitError"
        await asyncio.wait_for(runtime.close(), 10)
    finally:
        for message in sink.messages(sink.lines[0].request_id):
            if message.startswith("grandchild "):
                os.kill(int(message.split()[1]), signal.SIGKILL)


async def test_an_integer_of_thousands_of_digits_reaches_the_handler(runtime):
    # Valid JSON the gateway accepted; Python's default 4,300-digit limit would fail every
    # attempt before the handler ran.
    big = "9" * 5000
    body = event().replace(b'"data"', b'"big": ' + big.encode() + b', "data"', 1)

    result = await runtime.invoke(make_spec("probe.echo"), body)

    assert result.ok, result.payload
    assert b'"big": ' + big.encode() + b"," in result.payload  # echoed back whole
