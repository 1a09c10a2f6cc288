"""Guards on the shape of the code base: module size, import direction, public exports.

Imports are read with ``ast`` from the source files (never by importing them), including
imports inside functions and ``if TYPE_CHECKING:`` blocks: a type-only import still ties
one layer to another.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "eventgateway"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 500

# Libraries that do I/O: none of them may appear in a pure module (ARCHITECTURE.md).
IO_LIBRARIES = (
    "aiohttp",
    "anyio",
    "asyncio",
    "concurrent",
    "http.client",
    "http.server",
    "httptools",
    "httpx",
    "nats",
    "selectors",
    "socket",
    "sqlite3",
    "ssl",
    "starlette",
    "subprocess",
    "threading",
    "urllib.request",
    "uvicorn",
    "uvloop",
)
PURE = (
    "events",
    "model",
    "routing/pathtree.py",
    "routing/filters.py",
    "routing/filter_leaf.py",
    "routing/filter_budget.py",
    "routing/filter_values.py",
    "dispatch/retry.py",
    "providers/targets.py",
    "auth/keys.py",
    "sdk/_wire.py",
    "sdk/_base.py",
    "sdk/_calls.py",
    "sdk/_replay.py",
    "sdk/_space_calls.py",
    "sdk/_emit.py",
    "sdk/_sse.py",
    "sdk/_retry.py",
    "sdk/_hosts.py",
)
PURE_FORBIDDEN = (
    "eventgateway.api",
    "eventgateway.store",
    "eventgateway.queue",
    "eventgateway.app",
    *IO_LIBRARIES,
)
BACKENDS = ("store", "queue", "providers")
BACKENDS_FORBIDDEN = ("eventgateway.api", "eventgateway.dispatch")
SDK_ALLOWED = ("eventgateway.sdk", "eventgateway.errors", "eventgateway.names")


def relative(path: pathlib.Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_source_module(name: str) -> bool:
    """Whether ``name`` is a module or package of ``src/`` (not a name defined inside one)."""
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(source: str, name: str, *, is_package: bool = False) -> set[str]:
    """Every module the code ``source`` of module ``name`` imports, relative imports resolved.

    For ``from X import a`` that is ``X.a`` when it is one of our modules, else ``X``; for
    other libraries both ``X`` and ``X.a`` are listed, so ``from http import client``
    shows up as ``http.client``.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                if origin.split(".")[0] == "eventgateway":
                    found.add(candidate if is_source_module(candidate) else origin)
                else:
                    found.update((origin, candidate))
    return found


def imported_modules(path: pathlib.Path) -> set[str]:
    return imports_of(
        path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py"
    )


def under(*locations: str) -> list[pathlib.Path]:
    """The modules in these folders or files of the package; missing ones are passed over."""
    paths: list[pathlib.Path] = []
    for location in locations:
        target = PACKAGE / location
        if target.is_dir():
            paths.extend(sorted(target.rglob("*.py")))
        elif target.is_file():
            paths.append(target)
    return paths


def matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def violations(paths: list[pathlib.Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        relative(path): sorted(m for m in imported_modules(path) if matches(m, forbidden))
        for path in paths
    }
    return {path: modules for path, modules in found.items() if modules}


# -- the import reader itself ----------------------------------------------------------------


SAMPLE = """
from __future__ import annotations
import json, os.path
from typing import TYPE_CHECKING
from http import client
from . import model
from .codec import encode_event
from ..errors import ProviderError
from eventgateway.routing import pathtree
from eventgateway.events.model import CloudEvent

if TYPE_CHECKING:
    from eventgateway.store.base import ConfigStore

def later():
    import aiohttp
"""


def test_import_reader_finds_every_kind_of_import():
    found = imports_of(SAMPLE, "eventgateway.events.sample")

    assert {
        "json",
        "os.path",
        "http.client",
        "eventgateway.events.model",
        "eventgateway.events.codec",
        "eventgateway.errors",
        "eventgateway.routing.pathtree",
        "eventgateway.store.base",
        "aiohttp",
    } <= found
    assert "eventgateway.events.model.CloudEvent" not in found
    assert matches("eventgateway.store.base", PURE_FORBIDDEN)
    assert matches("http.client", PURE_FORBIDDEN)
    assert not matches("eventgateway.storehouse", PURE_FORBIDDEN)


def test_import_reader_resolves_relative_imports_in_a_package_init():
    found = imports_of("from .model import CloudEvent", "eventgateway.events", is_package=True)

    assert found == {"eventgateway.events.model"}


def test_module_names_follow_the_source_tree():
    assert module_name(PACKAGE / "events" / "http.py") == "eventgateway.events.http"
    assert module_name(PACKAGE / "events" / "__init__.py") == "eventgateway.events"


# -- (1) module size -------------------------------------------------------------------------


def test_every_module_is_at_most_500_lines():
    too_long = {
        relative(path): lines
        for path in MODULES
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }

    assert too_long == {}, f"split these modules (limit {MAX_LINES} lines): {too_long}"


# -- (2) import direction --------------------------------------------------------------------


def test_pure_modules_import_no_server_layer_and_no_io_library():
    paths = under(*PURE)

    assert paths, "the pure modules were not found; has the layout moved?"
    assert violations(paths, PURE_FORBIDDEN) == {}


def test_store_queue_and_providers_never_import_api_or_dispatch():
    paths = under(*BACKENDS)

    assert paths, "store/, queue/ and providers/ were not found; has the layout moved?"
    assert violations(paths, BACKENDS_FORBIDDEN) == {}


def test_sdk_imports_only_the_sdk_and_errors_from_eventgateway():
    offending = {
        relative(path): sorted(
            module
            for module in imported_modules(path)
            if matches(module, ("eventgateway",)) and not matches(module, SDK_ALLOWED)
        )
        for path in under("sdk")
    }

    assert {path: modules for path, modules in offending.items() if modules} == {}


@pytest.mark.parametrize("module", ["errors.py", "names.py"])
def test_the_modules_the_sdk_may_import_import_nothing_from_eventgateway(module):
    # The SDK may import errors.py and names.py, so they must stand alone.
    imports = imported_modules(PACKAGE / module)

    assert sorted(m for m in imports if matches(m, ("eventgateway",))) == []


# -- (3) public exports ----------------------------------------------------------------------


# The public modules (STYLE.md habit 6) that exist so far.
PUBLIC = [
    name
    for name in ("eventgateway", "eventgateway.sdk", "eventgateway.testing")
    if importlib.util.find_spec(name) is not None
]


@pytest.mark.parametrize("name", PUBLIC)
def test_all_lists_only_names_that_exist_once(name: str):
    module = importlib.import_module(name)
    exported = list(getattr(module, "__all__", []))

    missing = [item for item in exported if not hasattr(module, item)]

    assert missing == [], f"{name}.__all__ names what {name} does not define"
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
