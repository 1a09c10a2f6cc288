"""Replay: deliver stored events again, as new deliveries (``DeliveryLog.replay``).

What every backend shares: the answer's shape, the selection rules and their errors, and
how one selected event becomes new deliveries (:func:`plan_event`, pure). The semantics,
documented for users in ``docs/delivery.md`` ("Replay"):

* **Selection**: explicit event ids — each names the event ``GET …/events/{id}`` shows,
  the newest accepted with that id that has deliveries in the space — or a window of
  received time, ``since`` (inclusive, required) to ``until`` (exclusive, optional).
  ``subscription_id`` narrows either to events with a delivery to that subscription.
  At most ``max_events`` (10,000) events per call. Events are replayed in the order they
  were accepted.
* **New deliveries**: each selected event gets one per subscription it had deliveries to
  in the space (only ``subscription_id``, when given): a new delivery id, no attempts,
  due now — behind the older unsettled deliveries of its partition key if the
  subscription is ordered *now* — with the retry policy's maximum age counted from the
  replay, and the authorizer's request copied from the event's first delivery to that
  subscription. ``replay_of`` names that first delivery (the original). Existing
  deliveries, their attempts and dead letters are left as they are.
* **Skipped**, and counted: subscriptions deleted since (or no longer async),
  subscriptions that are ``at-most-once`` now (a replay would make them durable), and
  subscriptions whose ``filter`` now turns the stored event away (as it would at accept).
* **All or nothing**: ids that name no event → :class:`NotFoundError` naming them; new
  deliveries past the queue's bounds → :class:`TooManyRequestsError` with the counts;
  nothing is written in either case.
* De-duplication does not apply: a replay is deliberate.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, NamedTuple

import msgspec

from eventgateway.errors import NotFoundError, TooManyRequestsError, ValidationError
from eventgateway.events.model import CloudEvent

__all__ = [
    "MAX_REPLAY_EVENTS",
    "Original",
    "Planned",
    "ReplayResult",
    "ReplaySkipped",
    "ReplayTarget",
    "Subscriptions",
    "check_selection",
    "not_found",
    "partition_key_of",
    "plan_event",
    "refused",
    "too_many",
]

MAX_REPLAY_EVENTS: Final = 10_000
"""The most events one replay call may select."""

# How many missing ids a 404 names before it says "and N more".
_NAMED_IDS: Final = 20


class ReplayTarget(msgspec.Struct, frozen=True):
    """A subscription as configured now, as much as replay needs of it.

    ``matches`` is its filter over the stored event (``None``: it has none, and every
    event of its route is delivered).
    """

    function_id: str
    ordered: bool = False
    at_most_once: bool = False
    matches: Callable[[CloudEvent], bool] | None = None


Subscriptions = Callable[[str], ReplayTarget | None]
"""Subscription id → its current target in the space, or ``None`` if it is gone."""


class ReplaySkipped(msgspec.Struct, kw_only=True, rename="camel"):
    """(event, subscription) pairs a replay did not deliver again, by reason."""

    deleted_subscription: int = 0  # the subscription no longer exists (or is not async)
    at_most_once: int = 0  # the subscription is at-most-once now
    filtered: int = 0  # the subscription's filter now turns the event away


class ReplayResult(msgspec.Struct, kw_only=True, rename="camel"):
    """What a replay did: ``{"replayed": n, "events": m, "skipped": {…}}`` on the wire."""

    replayed: int = 0  # new deliveries created
    events: int = 0  # events selected
    skipped: ReplaySkipped = msgspec.field(default_factory=ReplaySkipped)


class Original(NamedTuple):
    """One existing delivery of a selected event in the space."""

    delivery_id: str
    subscription_id: str
    replay_of: str | None  # set when this delivery is itself a replay
    auth_request: Any  # as the backend stores it; copied to the new delivery


class Planned(NamedTuple):
    """One new delivery a replay makes."""

    subscription_id: str
    function_id: str
    partition_key: str | None
    replay_of: str  # the id of the original delivery it repeats
    auth_request: Any


def check_selection(
    ids: Sequence[str] | None, since: float | None, until: float | None, max_events: int
) -> None:
    """Refuse a call that selects nothing safely.

    Raises:
        ValidationError: neither ids nor ``since``; ids together with a window; an empty
            id list; more ids than ``max_events``.
    """
    if ids is None:
        if since is None:
            raise ValidationError(
                'Name what to replay: {"ids": [...]}, or a window of received time from '
                '"since" (and optionally to "until"). A window needs "since", so that no '
                "call replays every event by accident."
            )
        return
    if since is not None or until is not None:
        raise ValidationError('Replay by "ids" or by a window ("since", "until"), not both.')
    if not ids:
        raise ValidationError('"ids" must name at least one event.')
    if len(set(ids)) > max_events:
        raise too_many(max_events)


def too_many(max_events: int) -> ValidationError:
    """The 400 for a selection past the cap."""
    return ValidationError(
        f"The replay selects more than {max_events} events; replay at most {max_events} "
        "per call (name fewer ids, or narrow since/until)."
    )


def not_found(space: str, ids: Iterable[str], subscription_id: str | None) -> NotFoundError:
    """The 404 for explicit ids that name no event of the space (nothing was replayed)."""
    missing = list(ids)
    named = ", ".join(repr(event_id) for event_id in missing[:_NAMED_IDS])
    if len(missing) > _NAMED_IDS:
        named += f" and {len(missing) - _NAMED_IDS} more"
    scope = f'space "{space}"'
    if subscription_id is not None:
        scope += f' with a delivery to subscription "{subscription_id}"'
    return NotFoundError(
        f"Events not found in {scope}: {named} (never accepted there, or removed by "
        "retention); nothing was replayed."
    )


def refused(
    *,
    add_deliveries: int,
    add_bytes: int,
    backlog: int,
    stored_bytes: int,
    max_deliveries: int,
    max_bytes: int,
) -> TooManyRequestsError:
    """The 429 for a replay that would take the queue past a bound (nothing was written)."""
    return TooManyRequestsError(
        f"Replay refused: it would add {add_deliveries} deliveries ({add_bytes} bytes of "
        f"events) to a delivery queue holding {backlog} of at most {max_deliveries} "
        f"deliveries and {stored_bytes} of at most {max_bytes} bytes; nothing was "
        "replayed. Retry once the backlog has drained, or replay fewer events."
    )


def partition_key_of(event: CloudEvent) -> str | None:
    """The event's ``partitionkey`` extension as an ordered delivery's key (as at accept)."""
    key = event.extensions.get("partitionkey")
    return None if key is None else str(key)


def plan_event(
    originals: Sequence[Original],
    *,
    subscription_id: str | None,
    subscriptions: Subscriptions,
    event: Callable[[], CloudEvent],
    skipped: ReplaySkipped,
) -> list[Planned]:
    """The new deliveries of one selected event; counts what it skips in ``skipped``.

    Args:
        originals: the event's deliveries in the space, oldest first: the first one to a
            subscription is the one a replay repeats.
        subscription_id: replay to this subscription only.
        subscriptions: the space's subscriptions as configured now.
        event: the stored event, decoded (called at most once, and only for an ordered
            or a filtered subscription).
    """
    stored = functools.cache(event)
    planned: list[Planned] = []
    seen: set[str] = set()
    for original in originals:
        wanted = original.subscription_id
        if wanted in seen or (subscription_id is not None and wanted != subscription_id):
            continue
        seen.add(wanted)
        target = subscriptions(wanted)
        if target is None:
            skipped.deleted_subscription += 1
        elif target.at_most_once:
            skipped.at_most_once += 1
        elif target.matches is not None and not target.matches(stored()):
            skipped.filtered += 1
        else:
            planned.append(
                Planned(
                    wanted,
                    target.function_id,
                    partition_key_of(stored()) if target.ordered else None,
                    original.replay_of or original.delivery_id,
                    original.auth_request,
                )
            )
    return planned
