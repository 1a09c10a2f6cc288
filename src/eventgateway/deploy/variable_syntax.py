"""The syntax of Serverless variables: where ``${…}`` starts and ends, and its fallbacks.

Pure text work for :mod:`eventgateway.deploy.variables`: quotes and nested ``${…}`` are
respected, so ``${opt:stage, ${env:S, 'a,b'}}`` splits where a reader expects.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Variable", "alternatives", "closing", "pieces"]


@dataclass(frozen=True, slots=True)
class Variable:
    body: str  # the text between ``${`` and the matching ``}``


def closing(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` whose body starts at ``start``; -1 if none."""
    depth, quote, index = 1, "", start
    while index < len(text):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif text.startswith("${", index):
            depth += 1
            index += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return -1


def pieces(text: str) -> list[str | Variable]:
    """``text`` cut into literal parts and ``${…}`` variables (outermost ones only).

    Raises:
        ValueError: a ``${`` is never closed.
    """
    pieces: list[str | Variable] = []
    position = 0
    while (start := text.find("${", position)) != -1:
        end = closing(text, start + 2)
        if end == -1:
            raise ValueError(
                f"{text!r} opens a variable with '${{' that is never closed; add the '}}'"
            )
        body = text[start + 2 : end]
        if ":" in body or body.strip().startswith("file("):
            pieces.extend((text[position:start], Variable(body)))
        else:  # ${Name} without a source is CloudFormation's, not ours
            pieces.append(text[position : end + 1])
        position = end + 1
    pieces.append(text[position:])
    return [piece for piece in pieces if piece != ""]


def alternatives(body: str) -> list[str]:
    """``opt:stage, ${env:S, 'a,b'}`` → ``["opt:stage", "${env:S, 'a,b'}"]``."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for index, char in enumerate(body):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif body.startswith("${", index):
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == "," and not depth:
            parts.append(body[start:index].strip())
            start = index + 1
    parts.append(body[start:].strip())
    return parts
