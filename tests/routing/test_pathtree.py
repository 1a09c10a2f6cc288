"""PathTree: matching and conflict texts of the original gateway (contract §4.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventgateway.routing.pathtree import PathConflictError, PathTree


def tree_of(*routes: str) -> PathTree[str]:
    tree: PathTree[str] = PathTree()
    for route in routes:
        tree.add(route, route)
    return tree


# (routes, request path, expected (route, params) or None)
RESOLVE_CASES = [
    pytest.param(["/"], "/", ("/", None), id="root-route-has-no-params"),
    pytest.param([], "/", None, id="root-without-root-route"),
    pytest.param(["/:id"], "/", None, id="slash-matches-only-root-route"),
    pytest.param(["/*p"], "/", None, id="slash-not-matched-by-root-wildcard"),
    pytest.param(["/*p"], "/a/b", ("/*p", {"p": "a/b"}), id="root-wildcard"),
    pytest.param(["/a", "/b", "/a/b"], "/a/b", ("/a/b", {}), id="static-has-empty-params"),
    pytest.param(["/a/b/c/d"], "/a/b", None, id="intermediate-node-without-value"),
    pytest.param(["/users", "/users/:id"], "/users", ("/users", {}), id="prefix-route"),
    pytest.param(["/users", "/users/:id"], "/users/7", ("/users/:id", {"id": "7"}), id="param"),
    pytest.param(["/users/:id"], "/users/7/x", None, id="param-matches-one-segment"),
    pytest.param(["/users/:id"], "/users/", ("/users/:id", {"id": ""}), id="param-empty-segment"),
    pytest.param(
        ["/:a/bar/:b"], "/foo/bar/baz", ("/:a/bar/:b", {"a": "foo", "b": "baz"}), id="params"
    ),
    pytest.param(
        ["/users/:id"],
        "/users/a%2Fb%20c",
        ("/users/:id", {"id": "a%2Fb%20c"}),
        id="param-stays-escaped",
    ),
    pytest.param(
        ["/users/:id"], "/users/:id", ("/users/:id", {"id": ":id"}), id="param-literal-request"
    ),
    pytest.param(["/files/*p"], "/files/a/b", ("/files/*p", {"p": "a/b"}), id="wildcard-rest"),
    pytest.param(["/files/*p"], "/files/", ("/files/*p", {"p": ""}), id="wildcard-empty"),
    pytest.param(["/files/*p"], "/files", None, id="wildcard-needs-its-segment"),
    pytest.param(
        ["/files/*p"], "/files/a//b/", ("/files/*p", {"p": "a//b/"}), id="wildcard-keeps-slashes"
    ),
    pytest.param(
        ["/files/*p"], "/files/%2e%2e/x", ("/files/*p", {"p": "%2e%2e/x"}), id="wildcard-escaped"
    ),
    pytest.param(
        ["/:a/*p"], "/x/y/z", ("/:a/*p", {"a": "x", "p": "y/z"}), id="param-then-wildcard"
    ),
    pytest.param(["/a/"], "/a", None, id="trailing-slash-significant"),
    pytest.param(["/a"], "/a/", None, id="missing-trailing-slash-significant"),
    pytest.param(["/a/"], "/a/", ("/a/", {}), id="trailing-slash-route"),
    pytest.param(["/a/b"], "/a//b", None, id="double-slash-significant"),
    pytest.param(["/a//b"], "/a//b", ("/a//b", {}), id="double-slash-route"),
    pytest.param(["/a/:x/b"], "/a//b", ("/a/:x/b", {"x": ""}), id="double-slash-empty-param"),
    pytest.param(["/a"], "/A", None, id="case-sensitive"),
    pytest.param(["/a%20b"], "/a b", None, id="escapes-not-decoded"),
    pytest.param(["/a"], "", None, id="empty-path"),
    pytest.param(["/a"], "a", None, id="relative-path"),
    pytest.param(["/*p"], "*", None, id="asterisk-form"),
    pytest.param(["/a/b", "/a/b/c"], "/a/b/x", None, id="static-sibling-missing"),
    # Statics never sit next to a param/wildcard, so the walk has no choice to undo: once
    # it took "me" a miss below is final.
    pytest.param(["/users/me/a", "/users/me"], "/users/me/x", None, id="no-backtracking"),
    pytest.param(["/:a/b/c", "/:a/b"], "/x/b/d", None, id="no-backtracking-after-param"),
]


@pytest.mark.parametrize(("routes", "path", "expected"), RESOLVE_CASES)
def test_resolve(routes: list[str], path: str, expected: object) -> None:
    assert tree_of(*routes).resolve(path) == expected


# (existing routes, new route, exact error text)
CONFLICT_CASES = [
    pytest.param(
        ["/users/:id"],
        "/users/:name",
        'parameter with different name ("id") already defined: for route: /users/:name',
        id="param-different-name",
    ),
    pytest.param(
        ["/users/:id"],
        "/users/me",
        'parameter with different name ("id") already defined: for route: /users/me',
        id="static-next-to-param-reports-param",
    ),
    pytest.param(
        ["/users/me"],
        "/users/:id",
        "static route already defined for route: /users/:id",
        id="param-next-to-static",
    ),
    pytest.param(
        ["/:foo/:bar"],
        "/baz",
        'parameter with different name ("foo") already defined: for route: /baz',
        id="static-next-to-param-other-depth",
    ),
    pytest.param(
        ["/files/*p"],
        "/files/*q",
        'wildcard with different name ("p") already defined: for route: /files/*q',
        id="second-wildcard",
    ),
    pytest.param(
        ["/files/*p"],
        "/files/*p",
        'wildcard with different name ("p") already defined: for route: /files/*p',
        id="same-wildcard-again",
    ),
    pytest.param(
        ["/files/*p"],
        "/files/a/b",
        'wildcard with different name ("p") already defined: for route: /files/a/b',
        id="static-next-to-wildcard",
    ),
    pytest.param(
        ["/files/*p"],
        "/files/:id",
        'wildcard with different name ("p") already defined: for route: /files/:id',
        id="param-next-to-wildcard",
    ),
    pytest.param(
        ["/files/:id"],
        "/files/*p",
        'wildcard with different name ("id") already defined: for route: /files/*p',
        id="wildcard-next-to-param",
    ),
    pytest.param(
        ["/files/a"],
        "/files/*p",
        'wildcard with different name ("") already defined: for route: /files/*p',
        id="wildcard-next-to-static",
    ),
    pytest.param([], "/files/*p/x", "wildcard must be the last parameter", id="wildcard-not-last"),
    pytest.param(
        ["/files"],
        "/files/*p/x/y",
        "wildcard must be the last parameter",
        id="wildcard-not-last-below-existing",
    ),
    pytest.param(["/x"], "/x", "route /x conflicts with existing route", id="same-static"),
    pytest.param(
        ["/users/:id"],
        "/users/:id",
        "route /users/:id conflicts with existing route",
        id="same-param",
    ),
    pytest.param(["/a/"], "/a/", "route /a/ conflicts with existing route", id="same-trailing"),
    pytest.param(["/"], "/", "route / conflicts with existing route", id="root-twice"),
    pytest.param(
        ["/a/:x/b"],
        "/a/:y/c",
        'parameter with different name ("x") already defined: for route: /a/:y/c',
        id="param-name-deep",
    ),
    pytest.param(
        ['/a/:x"y'],
        "/a/:z",
        'parameter with different name ("x\\"y") already defined: for route: /a/:z',
        id="name-go-quoted",
    ),
]


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        pytest.param("id", '"id"', id="plain"),
        pytest.param('a"b\\c', '"a\\"b\\\\c"', id="quote-and-backslash"),
        pytest.param("a\tb\n", '"a\\tb\\n"', id="c-escapes"),
        pytest.param("a\x01\x7f", '"a\\x01\\x7f"', id="ascii-control"),
        pytest.param("\u00e9\u00a0", '"\u00e9\\u00a0"', id="unicode-printable-and-not"),
        pytest.param("\U000e0001", '"\\U000e0001"', id="astral-non-printable"),
    ],
)
def test_conflict_names_are_quoted_like_go(name: str, quoted: str) -> None:
    tree = tree_of(f"/w/*{name}")
    with pytest.raises(PathConflictError) as info:
        tree.add("/w/x", "x")
    assert (
        str(info.value)
        == f"wildcard with different name ({quoted}) already defined: for route: /w/x"
    )


@pytest.mark.parametrize(("existing", "route", "message"), CONFLICT_CASES)
def test_add_conflict_message(existing: list[str], route: str, message: str) -> None:
    tree = tree_of(*existing)
    with pytest.raises(PathConflictError) as info:
        tree.add(route, "new")
    assert str(info.value) == message


@pytest.mark.parametrize(
    "routes",
    [
        pytest.param(["/users", "/users/:id"], id="prefix"),
        pytest.param(["/users/:id", "/users"], id="prefix-reverse"),
        pytest.param(["/users/:id", "/users/:id/posts/:post"], id="same-param-deeper"),
        pytest.param(["/a", "/b", "/a/b", "/d/e/f"], id="statics"),
        pytest.param(["/", "/a", "/a/:b/c"], id="root-and-others"),
        pytest.param(["/files/*p", "/files"], id="wildcard-and-parent"),
        pytest.param(["/a/", "/a", "/a//"], id="slashes-are-segments"),
    ],
)
def test_routes_coexist(routes: list[str]) -> None:
    tree = tree_of(*routes)
    assert len(tree) == len(routes)


def test_failed_add_leaves_tree_unchanged() -> None:
    tree = tree_of("/a")
    with pytest.raises(PathConflictError, match="wildcard must be the last parameter"):
        tree.add("/b/*p/c", "x")
    # the original left a dangling "*p" node behind; we must not
    tree.add("/b/c", "/b/c")
    assert tree.resolve("/b/c") == ("/b/c", {})
    assert tree.resolve("/b/x/c") is None
    assert len(tree) == 2


def test_add_requires_leading_slash() -> None:
    tree: PathTree[str] = PathTree()
    with pytest.raises(ValueError, match="must start with '/'") as info:
        tree.add("a/b", "x")
    assert not isinstance(info.value, PathConflictError)
    assert len(tree) == 0


def test_len_counts_routes() -> None:
    assert len(tree_of()) == 0
    assert len(tree_of("/", "/a", "/a/:b", "/c/*d")) == 4


def test_values_may_be_falsy() -> None:
    tree: PathTree[int | None] = PathTree()
    tree.add("/", None)
    tree.add("/zero", 0)
    tree.add("/p/:id", None)
    assert tree.resolve("/") == (None, None)
    assert tree.resolve("/zero") == (0, {})
    assert tree.resolve("/p/1") == (None, {"id": "1"})


def test_resolve_returns_fresh_params() -> None:
    tree = tree_of("/a", "/b/:id")
    first = tree.resolve("/a")
    assert first is not None
    assert first[1] is not None
    first[1]["x"] = "mutated"
    assert tree.resolve("/a") == ("/a", {})


# --- properties -------------------------------------------------------------------------

_TEXT = st.text(alphabet="abc:*%/ -_.", max_size=4)
_NAME = st.text(alphabet="abcxyz", min_size=0, max_size=3)
_STATIC = st.text(alphabet="abcd%2F.-_", max_size=3).filter(lambda s: not s.startswith((":", "*")))
_SEGMENT = st.one_of(_STATIC, _NAME.map(lambda n: ":" + n), _NAME.map(lambda n: "*" + n))
_ROUTE = st.lists(_SEGMENT, min_size=0, max_size=5).map(lambda segs: "/" + "/".join(segs))
# a concrete value for a parameter: any segment text without "/"
_VALUE = st.text(alphabet="abcd:*%2F.-_ ", max_size=4)
_REST = st.lists(_VALUE, min_size=1, max_size=3).map("/".join)


@given(routes=st.lists(_ROUTE, max_size=12), data=st.data())
def test_every_added_route_resolves_to_itself(routes: list[str], data: st.DataObject) -> None:
    tree: PathTree[str] = PathTree()
    added: list[str] = []
    for route in routes:
        try:
            tree.add(route, route)
        except PathConflictError:
            continue
        added.append(route)
    assert len(tree) == len(added)

    for route in added:
        # the route's own text resolves to it (parameters capture their own ":name")
        if route == "/":
            assert tree.resolve("/") == ("/", None)
            continue
        parts: list[str] = []
        params: dict[str, str] = {}
        for segment in route[1:].split("/"):
            if segment.startswith(":"):
                value = data.draw(_VALUE)
                params[segment[1:]] = value
                parts.append(value)
            elif segment.startswith("*"):
                rest = data.draw(_REST)
                params[segment[1:]] = rest
                parts.append(rest)
            else:
                parts.append(segment)
        path = "/" + "/".join(parts)
        if path == "/":
            continue  # "/" only ever matches the root route
        assert tree.resolve(path) == (route, params)


@given(routes=st.lists(_ROUTE, max_size=8), path=st.one_of(_TEXT, _REST.map(lambda r: "/" + r)))
def test_resolve_never_raises(routes: list[str], path: str) -> None:
    tree: PathTree[str] = PathTree()
    for route in routes:
        try:
            tree.add(route, route)
        except PathConflictError:
            pass
    found = tree.resolve(path)
    if found is not None:
        route, params = found
        assert route in routes
        assert (params is None) == (path == "/")


@given(routes=st.lists(_ROUTE, max_size=8), extra=_ROUTE, paths=st.lists(_REST, max_size=6))
def test_failed_add_changes_nothing(routes: list[str], extra: str, paths: list[str]) -> None:
    tree: PathTree[str] = PathTree()
    for route in routes:
        try:
            tree.add(route, route)
        except PathConflictError:
            pass
    requests = ["/", *routes, *("/" + p for p in paths)]
    before = [tree.resolve(p) for p in requests]
    try:
        tree.add(extra, "extra")
    except PathConflictError:
        assert [tree.resolve(p) for p in requests] == before


class _Reference:
    """A literal model of the original's tree walk (mutating as it goes), as a test oracle.

    Only compared up to the first failed add: after one, the original keeps dangling nodes.
    """

    def __init__(self) -> None:
        self.root: dict[str, object] = {"children": {}, "value": None, "seg": ""}

    def add(self, route: str) -> None:
        if route == "/":
            if self.root["value"] is not None:
                raise PathConflictError("route / conflicts with existing route")
            self.root["value"] = route
            return
        segments = route.split("/")[1:]
        node = self.root
        for i, segment in enumerate(segments):
            if node["seg"].startswith("*"):  # type: ignore[attr-defined]
                raise PathConflictError("wildcard must be the last parameter")
            children: dict[str, dict[str, object]] = node["children"]  # type: ignore[assignment]
            child = children.get(segment)
            if child is None:
                if not children:
                    children[segment] = {"children": {}, "value": None, "seg": segment}
                    if i == len(segments) - 1:
                        children[segment]["value"] = route
                        return
                    node = children[segment]
                    continue
                child = next(iter(children.values()))
            seg: str = child["seg"]  # type: ignore[assignment]
            name = seg[1:] if seg[:1] in (":", "*") else ""
            if seg.startswith("*") or segment.startswith("*"):
                raise PathConflictError(
                    f'wildcard with different name ("{name}") already defined: for route: {route}'
                )
            if seg.startswith(":") and seg != segment:
                raise PathConflictError(
                    f'parameter with different name ("{name}") already defined: for route: {route}'
                )
            if not seg.startswith(":") and segment.startswith(":"):
                raise PathConflictError(f"static route already defined for route: {route}")
            children.setdefault(segment, {"children": {}, "value": None, "seg": segment})
            if i == len(segments) - 1:
                if children[segment]["value"] is not None:
                    raise PathConflictError(f"route {route} conflicts with existing route")
                children[segment]["value"] = route
                return
            node = children[segment]


def _reference_error(reference: _Reference, route: str) -> str | None:
    try:
        reference.add(route)
    except PathConflictError as exc:
        return str(exc)
    return None


@given(routes=st.lists(_ROUTE, min_size=1, max_size=12))
def test_add_matches_the_original_algorithm(routes: list[str]) -> None:
    tree: PathTree[str] = PathTree()
    reference = _Reference()
    for route in routes:
        expected = _reference_error(reference, route)
        if expected is None:
            tree.add(route, route)
            continue
        with pytest.raises(PathConflictError) as info:
            tree.add(route, route)
        assert str(info.value) == expected
        return
