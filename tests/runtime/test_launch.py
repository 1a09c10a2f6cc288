"""Worker command lines and environments."""

from __future__ import annotations

import json

import pytest

from eventgateway.runtime.launch import (
    NODE_WORKER,
    PYTHON_WORKER,
    address_space_limit_mb,
    plan_launch,
    worker_environment,
)
from tests.runtime.conftest import make_spec


def test_the_environment_is_a_safe_base_plus_the_functions_plus_lambdas():
    spec = make_spec(
        "handler.handler",
        memory_mb=512,
        environment={"GREETING": "hi", "AWS_LAMBDA_FUNCTION_NAME": "spoofed"},
    )

    env = worker_environment(spec, {"PATH": "/bin", "HOME": "/home/u", "EG_API_KEY": "secret"})

    assert env["PATH"] == "/bin"
    assert env["HOME"] == "/home/u"
    assert "EG_API_KEY" not in env
    assert env["GREETING"] == "hi"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "addUserToCRM"  # reserved: the runtime's wins
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["LAMBDA_TASK_ROOT"] == str(spec.bundle_dir)


def test_node_workers_find_the_bundles_node_modules():
    spec = make_spec("index.handler", language="nodejs", bundle="node")

    env = worker_environment(spec, {})

    assert env["NODE_PATH"] == str(spec.bundle_dir / "node_modules")


def test_a_python_worker_runs_the_worker_file_with_its_config():
    spec = make_spec("handler.handler", memory_mb=128)

    launch = plan_launch(spec, python="/py", node=None, fds=(7, 8), sentinel="tok", base_env={})

    assert launch.argv[:3] == ["/py", "-S", str(PYTHON_WORKER)]
    assert json.loads(launch.argv[3]) == {
        "in_fd": 7,
        "out_fd": 8,
        "handler": "handler.handler",
        "sentinel": "tok",
        "limit_as_mb": address_space_limit_mb(spec),
    }
    assert launch.cwd == spec.bundle_dir


def test_a_node_worker_gets_a_heap_limit_and_an_address_space_cap():
    spec = make_spec("index.handler", language="nodejs", bundle="node", memory_mb=128)

    launch = plan_launch(spec, python="/py", node="/node", fds=(7, 8), sentinel="t", base_env={})

    assert launch.argv[0] == "/bin/sh"
    assert f"ulimit -v {address_space_limit_mb(spec) * 1024}" in launch.argv[2]
    assert launch.argv[4:7] == ["/node", "--max-old-space-size=128", str(NODE_WORKER)]
    assert NODE_WORKER.is_file()


def test_a_node_function_without_node_cannot_launch():
    spec = make_spec("index.handler", language="nodejs", bundle="node")

    with pytest.raises(FileNotFoundError, match="`node` is not on"):
        plan_launch(spec, python="/py", node=None, fds=(7, 8), sentinel="t", base_env={})
