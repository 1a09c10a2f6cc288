"""PathTree against a brute-force model over arbitrary add / remove / resolve sequences.

The tree has no removal: the routing table is rebuilt from the remaining routes whenever a
subscription goes. So a removal here rebuilds the tree from the model's routes, in the
order they were added, which must never conflict (a subset of routes that fitted together
still fits), and every lookup must agree with matching each route on its own.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from eventgateway.routing.pathtree import PathConflictError, PathTree

_NAMES = st.sampled_from(["a", "b", "id"])
_SEGMENT = st.one_of(
    st.sampled_from(["", "a", "b", "users", "me", "%2F"]),
    _NAMES.map(lambda name: ":" + name),
    _NAMES.map(lambda name: "*" + name),
)
ROUTES = st.lists(_SEGMENT, max_size=4).map(lambda segments: "/" + "/".join(segments))
_VALUE = st.sampled_from(["", "a", "b", "me", "x", "users", "%2F", ":a", "*a"])
PATHS = st.one_of(
    st.lists(_VALUE, min_size=0, max_size=5).map(lambda values: "/" + "/".join(values)),
    st.text(alphabet="/abx:*%", max_size=8),
)


def model_resolve(routes: list[str], path: str) -> tuple[str, dict[str, str] | None] | None:
    """Match ``path`` against every route on its own; at most one may match."""
    if path == "/":
        return ("/", None) if "/" in routes else None
    if not path.startswith("/"):
        return None
    found = []
    given = path[1:].split("/")
    for route in routes:
        if route == "/":
            continue
        params = _match(route[1:].split("/"), given)
        if params is not None:
            found.append((route, params))
    assert len(found) <= 1, f"{path} matches {found}: the tree let ambiguous routes in"
    return found[0] if found else None


def _match(pattern: list[str], given: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, segment in enumerate(pattern):
        if segment.startswith("*"):
            if index >= len(given):
                return None
            params[segment[1:]] = "/".join(given[index:])
            return params
        if index >= len(given):
            return None
        if segment.startswith(":"):
            params[segment[1:]] = given[index]
        elif segment != given[index]:
            return None
    return params if len(pattern) == len(given) else None


def build(routes: list[str]) -> PathTree[str]:
    tree: PathTree[str] = PathTree()
    for route in routes:
        tree.add(route, route)
    return tree


class PathTreeModel(RuleBasedStateMachine):
    added = Bundle("added")

    @initialize()
    def start(self) -> None:
        self.routes: list[str] = []
        self.tree = build([])

    @rule(target=added, route=ROUTES)
    def add(self, route: str) -> str:
        try:
            self.tree.add(route, route)
        except PathConflictError:
            # Refused routes leave the tree as it was; the invariant checks lookups still agree.
            return ""
        self.routes.append(route)
        return route

    @rule(route=consumes(added))
    def remove(self, route: str) -> None:
        if route and route in self.routes:
            self.routes.remove(route)
            self.tree = build(self.routes)  # what a routing table rebuild does

    @rule(path=PATHS)
    def resolve(self, path: str) -> None:
        assert self.tree.resolve(path) == model_resolve(self.routes, path)

    @rule(data=st.data())
    def resolve_an_added_route(self, data: st.DataObject) -> None:
        if not self.routes:
            return
        route = data.draw(st.sampled_from(self.routes))
        path = "/".join(
            data.draw(_VALUE.filter(bool)) if segment[:1] in (":", "*") else segment
            for segment in route.split("/")
        )
        assert self.tree.resolve(path) == model_resolve(self.routes, path)

    @invariant()
    def counts_agree(self) -> None:
        assert len(self.tree) == len(self.routes)


TestPathTreeModel = PathTreeModel.TestCase
TestPathTreeModel.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


@settings(max_examples=300, deadline=None)
@given(routes=st.lists(ROUTES, max_size=10), data=st.data())
def test_any_subset_of_a_tree_rebuilds_without_conflict(
    routes: list[str], data: st.DataObject
) -> None:
    tree: PathTree[str] = PathTree()
    kept = []
    for route in routes:
        try:
            tree.add(route, route)
        except PathConflictError:
            continue
        kept.append(route)
    subset = data.draw(st.lists(st.sampled_from(kept), unique=True) if kept else st.just([]))
    ordered = [route for route in kept if route in subset]

    build(ordered)  # raises if removing routes could make the rest conflict
