"""Content filters of async subscriptions: EventBridge-style event patterns (pure).

A subscription's ``filter`` is a JSON object matched against the event as its function
would receive it. It is validated when the subscription is written (the Configuration
API, ``eg deploy``) and compiled once per routing-table build into an
:class:`EventFilter`; matching an event never parses or compiles anything.

Pattern semantics (docs/filters.md has the full subset):

* an object's keys must all match (AND); a key's value is either a nested object, which
  descends into the event's object at that key, or a list of allowed values and
  operators, any one of which may match (OR; see :mod:`eventgateway.routing.filter_leaf`);
* ``"$or": [pattern, …]`` beside other keys: at least one of the patterns must match too;
* an array in the event matches when any of its elements matches;
* a path that does not resolve (missing key, or not an object) is a missing field, which
  only ``{"exists": false}`` matches.

Top-level keys are CloudEvents 1.0 attribute names for 0.1 events too (``type``, ``id``,
``source``, ``subject``, ``time``, ``datacontenttype``, ``dataschema``,
``specversion``), extension attributes by name (a 0.1 event's ``extensions`` members
count as extension attributes, and ``extensions`` is also the whole 0.1 object), and
``data``: the decoded JSON data (binary data is missing). The 0.1 spellings (``eventType``,
``eventID``…) are refused with the 1.0 name to use, so one pattern serves both versions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from eventgateway.events.model import CloudEvent
from eventgateway.routing.filter_budget import (
    FilterWorkExceeded,
    WorkBudget,
    charge,
    enter,
    leave,
)
from eventgateway.routing.filter_leaf import ValueMatcher, compile_leaf
from eventgateway.routing.filter_values import MISSING, FilterError, json_kind

__all__ = [
    "MAX_DEPTH",
    "MAX_JSON_BYTES",
    "MAX_VALUES",
    "EventFilter",
    "EventView",
    "FilterError",
    "compile_filter",
]

MAX_DEPTH: Final = 10
"""The most levels of objects a pattern may nest (the filter itself is level 1)."""
MAX_VALUES: Final = 100
"""The most values and operators a pattern may hold, over all its lists."""
MAX_JSON_BYTES: Final = 64 * 1024
"""The largest a pattern may be, as compact JSON."""

_V01_NAMES: Final = {
    "eventType": "type",
    "eventID": "id",
    "eventTime": "time",
    "contentType": "datacontenttype",
    "schemaURL": "dataschema",
    "cloudEventsVersion": "specversion",
}
_EMPTY: Final[dict[str, Any]] = {}
_UNDECODED: Final = object()
_LENIENT: Final = msgspec.json.Decoder(float_hook=float)


class EventView:
    """One event as filters see it; ``data`` is decoded at most once, when first asked for.

    Build one per event and pass it to every filter of that event's subscriptions.
    """

    __slots__ = ("_data", "budget", "event")

    def __init__(self, event: CloudEvent) -> None:
        self.event = event
        self._data: Any = _UNDECODED
        self.budget = WorkBudget()  # shared by the event's filters (filter_budget.py)

    def data(self) -> Any:
        """The event's data as JSON values, or :data:`MISSING` (none, or binary)."""
        if self._data is _UNDECODED:
            self._data = _decode_data(self.event.data)
        return self._data


def _decode_data(data: Any) -> Any:
    if data is None or isinstance(data, bytes):
        return MISSING
    if isinstance(data, msgspec.Raw):
        try:
            return msgspec.json.decode(data)
        except msgspec.ValidationError:
            # A number out of a float's range (1e400) somewhere in data, which is accepted
            # and delivered as sent: read it as infinity rather than hide all of data.
            return _lenient(data)
        except (msgspec.MsgspecError, ValueError, RecursionError):
            return MISSING  # validated JSON never gets here
    return data


def _lenient(data: msgspec.Raw) -> Any:
    try:
        return _LENIENT.decode(data)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return MISSING


def _optional(name: str) -> Callable[[EventView], Any]:
    read = operator.attrgetter(name)

    def get(view: EventView) -> Any:
        value = read(view.event)
        return MISSING if value is None else value

    return get


def _extension(name: str) -> Callable[[EventView], Any]:
    def get(view: EventView) -> Any:
        return view.event.extensions.get(name, MISSING)

    return get


def _extensions_object(view: EventView) -> Any:
    event = view.event
    if event.specversion == "0.1":
        return event.extensions or MISSING
    return event.extensions.get("extensions", MISSING)


# One plain function per attribute: the getter is the first call of every key's check.
_ATTRIBUTES: Final[dict[str, Callable[[EventView], Any]]] = {
    "specversion": lambda view: view.event.specversion,
    "id": lambda view: view.event.id,
    "source": lambda view: view.event.source,
    "type": lambda view: view.event.type,
    **{name: _optional(name) for name in ("time", "datacontenttype", "dataschema", "subject")},
    "data": EventView.data,
    "extensions": _extensions_object,
}


class _Object:
    """A compiled pattern object: every field matches, and one ``$or`` member if any."""

    __slots__ = ("fields", "ors")

    def __init__(
        self,
        fields: tuple[tuple[Callable[[Any], Any], ValueMatcher], ...],
        ors: tuple[_Object, ...],
    ) -> None:
        self.fields = fields
        self.ors = ors

    def match(self, container: Any) -> bool:
        for get, matches in self.fields:
            if not matches(get(container)):
                return False
        return not self.ors or any(member.match(container) for member in self.ors)

    def match_value(self, value: Any) -> bool:
        """Match the event value at this pattern's key (nested: the value is a container)."""
        if isinstance(value, dict):
            return self.match(value)
        if isinstance(value, list) and value:
            charge(len(value))
            return any(self.match_value(item) for item in value)
        return self.match(_EMPTY)  # nothing below resolves: every field is missing


class EventFilter:
    """A compiled subscription filter; build it with :func:`compile_filter`.

    Attributes:
        reads_data: whether matching may look at the event's ``data``.
    """

    __slots__ = ("_root", "reads_data")

    def __init__(self, root: _Object, reads_data: bool) -> None:
        self._root = root
        self.reads_data = reads_data

    def matches(self, view: EventView) -> bool:
        """Whether the event behind ``view`` passes the filter; ``False`` too when the
        event's filters ran out of their work budget (``view.budget.exceeded``)."""
        previous = enter(view.budget)
        try:
            return self._root.match(view)
        except FilterWorkExceeded:
            return False
        finally:
            leave(previous)

    def matches_event(self, event: CloudEvent) -> bool:
        """:meth:`matches` for one event alone (several filters should share a view)."""
        return self.matches(EventView(event))


class _Compiler:
    def __init__(self) -> None:
        self.values = 0
        self.reads_data = False

    def compile_object(self, pattern: Any, where: str, depth: int, top: bool) -> _Object:
        if not isinstance(pattern, Mapping):
            raise FilterError(f"{where} must be an object, got {json_kind(pattern)}")
        if depth > MAX_DEPTH:
            raise FilterError(f"{where}: patterns nest at most {MAX_DEPTH} objects deep")
        if not pattern:
            hint = "leave filter out to receive every event" if top else "remove the key"
            raise FilterError(f"{where} is empty; give it at least one field ({hint})")
        fields: list[tuple[Callable[[Any], Any], ValueMatcher]] = []
        ors: tuple[_Object, ...] = ()
        for key, value in pattern.items():
            if not isinstance(key, str):
                raise FilterError(f"{where} has a key {key!r}; keys are strings")
            if not key and top:
                raise FilterError(
                    f"{where} has an empty key; top-level keys name event attributes "
                    "(type, source, data…), and no attribute's name is empty"
                )
            # Below the top level keys are the event's own: "" is a JSON member name too.
            at = f"{where}.{key}" if key else f'{where}[""]'
            if key == "$or":
                ors = self._or(value, at, depth, top)
                continue
            if key.startswith("$"):
                raise FilterError(f'{at}: unknown key; the only $-key is "$or"')
            fields.append((self._getter(key, at, top), self._field(value, at, depth, top)))
        return _Object(tuple(fields), ors)

    def _getter(self, key: str, at: str, top: bool) -> Callable[[Any], Any]:
        if not top:
            return operator.methodcaller("get", key, MISSING)
        if key in _V01_NAMES:
            raise FilterError(
                f'{at}: filters use CloudEvents 1.0 names for 0.1 events too; write "'
                f'{_V01_NAMES[key]}"'
            )
        if key == "eventTypeVersion":
            raise FilterError(f"{at}: the 0.1 attribute eventTypeVersion cannot be filtered on")
        if key == "data":
            self.reads_data = True
        return _ATTRIBUTES.get(key) or _extension(key)

    def _field(self, value: Any, at: str, depth: int, top: bool) -> ValueMatcher:
        if isinstance(value, list):
            leaf, count = compile_leaf(value, at)
            self.values += count
            if self.values > MAX_VALUES:
                raise FilterError(f"{at}: a filter holds at most {MAX_VALUES} values in all")
            return leaf
        if isinstance(value, Mapping):
            return self.compile_object(value, at, depth + 1, top=False).match_value
        raise FilterError(
            f"{at} must be a list of values (e.g. [{_example(value)}]) or an object, "
            f"got {json_kind(value)}"
        )

    def _or(self, value: Any, at: str, depth: int, top: bool) -> tuple[_Object, ...]:
        if not isinstance(value, list) or not value:
            raise FilterError(f"{at} must be a non-empty list of patterns")
        return tuple(
            self.compile_object(member, f"{at}[{index}]", depth + 1, top)
            for index, member in enumerate(value)
        )


def _example(value: Any) -> str:
    try:
        return msgspec.json.encode(value).decode()[:40]
    except (TypeError, msgspec.EncodeError):
        return '"…"'


def compile_filter(pattern: Any, *, field: str = "filter") -> EventFilter:
    """Validate and compile a subscription filter.

    Args:
        pattern: the decoded JSON object.
        field: how messages name the pattern (``filter``).

    Returns:
        The compiled filter.

    Raises:
        FilterError: the first problem, naming its path (``filter.data.plan: "numeric"
            needs operator/number pairs…``), or a limit passed: :data:`MAX_DEPTH` levels,
            :data:`MAX_VALUES` values, :data:`MAX_JSON_BYTES` bytes.
    """
    try:
        size = len(msgspec.json.encode(pattern))
    except (TypeError, ValueError, msgspec.EncodeError, RecursionError, OverflowError):
        size = 0  # not JSON: compiling names the bad value
    if size > MAX_JSON_BYTES:
        raise FilterError(f"{field} is {size} bytes as JSON; the limit is {MAX_JSON_BYTES} bytes")
    compiler = _Compiler()
    root = compiler.compile_object(pattern, field, 1, top=True)
    return EventFilter(root, compiler.reads_data)
