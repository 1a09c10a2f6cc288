"""Which request each spaces and API keys method sends — no I/O.

A mixin of :class:`~eventgateway.sdk._calls.Calls`: the ``/v1/spaces`` resource of the
Configuration API, where a space is claimed (its first admin key comes back) and its keys
are created, listed and revoked.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from eventgateway.sdk import _wire
from eventgateway.sdk._wire import Call, Reply

__all__ = ["SpaceCalls", "rfc3339"]

T = TypeVar("T")

_JSON: Final = "application/json"


def rfc3339(value: str | datetime.datetime) -> str:
    """An expiry as sent: text as given, a datetime as UTC ``YYYY-MM-DDTHH:MM:SSZ``.

    Raises:
        ValueError: a naive datetime (its time zone would be a guess).
    """
    if isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"expires_at {value.isoformat()} has no time zone: "
            "pass an aware datetime, e.g. datetime.now(timezone.utc) + timedelta(days=30)"
        )
    utc = value.astimezone(datetime.UTC).replace(microsecond=0)
    return utc.isoformat().replace("+00:00", "Z")


class SpaceCalls:
    """The spaces and keys half of :class:`~eventgateway.sdk._calls.Calls`."""

    endpoints: _wire.Endpoints
    space: str
    _auth: dict[str, str]

    def _spaces(
        self,
        method: str,
        path: str,
        parse: Callable[[Reply], T],
        body: Mapping[str, Any] | None = None,
    ) -> Call[T]:
        headers = dict(self._auth)
        content = None
        if body is not None:
            content = _wire.dumps(dict(body))
            headers["Content-Type"] = _JSON
        request = self.endpoints.config.request(method, "/v1/spaces" + path, headers, content)
        return Call(request, parse)

    def _space_path(self, name: str | None = None) -> str:
        return "/" + _wire.segment(self.space if name is None else name)

    def claim_space(self, name: str, *, emit_requires_key: bool | None) -> Call[dict[str, Any]]:
        body: dict[str, Any] = {"name": name}
        if emit_requires_key is not None:
            body["emitRequiresKey"] = emit_requires_key
        return self._spaces("POST", "", _wire.to_object, body)

    def get_space(self, name: str | None) -> Call[dict[str, Any]]:
        return self._spaces("GET", self._space_path(name), _wire.to_object)

    def list_spaces(self) -> Call[list[dict[str, Any]]]:
        return self._spaces("GET", "", _wire.member("spaces"))

    def update_space(self, *, emit_requires_key: bool) -> Call[dict[str, Any]]:
        body = {"emitRequiresKey": emit_requires_key}
        return self._spaces("PATCH", self._space_path(), _wire.to_object, body)

    def delete_space(self, name: str | None) -> Call[None]:
        return self._spaces("DELETE", self._space_path(name), _wire.to_none)

    def create_key(
        self, scopes: Sequence[str], *, expires_at: str | datetime.datetime | None
    ) -> Call[dict[str, Any]]:
        # A lone string would otherwise be sent as a list of its letters.
        listed = [scopes] if isinstance(scopes, str) else list(scopes)
        body: dict[str, Any] = {"scopes": listed}
        if expires_at is not None:
            body["expiresAt"] = rfc3339(expires_at)
        return self._spaces("POST", self._space_path() + "/keys", _wire.to_object, body)

    def list_keys(self) -> Call[list[dict[str, Any]]]:
        return self._spaces("GET", self._space_path() + "/keys", _wire.member("keys"))

    def revoke_key(self, key_id: str) -> Call[None]:
        path = f"{self._space_path()}/keys/{_wire.segment(key_id)}"
        return self._spaces("DELETE", path, _wire.to_none)
