"""How deeply a JSON text nests, checked before any decoder sees it.

msgspec and the standard library decode nested arrays and objects recursively and stop at
the interpreter's recursion limit, so the depth they accept depends on how deep the call
stack already is, and a value accepted by the Events API could fail to decode again in the
dispatcher, which sits deeper. An explicit limit, far below the recursion limit, makes the
answer the same everywhere and lets the 400 name the limit.

The scan never decodes: brackets inside strings are skipped, everything else is ignored,
so invalid JSON is measured as far as it goes and left to the decoder to refuse.
"""

from __future__ import annotations

import itertools
import operator
import re

__all__ = ["DEFAULT_MAX_JSON_DEPTH", "MAX_JSON_DEPTH_CEILING", "json_depth_exceeds"]

DEFAULT_MAX_JSON_DEPTH = 64
"""Levels of arrays and objects a JSON body may nest (System.Text.Json's default too)."""

MAX_JSON_DEPTH_CEILING = 500
"""The largest limit that may be configured: deeper values would reach the interpreter's
recursion limit (1,000 frames) in the decoders before the limit could refuse them."""

# A JSON string, escapes included, in the unrolled form the regex engine runs in linear time.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# An opening bracket becomes 2 and a closing one 0, so that after i brackets the running
# sum minus i is the depth: all in C iterators, no Python-level step per byte.
_WEIGHTS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def json_depth_exceeds(text: bytes, max_depth: int) -> bool:
    """Tell whether ``text`` nests arrays and objects more than ``max_depth`` levels deep.

    ``[]`` and ``{}`` are one level, ``[{"a": []}]`` three; scalars are level zero.

    Args:
        text: JSON text (invalid JSON is measured as far as its brackets go).
        max_depth: the deepest nesting allowed, at least 0.
    """
    # Fast path for nearly every body: fewer opening brackets than the limit, even
    # counting those inside strings, cannot nest deeper than it.
    if text.count(b"[") + text.count(b"{") <= max_depth:
        return False
    brackets = _STRING.sub(b"", text).translate(_WEIGHTS, _NOT_BRACKETS)
    depths = map(operator.sub, itertools.accumulate(brackets), itertools.count(1))
    return any(map(max_depth.__lt__, depths))
