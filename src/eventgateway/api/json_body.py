"""JSON request bodies of the spaces and keys routes, decoded with msgspec.

The original's resources (event types, functions, subscriptions, CORS) are decoded as Go
did (:mod:`eventgateway.model.gojson`); the routes eventgateway added use msgspec. Both
read a lone UTF-16 surrogate escape (``"\\ud800"``) as U+FFFD, as Go's decoder did:
msgspec would otherwise refuse it as "truncated" input.

msgspec's own texts ("Input data was truncated", "JSON is malformed: …") say little to
someone who sent a body; :func:`json_problem` words them for people.
"""

from __future__ import annotations

from typing import Any

import msgspec

from eventgateway.model.gojson import plain_syntax_message, replace_lone_surrogates

__all__ = ["decode_json", "json_problem"]


def json_problem(exc: msgspec.MsgspecError | RecursionError) -> str:
    """What is wrong with a body msgspec refused, in plain words, after "The request body".

    ``is not valid JSON: …`` for syntax; ``is not valid: `` and msgspec's text, which names
    the field (``Expected `str`, got `int` - at `$.name```), for JSON of the wrong shape.
    """
    if isinstance(exc, RecursionError):
        return "is not valid JSON: it is nested too deeply"
    if isinstance(exc, msgspec.ValidationError):
        return f"is not valid: {exc}"
    return f"is not valid JSON: {plain_syntax_message(str(exc))}"


def decode_json(raw: bytes, kind: Any = Any) -> Any:
    """``raw`` decoded as ``kind`` (a msgspec type; any JSON value by default).

    Raises:
        msgspec.DecodeError, msgspec.ValidationError, RecursionError: as msgspec does; the
            caller words them with :func:`json_problem` and its own subject.
    """
    return msgspec.json.decode(replace_lone_surrogates(raw), type=kind)
