"""A ``serverless.yml`` as data plus the line of every key, and messages that point into it.

Reading is the only I/O: the file itself and, for ``${file(…)}``, files next to it.
Messages are shaped ``serverless.yml:12: functions.addUserToCRM.handler: <what, fix>``.
"""

from __future__ import annotations

import difflib
import pathlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from eventgateway.deploy.variables import KeyPath, format_path
from eventgateway.errors import ConfigError

__all__ = ["SERVICE_FILES", "Source", "file_reader", "read_source"]

SERVICE_FILES: Final = ("serverless.yml", "serverless.yaml")
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_MAX_DEPTH: Final = 64  # recursive YAML aliases must not loop forever


class _Loader(yaml.SafeLoader):
    """SafeLoader that also accepts CloudFormation's short tags (``!Ref``, ``!GetAtt``…)."""


def _cloudformation(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    # Only `resources:` uses these, which eg ignores: keep them as their long form.
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _cloudformation)


@dataclass(slots=True)
class Source:
    """The file's name as given and its key lines; collects warnings, builds errors."""

    name: str
    lines: Mapping[KeyPath, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def line(self, path: KeyPath) -> int:
        """The line of ``path``, or of its nearest ancestor the file spells out."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def message(self, path: KeyPath, detail: str) -> str:
        """``<file>:<line>: <key path>: <detail>``."""
        return f"{self.name}:{self.line(path)}: {format_path(path)}: {detail}"

    def error(self, path: KeyPath, detail: str) -> ConfigError:
        """A :class:`ConfigError` pointing at ``path``, for the caller to raise."""
        return ConfigError(self.message(path, detail))

    def warn(self, path: KeyPath, detail: str) -> None:
        """Record a warning pointing at ``path``."""
        self.warnings.append(self.message(path, detail))

    def check_keys(self, mapping: Mapping[Any, Any], path: KeyPath, known: Collection[str]) -> None:
        """Warn once per key of ``mapping`` not in ``known``, suggesting the closest one."""
        for key in mapping:
            if str(key) in known:
                continue
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.warn((*path, str(key)), f"unknown key, ignored{hint}")

    def mapping(self, value: Any, path: KeyPath) -> dict[str, Any]:
        """``value`` as a mapping with string keys (``None`` is empty)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"must be a mapping of keys to values, got {_show(value)}")
        return {str(key): item for key, item in value.items()}

    def text(self, value: Any, path: KeyPath, *, required: bool = False) -> str | None:
        """``value`` as a non-empty string (numbers are written out); ``None`` if absent."""
        if value is None or value == "":
            if required:
                raise self.error(path, "is required and missing")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(path, f"must be a string, got {_show(value)}")
        return str(value)

    def integer(self, value: Any, path: KeyPath, low: int, high: int, unit: str) -> int:
        """``value`` as a whole number from ``low`` to ``high`` (numeric strings accepted)."""
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isdigit():
            number = int(value)
        if number is None or not low <= number <= high:
            raise self.error(
                path, f"must be a whole number of {unit} from {low} to {high}, got {_show(value)}"
            )
        return number

    def strings(self, value: Any, path: KeyPath) -> tuple[str, ...]:
        """``value`` as a list of strings (a single string is a list of one)."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise self.error(path, f"must be a list of strings, got {_show(value)}")
        return tuple(items)


def _show(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _missing(path: pathlib.Path) -> ConfigError:
    directory = path.parent.resolve()
    hint = ""
    if (directory / "serverless.json").is_file():
        hint = " (serverless.json is there: pass --config serverless.json)"
    elif (directory / "serverless.ts").is_file() or (directory / "serverless.js").is_file():
        hint = " (a serverless.js/.ts is there, but eg reads only YAML or JSON)"
    return ConfigError(
        f"no {path.name} in {directory}{hint}; "
        "run eg deploy in a service directory or pass --config"
    )


def _check_duplicates(root: yaml.Node, name: str) -> None:
    # js-yaml, which the Serverless Framework uses, refuses duplicate keys; PyYAML would
    # silently keep the last one (two `functions:` blocks lose the first).
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            continue
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        raise ConfigError(
                            f"{name}:{line}: key {key.value!r} appears twice (also on line "
                            f"{seen[key.value]}); YAML would keep only the last: merge them"
                        )
                    seen[key.value] = line
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def _key_lines(root: yaml.Node) -> dict[KeyPath, int]:
    lines: dict[KeyPath, int] = {(): 1}
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > _MAX_DEPTH:
            continue
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    child: KeyPath = (*path, str(key.value))
                    lines.setdefault(child, key.start_mark.line + 1)
                    stack.append((value, child))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines.setdefault((*path, index), item.start_mark.line + 1)
                stack.append((item, (*path, index)))
    return lines


def _parse(text: str, name: str) -> tuple[Any, dict[KeyPath, int]]:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, {}
        _check_duplicates(root, name)
        # Constructing flattens `<<:` merges into the nodes, so lines are read after it.
        data = loader.construct_document(root)
        return data, _key_lines(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}" if mark is not None else "1"
        problem = " ".join(filter(None, (exc.context, exc.problem)))
        raise ConfigError(f"{name}:{line}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def read_source(path: pathlib.Path) -> tuple[Any, Source]:
    """The data of the YAML file ``path`` (or of the service file in directory ``path``).

    Raises:
        ConfigError: the file is missing, unreadable or not valid YAML (with its line).
    """
    if path.is_dir():
        path = next(
            (path / name for name in SERVICE_FILES if (path / name).is_file()),
            path / SERVICE_FILES[0],
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise _missing(path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    data, lines = _parse(text, str(path))
    return data, Source(str(path), lines)


def file_reader(directory: pathlib.Path) -> Callable[[str], Any]:
    """A reader for ``${file(./x.yml)}``: YAML or JSON files relative to ``directory``."""

    def read(name: str) -> Any:
        target = directory / name
        if target.suffix.lower() not in (".yml", ".yaml", ".json"):
            raise ValueError("eg reads only .yml, .yaml and .json files; convert it to YAML")
        try:
            text = target.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {target}: {exc}") from exc
        data, _ = _parse(text, str(target))
        return data

    return read
