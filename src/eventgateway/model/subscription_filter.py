"""A subscription body's ``filter``: checked, and stored as plain JSON (pure).

The pattern language lives in :mod:`eventgateway.routing.filters`; it is compiled here
once only to validate, so that the Configuration API, ``eg deploy`` and the routing table
can never disagree about which patterns are valid.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from eventgateway.model.delivery_options import OptionError
from eventgateway.routing.filters import FilterError, compile_filter

__all__ = ["SYNC_FILTER_REFUSED", "parse_filter"]

SYNC_FILTER_REFUSED: Final = (
    "filter is only for async subscriptions: a sync subscription answers every request "
    "on its route, so it cannot pass over events; use type async, or filter in the function"
)


def parse_filter(value: Any, *, subscription_type: str) -> dict[str, Any] | None:
    """Validate a subscription's ``filter``.

    Args:
        value: the decoded JSON value; ``None`` means not given.
        subscription_type: ``"async"`` or ``"sync"``; sync subscriptions refuse a filter.

    Returns:
        ``None`` when not given, else a plain-JSON copy of the pattern (what is stored
        and echoed: the pattern as sent).

    Raises:
        OptionError: the filter is invalid (the message names the field path, e.g.
            ``filter.data.plan: "numeric" needs operator/number pairs…``) or the
            subscription is sync.
    """
    if value is None:
        return None
    if subscription_type == "sync":
        raise OptionError([SYNC_FILTER_REFUSED])
    try:
        compile_filter(value)
    except FilterError as exc:
        raise OptionError([str(exc)]) from exc
    plain: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(value))
    return plain
