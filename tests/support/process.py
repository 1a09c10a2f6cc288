"""Start `eg serve` as a real subprocess on free ports with a temporary data dir."""

from __future__ import annotations

import os
import pathlib
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping

import httpx

from tests.support.ports import free_port


def _without_auth_variables(env: Mapping[str, str]) -> dict[str, str]:
    # The test says how auth is set up; the environment of whoever runs the tests does not.
    return {k: v for k, v in env.items() if k not in ("EG_AUTH", "EG_OPERATOR_KEY")}


class GatewayProcess:
    """`eg serve` in a subprocess; open (``--no-auth``) unless ``auth=True``.

    With ``auth=True`` the gateway makes its operator key file on the first start, as a
    real one does; :attr:`operator_key` reads it.
    """

    def __init__(
        self,
        data_dir: pathlib.Path,
        *extra_args: str,
        auth: bool = False,
        env: Mapping[str, str] | None = None,
        new_session: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.new_session = new_session  # a process group of its own (with its worker)
        self.auth = auth
        self.env = dict(env or {})  # on top of the test process's environment
        self.events_port = free_port()
        self.config_port = free_port()
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "gateway.log"
        # For a gateway given --tls-cert/--tls-key: "https" and a context trusting its CA.
        self.scheme = "http"
        self.verify: ssl.SSLContext | bool = True

    @property
    def events_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.events_port}"

    @property
    def config_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.config_port}"

    def start(self, timeout_s: float = 20.0) -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "eventgateway",
                    "serve",
                    "--events-port",
                    str(self.events_port),
                    "--config-port",
                    str(self.config_port),
                    "--data-dir",
                    str(self.data_dir),
                    *(() if self.auth else ("--no-auth",)),
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**_without_auth_variables(os.environ), "PYTHONUNBUFFERED": "1", **self.env},
                start_new_session=self.new_session,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"eg serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status = httpx.get(self.config_url + "/v1/status", timeout=0.5, verify=self.verify)
                if status.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling a subprocess's readiness: there is no event to wait on
        raise TimeoutError(f"eg serve not ready after {timeout_s} s:\n{self.log()}")

    def start_refused(self, timeout_s: float = 20.0) -> str:
        """Start, expecting `eg serve` to refuse and exit: what it said. One that starts
        instead is stopped, and the test fails."""
        try:
            self.start(timeout_s)
        except RuntimeError as exc:
            return str(exc)
        self.stop()
        raise AssertionError(f"eg serve started; it should have refused:\n{self.log()}")

    @property
    def operator_key(self) -> str:
        """The operator key of an ``auth=True`` gateway (from its data directory)."""
        return (self.data_dir / "operator.key").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def eg(
        self, cwd: pathlib.Path, *args: str, expect: int = 0
    ) -> subprocess.CompletedProcess[str]:
        """One `eg` command as a user types it in ``cwd``, pointed at this gateway."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("EG_")}
        env |= {"EG_URL": self.events_url, "EG_CONFIG_URL": self.config_url}
        done = subprocess.run(
            [sys.executable, "-m", "eventgateway", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == expect, f"eg {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
