"""How many entities of each kind one space may hold (``eg serve --max-*-per-space``).

Every entity ends up in the in-memory routing table of every gateway instance, so one
space must not be able to grow it without bound. The check runs inside the
Configuration API's write lock, so concurrent creates in one process cannot overshoot.
"""

from __future__ import annotations

from typing import Final

from eventgateway.errors import ValidationError
from eventgateway.model.entities import Kind
from eventgateway.settings import Limits

__all__ = ["QUOTA_FLAGS", "per_space_quotas", "refuse_over_quota"]

QUOTA_FLAGS: Final[dict[Kind, str]] = {
    "functions": "--max-functions-per-space",
    "subscriptions": "--max-subscriptions-per-space",
    "eventtypes": "--max-event-types-per-space",
    "cors": "--max-cors-per-space",
}
_NOUNS: Final[dict[Kind, str]] = {
    "functions": "functions",
    "subscriptions": "subscriptions",
    "eventtypes": "event types",
    "cors": "CORS configurations",
}


def per_space_quotas(limits: Limits) -> dict[Kind, int]:
    """The per-space maximum of each kind; ``0`` means unlimited."""
    return {
        "functions": limits.max_functions_per_space,
        "subscriptions": limits.max_subscriptions_per_space,
        "eventtypes": limits.max_event_types_per_space,
        "cors": limits.max_cors_per_space,
    }


def refuse_over_quota(kind: Kind, space: str, existing: int, quota: int) -> None:
    """Raise when a space holding ``existing`` entities of ``kind`` may not get another.

    Raises:
        ValidationError: (400) the space is at its quota; the message names the flag.
    """
    if quota and existing >= quota:
        raise ValidationError(
            f'Space "{space}" has reached its limit of {quota} {_NOUNS[kind]}. Delete some, '
            f"or ask the operator to raise it (eg serve {QUOTA_FLAGS[kind]})."
        )
