"""The ``rest`` path convertor: the rest of a path, newlines included.

Starlette's ``path`` convertor is ``.*``, which stops at a newline. An id holding one (an
event type named ``"x\\ny"``, accepted as the original accepted it, or an event id) could
be created, but its item route answered 404: nobody could read, change or delete it, and
in auth mode its space could never be deleted. Importing this module registers it.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

__all__ = ["RestConvertor"]


class RestConvertor(Convertor[str]):
    """Any characters, ``/`` and line breaks included."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("rest", RestConvertor())
