"""The path tree that matches sync subscription and CORS paths (contract §4.1).

Routes are ``/``-separated segments; ``:name`` is a parameter that captures one segment,
``*name`` a wildcard that captures the rest of the path. Matching follows the original
gateway exactly: no normalisation (trailing and double slashes are significant), params
keep their percent-escapes, and the walk never backtracks: at each level the static child
with the segment's exact text wins, otherwise the node's parameter or wildcard child is
taken, otherwise there is no match.

Conflicts are reported with the original's error texts, because the Configuration API
returns them verbatim (``Subscription path conflict: <text>``). Two deliberate
differences: adding ``/`` twice is a conflict (the original silently replaced the root
value), and a failed add changes nothing (the original could leave a dangling node that
made later, valid routes conflict).

Pure: no I/O, no imports from the rest of the package.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["PathConflictError", "PathTree"]

V = TypeVar("V")

_STATIC = 0
_PARAM = 1
_WILDCARD = 2


class PathConflictError(ValueError):
    """Raised by :meth:`PathTree.add` when a route does not fit into the tree.

    ``str(exc)`` is the original gateway's tree error text (contract §3, §4.1), e.g.
    ``static route already defined for route: /users/:id``.
    """


def _kind(segment: str) -> int:
    if segment.startswith(":"):
        return _PARAM
    if segment.startswith("*"):
        return _WILDCARD
    return _STATIC


# Go strconv.Quote escapes
_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _go_quote(text: str) -> str:
    """Quote like Go's ``%q`` (strconv.Quote), which the original used for names."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


class _Node(Generic[V]):
    """One segment. Children are static ones (by text) or a single param/wildcard, never both."""

    __slots__ = (
        "depth",
        "dynamic",
        "has_value",
        "is_wildcard",
        "kind",
        "name",
        "segment",
        "statics",
        "value",
    )

    value: V

    def __init__(self, segment: str, kind: int, depth: int) -> None:
        # the index of this node's segment in ``path.split("/")``
        self.depth = depth
        self.segment = segment
        self.kind = kind
        self.name = segment[1:] if kind != _STATIC else ""
        self.is_wildcard = kind == _WILDCARD
        self.statics: dict[str, _Node[V]] | None = None
        self.dynamic: _Node[V] | None = None
        self.has_value = False

    def any_child(self) -> _Node[V] | None:
        if self.dynamic is not None:
            return self.dynamic
        if self.statics:
            return next(iter(self.statics.values()))
        return None

    def attach(self, child: _Node[V]) -> None:
        if child.kind == _STATIC:
            if self.statics is None:
                self.statics = {}
            self.statics[child.segment] = child
        else:
            self.dynamic = child


class PathTree(Generic[V]):
    """Maps route patterns to values and resolves request paths against them.

    Build it once with :meth:`add`, then share it read-only: :meth:`resolve` does not
    mutate, so concurrent lookups are safe.
    """

    __slots__ = ("_count", "_entry", "_root", "_static_routes")

    def __init__(self) -> None:
        self._root: _Node[V] = _Node("", _STATIC, 0)
        # The root hangs below an entry node as the static child "": resolve can then walk
        # ``path.split("/")`` from its leading "" and relative paths fall out as misses.
        self._entry: _Node[V] = _Node("", _STATIC, -1)
        self._entry.statics = {"": self._root}
        # Routes made only of static segments resolve in one dict lookup: with static
        # children always tried first, the walk for the identical path ends on that node.
        self._static_routes: dict[str, _Node[V]] = {}
        self._count = 0

    def __len__(self) -> int:
        """The number of routes added."""
        return self._count

    def add(self, path: str, value: V) -> None:
        """Add route ``path`` with ``value``.

        A failed add leaves the tree unchanged (the original could leave a dangling node).

        Args:
            path: a route pattern starting with ``/``; ``:name`` and ``*name`` segments
                are a parameter and a wildcard.
            value: what :meth:`resolve` returns for matching paths.

        Raises:
            PathConflictError: the route clashes with the routes already added; the
                message is the original's text.
            ValueError: ``path`` does not start with ``/``.
        """
        if not path.startswith("/"):
            raise ValueError(f"route {path!r} must start with '/'")
        if path == "/":
            if self._root.has_value:
                raise PathConflictError("route / conflicts with existing route")
            self._set(self._root, path, value, static=True)
            return

        segments = path[1:].split("/")
        last = len(segments) - 1
        node = self._root
        for index, segment in enumerate(segments):
            kind = _kind(segment)
            child = node.statics.get(segment) if kind == _STATIC and node.statics else None
            if child is None:
                existing = node.any_child()
                if existing is None:
                    self._grow(node, segments, index, path, value)
                    return
                _check_sibling(existing, segment, kind, path)
                if existing.kind == _STATIC:
                    # a new static sibling next to other statics
                    self._grow(node, segments, index, path, value)
                    return
                child = existing  # the same parameter again
            if index == last:
                if child.has_value:
                    raise PathConflictError(f"route {path} conflicts with existing route")
                self._set(child, path, value, static=_is_static_route(segments))
                return
            node = child

    def resolve(self, path: str) -> tuple[V, dict[str, str] | None] | None:
        """Find the value for request path ``path`` and its parameters.

        Args:
            path: the raw (still percent-escaped) request path.

        Returns:
            ``None`` when nothing matches; ``(value, None)`` for ``/`` and the root route;
            otherwise ``(value, params)`` where ``params`` maps parameter and wildcard
            names to the captured, still-escaped text (``{}`` when there are none).
        """
        hit = self._static_routes.get(path)
        if hit is not None:
            return hit.value, ({} if path != "/" else None)
        if path == "/" or not path:
            return None

        node = self._entry
        params: dict[str, str] | None = None
        # One split and a plain loop are the cheapest walk in CPython.
        for segment in path.split("/"):
            statics = node.statics
            child = statics.get(segment) if statics is not None else None
            if child is None:
                child = node.dynamic
                if child is None:
                    return None
                if params is None:
                    params = {}
                if child.is_wildcard:
                    # a wildcard always ends an added route, so it holds a value
                    params[child.name] = path.split("/", child.depth)[child.depth]
                    return child.value, params
                params[child.name] = segment
            node = child
        if not node.has_value:
            return None
        return node.value, (params if params is not None else {})

    def _grow(self, parent: _Node[V], segments: list[str], index: int, path: str, value: V) -> None:
        """Create the nodes for ``segments[index:]`` below ``parent``, all checks first."""
        if any(segment.startswith("*") for segment in segments[index:-1]):
            raise PathConflictError("wildcard must be the last parameter")
        top: _Node[V] = _Node(segments[index], _kind(segments[index]), parent.depth + 1)
        node = top
        for segment in segments[index + 1 :]:
            child: _Node[V] = _Node(segment, _kind(segment), node.depth + 1)
            node.attach(child)
            node = child
        parent.attach(top)
        self._set(node, path, value, static=_is_static_route(segments))

    def _set(self, node: _Node[V], path: str, value: V, *, static: bool) -> None:
        node.value = value
        node.has_value = True
        self._count += 1
        if static:
            self._static_routes[path] = node


def _is_static_route(segments: list[str]) -> bool:
    return not any(segment.startswith((":", "*")) for segment in segments)


def _check_sibling(existing: _Node[V], segment: str, kind: int, path: str) -> None:
    """Refuse ``segment`` next to ``existing``, in the original's order of checks."""
    if existing.kind == _WILDCARD or kind == _WILDCARD:
        raise PathConflictError(
            f"wildcard with different name ({_go_quote(existing.name)}) already defined: "
            f"for route: {path}"
        )
    if existing.kind == _PARAM and existing.segment != segment:
        raise PathConflictError(
            f"parameter with different name ({_go_quote(existing.name)}) already defined: "
            f"for route: {path}"
        )
    if existing.kind == _STATIC and kind != _STATIC:
        raise PathConflictError(f"static route already defined for route: {path}")
