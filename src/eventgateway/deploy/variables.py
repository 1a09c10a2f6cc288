"""Serverless Framework variables in a loaded ``serverless.yml`` (pure: reads nothing itself).

Supported sources, as the Serverless Framework (v3) spells them:

* ``${env:NAME}``: an environment variable;
* ``${opt:NAME}``: a command-line option (``${opt:stage}`` is the ``--stage`` given);
* ``${sls:stage}``: the stage the deploy uses (``--stage``, else ``provider.stage``, else ``dev``);
* ``${self:a.b.c}``: another value of the same file, itself resolved (list items by index);
* ``${file(./x.yml):a.b}``: a value of another file, when the caller passes ``read_file``.

Each variable may list fallbacks after commas, tried in order: a quoted string
(``'dev'`` or ``"dev"``), a number, ``true``/``false``, another variable
(``${opt:stage, ${env:STAGE, 'dev'}}``) or a bare reference (``${opt:stage, env:STAGE}``).
A variable that is the whole value keeps the type of what it refers to (a mapping from
``${self:custom.shared}``, an int); variables inside a longer string are interpolated.

A whole-value variable whose last choice is an unset ``${env:…}`` resolves to ``None``, so
``apiKey: ${env:EG_API_KEY}`` means "no key" when the variable is unset; in a longer
string the same is an error. ``${AWS::Region}``-style text without a known source in
sections eg ignores (``resources``) is left as it is, through ``skip``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from eventgateway.deploy.model import DEFAULT_STAGE
from eventgateway.deploy.variable_syntax import Variable, alternatives, closing, pieces
from eventgateway.errors import ConfigError

__all__ = [
    "KeyPath",
    "VariableError",
    "VariableSources",
    "effective_stage",
    "format_path",
    "resolve_variables",
]

KeyPath = tuple[str | int, ...]
"""Where a value sits in the document: mapping keys as strings, list positions as ints."""

_SUPPORTED: Final = "env:, opt:, sls:stage, self: and file()"
_SIMPLE_KEY: Final = re.compile(r"[A-Za-z0-9_$-]+")
_REFERENCE: Final = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)(?:\((.*)\))?(?::(.*))?", re.DOTALL)
_NUMBER: Final = re.compile(r"-?\d+(\.\d+)?")


class VariableError(ConfigError):
    """Raised when a variable cannot be resolved; ``path`` says which value holds it."""

    def __init__(self, path: KeyPath, detail: str) -> None:
        super().__init__(f"{format_path(path)}: {detail}")
        self.path = path
        self.detail = detail


@dataclass(frozen=True, slots=True)
class VariableSources:
    """Where variables get their values.

    ``stage`` is the ``--stage`` given (it wins over ``options["stage"]``); ``read_file``
    reads ``${file(NAME)}`` (``NAME`` as written) and returns its parsed content, raising
    ``FileNotFoundError`` when it does not exist (the fallback then applies) or any other
    exception whose text says what is wrong; without it ``file()`` is refused.
    """

    environ: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    stage: str | None = None
    read_file: Callable[[str], Any] | None = None


def format_path(path: KeyPath) -> str:
    """``("functions", "a", "events", 0)`` → ``functions.a.events[0]``.

    Keys that are not plain words are quoted: ``custom.eventTypes["user.created"]``.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text or "(document)"


def effective_stage(stage: str | None, options: Mapping[str, str], provider_stage: Any) -> str:
    """The stage a deploy uses: ``stage`` > ``options["stage"]`` > ``provider.stage`` > dev."""
    for candidate in (stage, options.get("stage"), provider_stage):
        if candidate is not None and candidate != "":
            return str(candidate)
    return DEFAULT_STAGE


def resolve_variables(
    document: Any, sources: VariableSources, *, skip: Callable[[KeyPath], bool] | None = None
) -> Any:
    """A copy of ``document`` (plain YAML data) with every variable resolved.

    Args:
        document: the loaded ``serverless.yml``.
        sources: environment, options, stage and the ``file()`` reader.
        skip: says which key paths to copy as they are (sections eg ignores); a
            ``${self:…}`` pointing into one still resolves what it points to.

    Raises:
        VariableError: naming the value's key path, the variable and the fix.
    """
    return _Resolver(document, sources, skip).node(document, (), skipping=True)


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING


@dataclass(slots=True)
class _Outcome:
    """What one variable (with its fallbacks) came to."""

    value: Any = _MISSING
    reasons: list[str] = field(default_factory=list)
    # Whether an unresolved whole value may become None (last choice an unset env var).
    nullable: bool = False


def _split(text: str, path: KeyPath) -> list[str | Variable]:
    try:
        return pieces(text)
    except ValueError as exc:
        raise VariableError(path, str(exc)) from exc


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Resolver:
    def __init__(
        self, document: Any, sources: VariableSources, skip: Callable[[KeyPath], bool] | None
    ) -> None:
        self._document = document
        self._sources = sources
        self._skip = skip
        self._done: dict[KeyPath, Any] = {}
        self._active: list[KeyPath] = []
        self._files: list[str] = []

    def node(self, value: Any, path: KeyPath, *, track: bool = True, skipping: bool = False) -> Any:
        if skipping and self._skip is not None and self._skip(path):
            return value
        if isinstance(value, dict):
            for k in value:
                if isinstance(k, str) and "${" in k:
                    raise VariableError(
                        (*path, k),
                        "variables are not resolved in keys, only in values: write the key "
                        "out (as the Serverless Framework requires too)",
                    )
            return {
                k: self.node(v, (*path, str(k)), track=track, skipping=skipping)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [
                self.node(item, (*path, i), track=track, skipping=skipping)
                for i, item in enumerate(value)
            ]
        if isinstance(value, str) and "${" in value:
            return self._string(value, path) if track else self._interpolate(value, path)
        return value

    def _string(self, text: str, path: KeyPath) -> Any:
        if path in self._done:
            return self._done[path]
        if path in self._active:
            loop = [*self._active[self._active.index(path) :], path]
            raise VariableError(
                path,
                "variables refer to each other in a loop: "
                + " → ".join(format_path(step) for step in loop)
                + "; make one of them a plain value",
            )
        self._active.append(path)
        try:
            result = self._interpolate(text, path)
        finally:
            self._active.pop()
        self._done[path] = result
        return result

    def _interpolate(self, text: str, path: KeyPath) -> Any:
        pieces = _split(text, path)
        if len(pieces) == 1 and isinstance(pieces[0], Variable):
            outcome = self._evaluate(pieces[0].body, path)
            if outcome.value is _MISSING:
                if outcome.nullable:
                    return None
                raise self._unresolved(pieces[0].body, path, outcome)
            return outcome.value
        parts: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                parts.append(piece)
                continue
            outcome = self._evaluate(piece.body, path)
            if outcome.value is _MISSING:
                raise self._unresolved(piece.body, path, outcome, inside=text)
            if isinstance(outcome.value, dict | list):
                kind = "a mapping" if isinstance(outcome.value, dict) else "a list"
                raise VariableError(
                    path,
                    f"${{{piece.body}}} is {kind} and cannot be part of the text {text!r}; "
                    "make the variable the whole value",
                )
            parts.append(_as_text(outcome.value))
        return "".join(parts)

    def _unresolved(
        self, body: str, path: KeyPath, outcome: _Outcome, *, inside: str | None = None
    ) -> VariableError:
        reasons = "; ".join(outcome.reasons)
        where = f" (in {inside!r})" if inside is not None else ""
        return VariableError(
            path,
            f"${{{body}}}{where} has no value: {reasons}; set it, or add a default "
            f"such as ${{{alternatives(body)[0]}, 'value'}}",
        )

    def _evaluate(self, body: str, path: KeyPath) -> _Outcome:
        outcome = _Outcome()
        choices = alternatives(body)
        if not all(choices):
            raise VariableError(path, f"${{{body}}} has an empty choice; remove the comma")
        for choice in choices:
            value, outcome.nullable = self._choice(choice, path, outcome.reasons)
            if value is not _MISSING and value is not None:
                outcome.value = value
                return outcome
        return outcome

    def _choice(self, choice: str, path: KeyPath, reasons: list[str]) -> tuple[Any, bool]:
        """The value of one choice (or _MISSING, with a reason added) and whether it is nullable."""
        if len(choice) >= 2 and choice[0] == choice[-1] and choice[0] in "'\"":
            return choice[1:-1], False
        if _NUMBER.fullmatch(choice):
            return (float(choice) if "." in choice else int(choice)), False
        if choice in ("true", "false"):
            return choice == "true", False
        if choice.startswith("${") and closing(choice, 2) == len(choice) - 1:
            nested = self._evaluate(choice[2:-1], path)
            reasons.extend(nested.reasons)
            return nested.value, nested.nullable
        reference = self._interpolate(choice, path) if "${" in choice else choice
        match = _REFERENCE.fullmatch(str(reference))
        if match is None:
            raise VariableError(
                path,
                f"${{{choice}}} is not a variable eg understands; "
                f"write ${{source:name}} with a source of {_SUPPORTED}",
            )
        source, argument, address = match.group(1), match.group(2), (match.group(3) or "").strip()
        if source == "file" and argument is not None:
            return self._file(argument.strip(), address, path, reasons), False
        if argument is None and match.group(3) is None:
            raise VariableError(
                path,
                f"{choice!r} in ${{…}} is neither a variable nor a quoted default; "
                f"quote a literal default ('{choice}') or write source:name",
            )
        if argument is not None:
            return self._unsupported(source, choice, path)
        if source == "env":
            value = self._sources.environ.get(address)
            if value is None:
                reasons.append(f"environment variable {address} is not set")
                return _MISSING, True
            return value, False
        if source == "opt":
            return self._option(address, reasons), False
        if source == "sls" and address == "stage":
            return self._stage(), False
        if source == "self":
            return self._self(address, reasons)
        return self._unsupported(source, choice, path)

    def _unsupported(self, source: str, choice: str, path: KeyPath) -> tuple[Any, bool]:
        raise VariableError(
            path,
            f"${{{choice}}}: the {source!r} variable source is not supported by eg "
            f"(only {_SUPPORTED}); put the value in an environment variable and use "
            "${env:NAME}, or write it in the file",
        )

    def _option(self, name: str, reasons: list[str]) -> Any:
        if name == "stage" and self._sources.stage:
            return self._sources.stage
        value = self._sources.options.get(name)
        if value is None:
            reasons.append(f"option --{name} was not given")
            return _MISSING
        return value

    def _stage(self) -> str:
        provider = self._document.get("provider") if isinstance(self._document, dict) else None
        declared = None
        if isinstance(provider, dict) and provider.get("stage") is not None:
            declared = self._self("provider.stage", [])[0]
        if isinstance(declared, _Missing):
            declared = None
        return effective_stage(self._sources.stage, self._sources.options, declared)

    def _self(self, address: str, reasons: list[str]) -> tuple[Any, bool]:
        found = self._walk(self._document, address, (), reasons, settled=False)
        if found is _MISSING:
            return _MISSING, False
        if found is None:
            reasons.append(f"{address or '(document)'} is empty (null)")
            return _MISSING, True
        return found, False

    def _walk(
        self, node: Any, address: str, at: KeyPath, reasons: list[str], *, settled: bool
    ) -> Any:
        """The value at dotted ``address`` below ``node`` (at key path ``at``), resolved."""
        for part in address.split(".") if address else []:
            if not settled and isinstance(node, str) and "${" in node:
                node, settled = self._string(node, at), True
            if isinstance(node, dict):
                key = next((k for k in node if str(k) == part), _MISSING)
                if key is _MISSING:
                    reasons.append(f"{format_path((*at, part))} is not in the file")
                    return _MISSING
                node, at = node[key], (*at, part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node, at = node[int(part)], (*at, int(part))
            else:
                reasons.append(f"{format_path((*at, part))} is not in the file")
                return _MISSING
        return node if settled else self.node(node, at)

    def _file(self, name: str, address: str, path: KeyPath, reasons: list[str]) -> Any:
        reader = self._sources.read_file
        if reader is None:
            raise VariableError(path, f"${{file({name})}} is not supported here")
        if name in self._files:
            raise VariableError(path, f"file({name}) refers to itself through its variables")
        try:
            content = reader(name)
        except FileNotFoundError:
            reasons.append(f"file {name} does not exist")
            return _MISSING
        except Exception as exc:
            raise VariableError(path, f"${{file({name})}}: {exc}") from exc
        self._files.append(name)
        try:
            resolved = self.node(content, path, track=False)
        finally:
            self._files.pop()
        found = self._walk(resolved, address.strip(), (), [], settled=True)
        if found is _MISSING or found is None:
            reasons.append(f"file {name} has no value at {address!r}")
            return _MISSING
        return found
