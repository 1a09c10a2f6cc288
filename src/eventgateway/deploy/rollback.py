"""Undo the writes a deploy made before one was refused (:func:`roll_back`).

A deploy applies its plan one request at a time. When the gateway refuses a write
midway, the writes before it are undone in reverse order, each from what the plan knew
before it was made: a created resource is deleted, an updated one is put back as the
gateway listed it, a deleted one is created again from that listing. The space then
holds what it held when the deploy listed it, except for what other clients changed
meanwhile: this is no transaction, and nothing is locked.

An undo the gateway refuses too is skipped, the others are still tried, and the
:class:`DeployFailed` error names what stayed (:class:`LeftBehind`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from eventgateway.deploy.plan_types import Action, Op
from eventgateway.deploy.writes import send
from eventgateway.errors import ConfigError
from eventgateway.sdk._wire import GatewayError

if TYPE_CHECKING:
    from eventgateway.sdk.sync import EventGateway

__all__ = ["DeployFailed", "LeftBehind", "inverse", "roll_back"]

# What an undo does, for the message when it fails.
_UNDOING: Final[dict[Op, str]] = {
    "create": "deleting it",
    "update": "restoring its previous version",
    "delete": "creating it again",
}
_DONE: Final[dict[Op, str]] = {"create": "created", "update": "updated", "delete": "deleted"}


def _label(action: Action) -> str:
    """``function addUserToCRM``, or ``subscription sync … (id …)`` when the id is not
    the name a reader knows."""
    label = f"{action.kind} {action.name}"
    return label if action.resource_id == action.name else f"{label} (id {action.resource_id})"


@dataclass(frozen=True)
class LeftBehind:
    """A write of a failed deploy that could not be undone.

    Attributes:
        action: the deploy's write, which stays in effect.
        reason: why undoing it failed, in the gateway's words.
        uncertain: ``action`` got no answer, so it may not have been made at all.

    .. versionadded:: 0.1.0
    """

    action: Action
    reason: str
    uncertain: bool = False

    def describe(self) -> str:
        """``function notify (created; deleting it failed: …)``; "may have been created"
        for the write whose request got no answer."""
        op = self.action.op
        done = f"may have been {_DONE[op]}" if self.uncertain else _DONE[op]
        return f"{_label(self.action)} ({done}; {_UNDOING[op]} failed: {self.reason})"


class DeployFailed(ConfigError):
    """A write of a deploy was refused after earlier ones had been made.

    The message is the refusal first, then what the rollback did: the space is as it
    was, or this names each resource left behind.

    Attributes:
        failure: the refused write's error, as :func:`~eventgateway.deploy.apply.apply_plan`
            raises it without a rollback.
        undone: the writes that undid the deploy's earlier ones, in the order made.
        left_behind: the deploy's writes that stay; empty when the rollback was complete.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        failure: ConfigError,
        undone: Sequence[Action],
        left_behind: Sequence[LeftBehind],
        *,
        space: str,
    ) -> None:
        self.failure = failure
        self.undone = tuple(undone)
        self.left_behind = tuple(left_behind)
        refused = str(failure).rstrip(". ")
        if not self.left_behind:
            message = (
                f"{refused}. Rolled back this deploy's {_changes(len(self.undone))}: space "
                f"{space} is as it was before the deploy."
            )
        else:
            stays = "; ".join(item.describe() for item in self.left_behind)
            message = (
                f"{refused}. The rollback failed too, so this deploy left behind in space "
                f"{space}: {stays}. See them with `eg info`; deploying again continues "
                "from what the space now holds."
            )
        super().__init__(message)


def _changes(count: int) -> str:
    return "1 change" if count == 1 else f"{count} changes"


def inverse(action: Action) -> Action:
    """The write that undoes ``action``, made from the resource as the plan listed it.

    Raises:
        ValueError: an update or delete without ``before``: its previous state is unknown.
    """
    if action.op == "create":
        return Action(
            "delete", action.kind, action.name, action.resource_id, None, action.body, action.detail
        )
    if action.before is None:
        raise ValueError("its previous state is unknown")
    # A listing carries the space, which is in the URL of a write, not in its body.
    previous = {key: value for key, value in action.before.items() if key != "space"}
    if action.op == "update":
        return Action(
            "update",
            action.kind,
            action.name,
            action.resource_id,
            previous,
            action.body,
            ": restored",
        )
    return Action(
        "create", action.kind, action.name, action.resource_id, previous, None, action.detail
    )


def _undo(gateway: EventGateway, action: Action, *, uncertain: bool) -> Action | None:
    """Undo ``action``: the undoing write, or ``None`` when the resource already was as
    before: a created one gone, or (``uncertain``: ``action`` may not have happened) a
    deleted one still there."""
    undo = inverse(action)
    try:
        send(gateway, undo)
    except GatewayError as exc:
        gone = undo.op == "delete" and exc.status == 404
        still_there = uncertain and undo.op == "create" and exc.status == 409
        if gone or still_there:
            return None
        raise
    return undo


def roll_back(
    gateway: EventGateway,
    applied: Sequence[Action],
    *,
    unsure: Action | None = None,
    progress: Callable[[Action], None] | None = None,
) -> tuple[list[Action], list[LeftBehind]]:
    """Undo ``applied`` in reverse order, going on past an undo that fails.

    Args:
        gateway: the client the writes were made with.
        applied: the writes the gateway accepted, in the order made.
        unsure: a write whose request got no answer (the connection dropped): it may
            have been made, so it is undone first, as far as that is safe.
        progress: called with each undoing write once the gateway accepted it.

    Returns:
        The undoing writes made, and the writes that could not be undone.
    """
    undone: list[Action] = []
    left: list[LeftBehind] = []
    steps = [(action, False) for action in reversed(applied)]
    if unsure is not None:
        steps.insert(0, (unsure, True))
    for action, uncertain in steps:
        try:
            undo = _undo(gateway, action, uncertain=uncertain)
        except GatewayError as exc:
            left.append(LeftBehind(action, exc.message.rstrip("."), uncertain))
            continue
        except Exception as exc:
            # Whatever failed, the deploy ends with the list of what it left behind, not
            # a traceback; the other undos are still tried.
            left.append(LeftBehind(action, str(exc) or type(exc).__name__, uncertain))
            continue
        if undo is not None:
            undone.append(undo)
            if progress is not None:
                progress(undo)
    return undone, left
