"""AWS on 127.0.0.1 for tests: moto's server (SQS, Kinesis, Firehose, S3) and the
environment that points a gateway subprocess at local endpoints with test credentials."""

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import Iterator
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
# The gateway's own (default chain) credentials in tests; functions may carry others.
ENV_KEY_ID = "AKIDGATEWAYENV"
ENV_SECRET = "gateway-env-secret"


def gateway_env(tmp_path: pathlib.Path, **endpoints: str) -> dict[str, str]:
    """Environment of a gateway that calls AWS at ``endpoints`` (``lambda=…`` becomes
    ``AWS_ENDPOINT_URL_LAMBDA``, ``all=…`` ``AWS_ENDPOINT_URL``), with env credentials.

    The instance metadata service is off and the user's ``~/.aws`` is not read, so the
    credential chain never leaves the machine or picks up a developer's keys.
    """
    env = {
        "AWS_ACCESS_KEY_ID": ENV_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": ENV_SECRET,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }
    for service, url in endpoints.items():
        name = "AWS_ENDPOINT_URL" if service == "all" else f"AWS_ENDPOINT_URL_{service.upper()}"
        env[name] = url
    return env


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a thread on a free 127.0.0.1 port; yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def boto(service: str, endpoint: str) -> Any:
    """A boto3 client of moto at ``endpoint``, for the test's own setup and reads."""
    import boto3

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="test",
    )
