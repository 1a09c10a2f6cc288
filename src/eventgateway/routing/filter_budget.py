"""How much work the filters of one event may do (pure).

A pattern within every limit can still meet an event that makes it expensive: a list of
100 ``prefix`` checks against an array of 400,000 strings is 40 million checks, seconds
of the event loop every other request waits on. So each event's filters share one
:class:`WorkBudget` of :data:`MAX_FILTER_STEPS` checks; an array of n elements matched
against a list of k checks costs n × k up front, before any is made. A filter that would
overrun the budget does not match (fails closed: the subscription does not get the event),
and :attr:`WorkBudget.exceeded` says so.

Matching runs on one thread per process (the event loop: accept, replay), so the budget
in use is a module-level slot that :func:`enter` sets for the length of one match and
:func:`leave` restores (a plain swap: a context manager would cost more than most matches).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_FILTER_STEPS", "FilterWorkExceeded", "WorkBudget", "charge", "enter", "leave"]

MAX_FILTER_STEPS: Final = 100_000
"""Checks the filters of one event may make in all (~10–20 ms of CPU at worst)."""


class FilterWorkExceeded(Exception):
    """Raised inside a match that would overrun its event's budget."""


class WorkBudget:
    """The checks left for one event's filters."""

    __slots__ = ("exceeded", "left")

    def __init__(self, steps: int = MAX_FILTER_STEPS) -> None:
        self.left = steps
        self.exceeded = False


class _Slot:
    __slots__ = ("budget",)

    def __init__(self) -> None:
        # Outside spending() (a matcher called directly, as in tests) nothing is counted.
        self.budget = WorkBudget(2**62)


_SLOT: Final = _Slot()


def charge(steps: int) -> None:
    """Spend ``steps`` checks of the current event's budget, or raise if it has too few."""
    budget = _SLOT.budget
    budget.left -= steps
    if budget.left < 0:
        budget.exceeded = True
        raise FilterWorkExceeded


def enter(budget: WorkBudget) -> WorkBudget:
    """Count checks against ``budget`` from now on; returns the budget to :func:`leave` to."""
    previous, _SLOT.budget = _SLOT.budget, budget
    return previous


def leave(previous: WorkBudget) -> None:
    """Count against ``previous`` again (what :func:`enter` returned)."""
    _SLOT.budget = previous
