"""The delivery worker's own entry point (``python -m eventgateway.call_worker``).

The gateway spawns it through :class:`~eventgateway.supervisor.WorkerProcess`; these tests
start the real child process, call through it, and check that it stays a lean process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

from eventgateway.backends import delivery_worker
from eventgateway.call_worker import STORE_URL_ENV, QueueOptions, parse_args, queue_options
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call
from eventgateway.providers.remote import RemoteHttpProvider
from eventgateway.providers.targets import TargetPolicy
from eventgateway.settings import Settings
from eventgateway.supervisor import WorkerProcess
from tests.support.receiver import Receiver, Reply

# What the worker must not carry: the CLI, the server, the YAML parser and cluster mode.
_HEAVY = ("click", "rich", "yaml", "starlette", "uvicorn", "nats", "prometheus_client")


@pytest.fixture
def short_dir() -> Iterator[pathlib.Path]:
    # AF_UNIX paths are short: keep the socket in a short temporary directory.
    with tempfile.TemporaryDirectory(prefix="eg-") as directory:
        yield pathlib.Path(directory)


def _cmdline(pid: int) -> list[bytes]:
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def _listening(path: pathlib.Path) -> bool:
    return path.exists()


async def _wait_for(path: pathlib.Path) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not _listening(path):
        assert asyncio.get_running_loop().time() < deadline, "worker did not listen"
        await asyncio.sleep(0.02)


def _loaded_modules(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


async def test_the_supervised_worker_starts_through_its_own_module_and_answers(
    short_dir: pathlib.Path, receiver: Receiver
):
    receiver.reply("/f", Reply(status=200, body=b'{"ok":true}'))
    socket_path = short_dir / "w.sock"
    worker = WorkerProcess(
        socket_path, log_level="warning", targets=TargetPolicy(allow_private=True)
    )
    await worker.start()
    provider = RemoteHttpProvider(socket_path)
    try:
        await _wait_for(socket_path)
        assert worker.pid is not None
        assert _cmdline(worker.pid)[1:3] == [b"-m", b"eventgateway.call_worker"]
        function = Function(
            space="s", function_id="f", type="http", provider={"url": receiver.url("/f")}
        )
        reply = await provider.call(function, Call(body=b'{"n":1}'))
    finally:
        await provider.close()
        await worker.stop(timeout_s=5)
    assert reply.status == 200
    assert reply.body == b'{"ok":true}'
    assert receiver.calls[0].json() == {"n": 1}
    assert not _listening(socket_path)  # removed on SIGTERM
    assert worker.restarts == 0


def test_the_worker_command_line_states_the_guard_in_full():
    path, policy, level = parse_args(
        ["--socket", "/tmp/w.sock", "--allow-target", "10.0.0.0/8", "--log-level", "debug"]
    )
    assert path == pathlib.Path("/tmp/w.sock")
    assert policy == TargetPolicy(
        allow_private=False, allow_list=(ipaddress.ip_network("10.0.0.0/8"),)
    )
    assert level == "debug"
    assert parse_args(["--socket", "s", "--allow-private-targets"])[1].allow_private is True
    assert parse_args(["--socket", "s", "--deny-private-targets"])[1].allow_private is False


def test_the_worker_command_line_refuses_a_bad_network(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--socket", "s", "--allow-target", "not-a-net"])
    assert exit_info.value.code == 2
    assert "not-a-net" in capsys.readouterr().err


def test_the_worker_entry_module_imports_no_cli_server_or_yaml():
    loaded = _top_level(_loaded_modules("import eventgateway.call_worker"))
    assert loaded.isdisjoint(_HEAVY), loaded & set(_HEAVY)


def test_no_general_purpose_http_client_is_loaded_by_the_worker_or_the_gateway():
    # The delivery client is our own (providers/http_client.py): aiohttp and httpx cost
    # ~11 MB of memory per process and nothing on the delivery path uses them.
    for statement in ("import eventgateway.call_worker", "import eventgateway.app"):
        loaded = _top_level(_loaded_modules(statement))
        assert loaded.isdisjoint({"aiohttp", "httpx"}), (statement, loaded)


def test_queue_options_survive_the_command_line(tmp_path: pathlib.Path) -> None:
    options = QueueOptions(
        socket_path=tmp_path / "d.sock",
        path=tmp_path / "queue.db",
        synchronous="NORMAL",
        lease_s=12.5,
        dedup_window_s=7.0,
        max_deliveries=11,
        max_bytes=13,
        concurrency=17,
        per_subscription=3,
        timeout_s=2.5,
        fast_buffer=19,
    )
    argv = ["--socket", str(tmp_path / "w.sock"), *options.to_args()]
    assert queue_options(argv) == options
    assert queue_options(["--socket", str(tmp_path / "w.sock")]) is None


def test_a_nats_store_reaches_the_worker_in_its_environment_not_its_command_line(
    tmp_path: pathlib.Path,
) -> None:
    url = "nats://user:secret@127.0.0.1:4222?prefix=p1"
    settings = Settings(data_dir=tmp_path, store_url=url, dispatch="worker")
    worker, _, dispatch_socket = delivery_worker(settings)
    assert dispatch_socket is not None  # it dispatches JetStream itself
    assert worker._extra_env == {STORE_URL_ENV: url}
    assert not any("secret" in arg for arg in worker._extra_args)

    sqlite = Settings(data_dir=tmp_path, dispatch="worker")
    worker, _, dispatch_socket = delivery_worker(sqlite)
    assert dispatch_socket is not None
    assert worker._extra_env == {}
    # In memory, the queue lives in the gateway's process only: the worker just calls.
    memory = Settings(data_dir=tmp_path, store_url="memory://", dispatch="worker")
    assert delivery_worker(memory)[2] is None


# The worker's entry point, with a dispatcher that dies of a bug as soon as it runs.
_BROKEN_DISPATCHER = """
import sys
from eventgateway.dispatch.host import DispatchHost

async def run(self):
    raise RuntimeError("a bug in the dispatcher")

DispatchHost.run = run
from eventgateway.call_worker import main
main(sys.argv[1:])
"""


async def test_a_worker_whose_dispatcher_dies_exits_non_zero_for_its_supervisor(
    short_dir: pathlib.Path,
) -> None:
    options = QueueOptions(socket_path=short_dir / "d.sock", path=short_dir / "queue.db")
    argv = ["--socket", str(short_dir / "w.sock"), "--log-level", "info", *options.to_args()]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _BROKEN_DISPATCHER,
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # It would otherwise answer calls until SIGTERM, delivering nothing.
        _, stderr = await asyncio.wait_for(child.communicate(), 20)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 1
    log = stderr.decode()
    assert "ERROR" in log
    assert "the dispatcher stopped unexpectedly" in log
    assert "a bug in the dispatcher" in log
    assert not (short_dir / "w.sock").exists()  # it cleaned up on its way out
