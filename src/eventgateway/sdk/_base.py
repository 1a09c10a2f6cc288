"""What the blocking and the asyncio client share: their settings and how they show."""

from __future__ import annotations

from eventgateway.sdk._calls import Calls

__all__ = ["ClientBase"]


class ClientBase:
    """The settings both clients keep; each adds its own pooled httpx client."""

    _calls: Calls
    space: str
    timeout_s: float
    retries: int

    def _configure(
        self,
        url: str,
        *,
        config_url: str | None,
        space: str | None,
        domain: str | None,
        api_key: str | None,
        timeout_s: float,
        retries: int,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries must not be negative, got {retries}")
        self._calls = Calls(url, config_url=config_url, space=space, api_key=api_key, domain=domain)
        self.space = self._calls.space
        self.timeout_s = timeout_s
        self.retries = retries

    def __repr__(self) -> str:
        endpoints = self._calls.endpoints
        return (
            f"{type(self).__name__}(url={endpoints.events.url!r}, "
            f"config_url={endpoints.config.url!r}, space={self.space!r})"
        )
