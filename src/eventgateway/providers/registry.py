"""Maps a function ``type`` to the provider that calls it.

The app registers every type the Configuration API accepts (``http``, the AWS types of
``providers/aws.py``, the local runtime's). A type without a provider (a registry built
with fewer, or a config written by a newer version) gets :class:`UnsupportedProvider`,
which fails each call with a message that says so; the failure is not retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from eventgateway.errors import ProviderError
from eventgateway.model.entities import Function
from eventgateway.providers.base import Call, Provider, Reply

__all__ = ["ProviderRegistry", "UnsupportedProvider"]


class UnsupportedProvider(Provider):
    """Stands in for a type without a provider here; fails every call, not retryable."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    async def call(self, function: Function, call: Call) -> Reply:
        raise ProviderError(
            f"function {function.function_id!r} has type {self.type_name!r}, which this "
            "gateway does not invoke; use type 'http' (a URL) instead",
            retryable=False,
        )


class ProviderRegistry:
    """The providers of one app, by function type."""

    def __init__(
        self, providers: Mapping[str, Provider], *, fallback: Provider | None = None
    ) -> None:
        self._providers = dict(providers)
        self._fallback = fallback

    def get(self, type_name: str) -> Provider:
        """The provider for ``type_name``: the fallback, or an ``UnsupportedProvider``, if
        none is registered for it."""
        provider = self._providers.get(type_name)
        if provider is None:
            if self._fallback is not None:
                return self._fallback
            provider = self._providers[type_name] = UnsupportedProvider(type_name)
        return provider

    def all(self) -> Iterable[Provider]:
        return list(self._providers.values())

    async def open(self) -> None:
        for provider in self.all():
            await provider.open()

    async def close(self) -> None:
        for provider in self.all():
            await provider.close()
