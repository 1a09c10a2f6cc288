"""How a worker process is started: its command line, environment and memory limits.

Pure functions: ``worker_process.py`` spawns what these describe.

Limits: a worker's address space is capped with ``RLIMIT_AS``. Python workers set it
themselves as their first act (a ``preexec_fn`` is unsafe in a threaded parent such as the
gateway); Node.js cannot call ``setrlimit``, so it starts through ``sh -c 'ulimit -v …;
exec node …'``. The cap is ``memory_mb`` plus headroom for what an interpreter maps without
using it: CPython needs little, but V8 reserves about 700 MB of address space at start, so
Node's real bound is ``--max-old-space-size`` and its ``RLIMIT_AS`` only stops runaway
native allocations (Buffers, addons).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from eventgateway.runtime.base import RuntimeSpec
from eventgateway.runtime.report import VERSION

__all__ = [
    "NODE_HEADROOM_MB",
    "PYTHON_HEADROOM_MB",
    "Launch",
    "address_space_limit_mb",
    "inherited_environment",
    "node_command",
    "plan_launch",
    "python_command",
    "worker_environment",
]

PYTHON_HEADROOM_MB: Final = 256
NODE_HEADROOM_MB: Final = 1024

_HERE = pathlib.Path(__file__).resolve()
PYTHON_WORKER: Final = _HERE.with_name("python_worker.py")
NODE_WORKER: Final = _HERE.with_name("node_worker.js")

# Variables a handler needs to behave like a normal program; everything else of the
# gateway's environment (keys, tokens) stays out.
_INHERITED: Final = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True, slots=True)
class Launch:
    """What to execute for one worker."""

    argv: list[str]
    env: dict[str, str]
    cwd: pathlib.Path


def address_space_limit_mb(spec: RuntimeSpec) -> int:
    """The ``RLIMIT_AS`` cap of a worker of ``spec``, in MiB."""
    headroom = NODE_HEADROOM_MB if spec.language == "nodejs" else PYTHON_HEADROOM_MB
    return spec.memory_mb + headroom


def inherited_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The few variables of ``source`` (the gateway's environment) any program needs."""
    source = os.environ if source is None else source
    env = {name: source[name] for name in _INHERITED if name in source}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    return env


def worker_environment(spec: RuntimeSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal safe base, then ``spec.environment``, then the Lambda variables (which win)."""
    env = inherited_environment(base)
    # glibc reserves 64 MiB of address space per malloc arena and thread; under RLIMIT_AS a
    # threaded handler would run out of address space long before it runs out of memory.
    env["MALLOC_ARENA_MAX"] = "2"
    env.update(spec.environment)
    bundle = str(spec.bundle_dir)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": VERSION,
            "LAMBDA_TASK_ROOT": bundle,
            "EG_SPACE": spec.space,
        }
    )
    if spec.runtime:
        env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{spec.runtime}"
    if spec.language == "nodejs":
        node_path = [str(spec.bundle_dir / "node_modules")]
        if spec.environment.get("NODE_PATH"):
            node_path.append(spec.environment["NODE_PATH"])
        env["NODE_PATH"] = os.pathsep.join(node_path)
    else:
        env["PYTHONIOENCODING"] = "utf-8"
    return env


def _config(spec: RuntimeSpec, fds: tuple[int, int], sentinel: str) -> str:
    return json.dumps(
        {
            "in_fd": fds[0],
            "out_fd": fds[1],
            "handler": spec.handler,
            "sentinel": sentinel,
            "limit_as_mb": address_space_limit_mb(spec),
        }
    )


def python_command(
    python: str, spec: RuntimeSpec, fds: tuple[int, int], sentinel: str
) -> list[str]:
    """``python -S python_worker.py <config>``.

    The worker runs as a file, not ``-m eventgateway.runtime.python_worker``: importing the
    package would import ``eventgateway/__init__.py`` and with it the SDK's dependencies, on
    every cold start. ``-S`` keeps the gateway's own site-packages out of the handler's
    ``sys.path``: a handler sees its bundle and ``<bundle>/.deps``, never the gateway's
    aiohttp or PyYAML by accident (and starts faster).
    """
    return [python, "-S", str(PYTHON_WORKER), _config(spec, fds, sentinel)]


def node_command(node: str, spec: RuntimeSpec, fds: tuple[int, int], sentinel: str) -> list[str]:
    """``sh -c 'ulimit -v …; exec node --max-old-space-size=… node_worker.js <config>'``."""
    limit_kib = address_space_limit_mb(spec) * 1024
    return [
        "/bin/sh",
        "-c",
        f'ulimit -c 0 2>/dev/null; ulimit -v {limit_kib} 2>/dev/null; exec "$@"',
        "eventgateway-node-worker",
        node,
        f"--max-old-space-size={spec.memory_mb}",
        str(NODE_WORKER),
        _config(spec, fds, sentinel),
    ]


def plan_launch(
    spec: RuntimeSpec,
    *,
    python: str,
    node: str | None,
    fds: tuple[int, int],
    sentinel: str,
    base_env: Mapping[str, str] | None = None,
) -> Launch:
    """The command, environment and directory of a worker for ``spec``.

    Raises:
        FileNotFoundError: ``spec`` is a Node.js function and ``node`` is ``None``.
    """
    if spec.language == "nodejs":
        if node is None:
            raise FileNotFoundError(
                "Node.js is required to run this function, but `node` is not on the "
                "gateway's PATH; install Node.js 18 or newer"
            )
        argv = node_command(node, spec, fds, sentinel)
    else:
        argv = python_command(python, spec, fds, sentinel)
    return Launch(argv=argv, env=worker_environment(spec, base_env), cwd=spec.bundle_dir)
