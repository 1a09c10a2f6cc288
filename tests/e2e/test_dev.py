"""`eg dev` as a person runs it: one process, the service deployed, logs, redeploy on save."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

EMIT_ARGS = ("emit", "--event", "user.created", "--data", "@event.json")
EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "crm-service"


class Output:
    """Collects a process's output lines on a thread; ``until`` waits for one to appear."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        assert proc.stdout is not None
        self._thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def until(self, text: str, *, after: int = 0, timeout_s: float = 60.0) -> int:
        """Index of the first line from ``after`` on that contains ``text``."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for index in range(after, len(self.lines)):
                    if text in self.lines[index]:
                        return index
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{text!r} not printed:\n" + "\n".join(self.lines)
                self._changed.wait(remaining)

    def join(self) -> None:
        self._thread.join(timeout=10)


def start_dev(tmp_path: pathlib.Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`eg dev` in a copy of the example service (``tmp_path / "crm-service"``)."""
    service = tmp_path / "crm-service"
    shutil.copytree(EXAMPLE, service, ignore=shutil.ignore_patterns(".eventgateway", "tests"))
    events_port, config_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("EG_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventgateway",
            "dev",
            "--events-port",
            str(events_port),
            "--config-port",
            str(config_port),
        ],
        cwd=service,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    urls = {
        "EG_URL": f"http://127.0.0.1:{events_port}",
        "EG_CONFIG_URL": f"http://127.0.0.1:{config_port}",
    }
    return proc, {**env, **urls}


@pytest.fixture
def dev(tmp_path: pathlib.Path) -> Iterator[tuple[subprocess.Popen[str], Output, dict[str, str]]]:
    proc, env = start_dev(tmp_path)
    output = Output(proc)
    try:
        yield proc, output, env
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output.join()
        assert proc.stdout is not None
        proc.stdout.close()


def emit(cwd: pathlib.Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "eventgateway", *EMIT_ARGS],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_dev_deploys_streams_logs_redeploys_on_save_and_stops_on_sigterm(dev, tmp_path):
    proc, output, env = dev
    service = tmp_path / "crm-service"

    output.until("Deployed crm-service: 3 created")
    watching = output.until("Watching ")
    emit(service, env)
    saving = output.until("Saving user to CRM:", after=watching)
    assert output.lines[saving].startswith("addUserToCRM │ ")
    # Wait for the next line too: the two are printed one after the other, not at once.
    assert output.until("'company': 'Test Corp, Inc.'", after=saving) == saving + 1
    output.until("REPORT RequestId: ", after=saving)

    handler = service / "handler.py"
    handler.write_text(handler.read_text().replace("Saving user to CRM:", "Saved user:"))
    changed = output.until("; redeploying", after=saving)
    assert "handler.py" in output.lines[changed]
    output.until("~ function      addUserToCRM: provider.bundle", after=changed)
    redeployed = output.until("Deployed crm-service: 0 created, 1 changed", after=changed)
    emit(service, env)
    output.until("Saved user:", after=redeployed)

    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    output.join()
    assert code == 0, "\n".join(output.lines[-20:])
    assert output.lines[-1] == "Stopping."


@pytest.mark.parametrize("then", ["emit", "save"])
def test_dev_stops_with_status_141_once_the_reader_of_its_output_is_gone(tmp_path, then):
    # QA: `eg dev | head` went on deploying for nobody, then reported its own closed
    # output as a redeploy error. The next line printed, from a log stream (emit) or the
    # watch loop (save), now ends it as a closed pipe ends any Unix tool.
    proc, env = start_dev(tmp_path)
    service = tmp_path / "crm-service"
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the reader: `head` until the loop watches
            if line.startswith("Watching "):
                break
        proc.stdout.close()
        if then == "emit":
            emit(service, env)
            assert proc.wait(timeout=60) == 141
        else:
            # "Watching" is printed just before the watcher starts: a save at once may come
            # before it looks. Saved again each second until the loop has seen one.
            handler = service / "handler.py"
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                handler.write_text(handler.read_text() + "\n# saved\n")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1)
            assert proc.wait(timeout=5) == 141
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
