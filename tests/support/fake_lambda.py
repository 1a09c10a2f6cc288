"""A fake AWS Lambda Invoke endpoint on 127.0.0.1 (moto's Lambda needs Docker to run code).

It serves ``POST /2015-03-31/functions/{name}/invocations`` as Lambda does: it checks the
SigV4 ``Authorization`` header (scope naming this region and ``lambda``, a known key id,
and the signature itself, computed with that key's secret), records each invocation, and
answers with what the test set for the function name (the last part of the ARN): a
payload, a ``FunctionError``, or an AWS error (429 TooManyRequestsException, 404
ResourceNotFoundException…). Requests whose signature is wrong get 403
InvalidSignatureException, as from AWS, and are kept in :attr:`FakeLambda.refused`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass
class Invocation:
    """One accepted call: whom, with which key, and the payload."""

    function: str  # the FunctionName as sent (an ARN or a name)
    access_key_id: str
    invocation_type: str
    session_token: str | None
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class Answer:
    """What the fake answers: a payload, with ``function_error`` a handler's failure, or
    with ``error_code`` an AWS error of ``status``."""

    payload: bytes = b"null"
    status: int = 200
    function_error: str | None = None  # "Unhandled": the handler raised
    error_code: str | None = None  # "TooManyRequestsException": an AWS error answer
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    @classmethod
    def result(cls, value: Any) -> Answer:
        return cls(payload=json.dumps(value).encode())

    @classmethod
    def handler_error(cls, error_type: str, message: str) -> Answer:
        body = {"errorType": error_type, "errorMessage": message, "stackTrace": ["at x"]}
        return cls(payload=json.dumps(body).encode(), function_error="Unhandled")

    @classmethod
    def aws_error(cls, status: int, code: str, message: str, **headers: str) -> Answer:
        body = {"Type": "User", "message": message}
        return cls(
            payload=json.dumps(body).encode(), status=status, error_code=code, headers=headers
        )


Responder = Callable[[Invocation], Answer]


class FakeLambda:
    """Lambda's Invoke API for one region; ``secrets`` maps each key id it accepts to its
    secret access key."""

    def __init__(self, region: str, secrets: dict[str, str]) -> None:
        self.region = region
        self.secrets = secrets
        self.answers: dict[str, Answer | Responder] = {}
        self.invocations: list[Invocation] = []
        self.refused: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, name: str, answer: Answer | Responder) -> None:
        self.answers[name] = answer

    def calls_of(self, name: str) -> list[Invocation]:
        return [each for each in self.invocations if each.function.split(":")[-1] == name]

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, (self.invocations, self.refused)
            await asyncio.sleep(0.02)  # another process calls us: no event to wait on here

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2015-03-31/functions/{name}/invocations", self._invoke)
        # Stopping does not wait for a slow answer in flight: the caller already gave up.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _invoke(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem, key_id = self._check_signature(request, body)
        if problem is not None:
            self.refused.append(problem)
            return _error(403, "InvalidSignatureException", problem)
        invocation = Invocation(
            function=request.match_info["name"],
            access_key_id=key_id,
            invocation_type=request.headers.get("X-Amz-Invocation-Type", ""),
            session_token=request.headers.get("X-Amz-Security-Token"),
            payload=body,
        )
        self.invocations.append(invocation)
        configured = self.answers.get(invocation.function.split(":")[-1])
        if configured is None:
            message = f"Function not found: {invocation.function}"
            return _error(404, "ResourceNotFoundException", message)
        answer = configured if isinstance(configured, Answer) else configured(invocation)
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)  # plays a slow function
        if answer.error_code is not None:
            return _error(answer.status, answer.error_code, "", answer.payload, answer.headers)
        headers = {"X-Amz-Executed-Version": "$LATEST", **answer.headers}
        if answer.function_error is not None:
            headers["X-Amz-Function-Error"] = answer.function_error
        return web.Response(
            status=answer.status,
            body=answer.payload,
            headers=headers,
            content_type="application/json",
        )

    def _check_signature(self, request: web.Request, body: bytes) -> tuple[str | None, str]:
        header = request.headers.get("Authorization", "")
        found = _AUTHORIZATION.fullmatch(header)
        if found is None:
            return f"no SigV4 Authorization header: {header!r}", ""
        key_id = found["key"]
        if (found["region"], found["service"]) != (self.region, "lambda"):
            return f"signed for {found['region']}/{found['service']}", key_id
        secret = self.secrets.get(key_id)
        if secret is None:
            return f"unknown key id {key_id}", key_id
        signed = found["signed"].split(";")
        aws_request = AWSRequest(
            method=request.method,
            url=f"http://{request.host}{request.raw_path}",
            headers={name: request.headers.get(name, "") for name in signed},
            data=body,
        )
        aws_request.context["timestamp"] = request.headers.get("X-Amz-Date", "")
        token = request.headers.get("X-Amz-Security-Token")
        auth = SigV4Auth(Credentials(key_id, secret, token), "lambda", self.region)
        canonical = auth.canonical_request(aws_request)
        expected = auth.signature(auth.string_to_sign(aws_request, canonical), aws_request)
        if expected != found["signature"]:
            return f"signature mismatch for key id {key_id}", key_id
        return None, key_id


def _error(
    status: int,
    code: str,
    message: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    payload = (
        body if body is not None else json.dumps({"Type": "User", "message": message}).encode()
    )
    return web.Response(
        status=status,
        body=payload,
        headers={
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/",
            **(headers or {}),
        },
        content_type="application/json",
    )
