"""Does the bundle hold each runtime function's handler module? Checked at deploy.

Without this, a typo in ``handler:`` (or a file ``package.patterns`` left out) deployed
fine and failed only when the function ran (``Runtime.ImportModuleError``). The files
looked for are those the workers load: Python imports ``a/b.py`` or the package
``a/b/__init__.py`` (or an extension module ``a/b.*.so``) for ``a/b.main``; Node.js
``index.js``, ``.cjs`` or ``.mjs`` for ``index.handler``. A module from the function's
installed dependencies is not seen here, so this only warns.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from eventgateway.deploy.model import FunctionSpec

__all__ = ["missing_handlers"]


def missing_handlers(functions: Sequence[FunctionSpec], files: Collection[str]) -> list[str]:
    """One warning per runtime function whose handler module is none of ``files``."""
    present = set(files)
    warnings: list[str] = []
    for function in functions:
        if not function.needs_bundle:
            continue
        handler = str(function.provider.get("handler", ""))
        module, dot, _ = handler.rpartition(".")
        if not dot or not module:
            continue  # a malformed handler is refused with its own message
        wanted = _candidates(function.type, module)
        if present.isdisjoint(wanted) and not _extension(function.type, module, present):
            warnings.append(
                f"function {function.key}: its handler {handler!r} needs {wanted[0]}, which "
                "is not in the bundle (a typo in handler:, or a file package.patterns "
                "leaves out?); calls will fail with Runtime.ImportModuleError"
            )
    return warnings


def _candidates(language: str, module: str) -> list[str]:
    if language == "nodejs":
        return [f"{module}{suffix}" for suffix in (".js", ".cjs", ".mjs")]
    path = module.replace(".", "/")  # handler: pkg.mod.main imports pkg/mod.py
    return [f"{path}.py", f"{path}/__init__.py"]


def _extension(language: str, module: str, present: set[str]) -> bool:
    if language == "nodejs":
        return False
    prefix = module.replace(".", "/") + "."
    return any(name.startswith(prefix) and name.endswith(".so") for name in present)
