"""ProviderRegistry picks a provider by function type; types without one fail without retry."""

from __future__ import annotations

import pytest

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call, Provider, Reply
from eventgateway.providers.registry import ProviderRegistry, UnsupportedProvider


class Recording(Provider):
    """A provider that records its lifecycle calls into a shared journal."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    async def open(self) -> None:
        self.journal.append(f"open {self.name}")

    async def close(self) -> None:
        self.journal.append(f"close {self.name}")

    async def call(self, function: Function, call: Call) -> Reply:
        return Reply(status=200, body=call.body)


def function(type_name: str) -> Function:
    return Function(space="acme", function_id="crm", type=type_name, provider={"arn": "x"})


@pytest.mark.parametrize("type_name", ["awslambda", "newtype"])
async def test_unsupported_provider_fails_without_retry_naming_the_type(type_name: str):
    with pytest.raises(ProviderError) as caught:
        await UnsupportedProvider(type_name).call(function(type_name), Call(body=b"{}"))

    assert caught.value.retryable is False
    assert caught.value.message == (
        f"function 'crm' has type {type_name!r}, which this gateway does not invoke; "
        "use type 'http' (a URL) instead"
    )


def test_registered_type_gets_its_provider():
    http = Recording("http", [])
    registry = ProviderRegistry({"http": http})

    assert registry.get("http") is http


def test_unknown_type_gets_one_cached_unsupported_provider():
    registry = ProviderRegistry({})

    first = registry.get("awslambda")

    assert isinstance(first, UnsupportedProvider)
    assert first.type_name == "awslambda"
    assert registry.get("awslambda") is first
    assert list(registry.all()) == [first]


async def test_open_and_close_reach_every_provider():
    journal: list[str] = []
    registry = ProviderRegistry(
        {"http": Recording("http", journal), "mock": Recording("mock", journal)}
    )

    await registry.open()
    await registry.close()

    assert journal == ["open http", "open mock", "close http", "close mock"]


async def test_call_through_the_registry_reaches_the_provider():
    registry = ProviderRegistry({"mock": Recording("mock", [])})

    reply = await registry.get("mock").call(function("mock"), Call(body=b"ping"))

    assert reply == Reply(status=200, body=b"ping")
