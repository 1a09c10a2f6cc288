"""What an administrative call of the delivery log selects in one space.

Redrive, purge and the dead-letter listing select dead letters (``ids`` are dead-letter
ids, the window is over the time each died); replay selects stored events (``ids`` are
event ids, the window is over the time each was received). Filters combine with AND;
``since`` is inclusive, ``until`` exclusive, a missing end is open.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Selection", "in_window", "parse_ids"]


@dataclass(frozen=True, slots=True)
class Selection:
    """The filters of one call: ``space`` always, the others when given."""

    space: str
    ids: Sequence[str] | None = None
    subscription_id: str | None = None
    since: float | None = None
    until: float | None = None

    def in_window(self, moment: float) -> bool:
        """Whether ``since <= moment < until``."""
        return in_window(moment, self.since, self.until)

    def subscription(self, subscription_id: str) -> bool:
        """Whether the subscription filter (if any) admits ``subscription_id``."""
        return self.subscription_id is None or subscription_id == self.subscription_id


def parse_ids(ids: Iterable[str]) -> set[int]:
    """The ids a client named that could exist: decimal, below SQLite's 2**63 rowid bound.

    Others are left out rather than refused (they name nothing): a lookup of them finds
    nothing, and they never reach ``int()`` (4,300 digits at most) or SQLite (64 bits).
    """
    return {
        int(text)
        for text in ids
        if text.isascii() and text.isdigit() and len(text) <= 19 and int(text) < 2**63
    }


def in_window(moment: float, since: float | None, until: float | None) -> bool:
    """Whether ``since <= moment < until`` (a missing end is open)."""
    return (since is None or moment >= since) and (until is None or moment < until)
