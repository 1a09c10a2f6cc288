"""Which deployed function a name given to `eg invoke` or `eg logs` means.

Serverless users name a function by its key under ``functions:`` (``sls invoke -f
addUserToCRM``); the gateway knows it by its functionId, which is the key unless the
function sets ``name:`` (``name: crm-add-user``). Inside a service directory a key is
taken to mean the function it declares, deployed under the id ``eg deploy`` gives it; a
name that is neither a key nor an id of the service is sent as it is, and if the gateway
knows no such function the error says what the service declares.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from eventgateway.errors import ConfigError

if TYPE_CHECKING:
    from eventgateway.deploy.model import FunctionSpec

__all__ = ["FunctionName", "function_named"]


@dataclass(frozen=True, slots=True)
class FunctionName:
    """A function as named on the command line, and the functionId it stands for."""

    given: str
    function_id: str
    declared: tuple[FunctionSpec, ...] = ()  # the service's functions (none: no service)

    @contextlib.contextmanager
    def explained(self, space: str) -> Iterator[None]:
        """Turn the gateway's 404 for :attr:`function_id` into :meth:`not_found`'s error."""
        from eventgateway.sdk._wire import GatewayError

        try:
            yield
        except GatewayError as exc:
            if exc.status != 404 or f'"{self.function_id}"' not in exc.message:
                raise
            raise self.not_found(space, exc.message) from exc

    def not_found(self, space: str, message: str) -> click.ClickException:
        """The error for the gateway's 404 (``message``) about :attr:`function_id`."""
        if not self.declared:
            return click.ClickException(message)
        if self.function_id != self.given:
            return click.ClickException(
                f"function {self.given!r} of serverless.yml is deployed as "
                f"{self.function_id!r}, which space {space} does not have ({message}): run "
                "`eg deploy` first"
            )
        if any(self.given in (item.key, item.function_id) for item in self.declared):
            return click.ClickException(f"{message.rstrip('.')}: run `eg deploy` first")
        names = ", ".join(_described(item) for item in self.declared)
        return click.ClickException(
            f"no function {self.given!r} in space {space}, and serverless.yml declares none "
            f"by that key or name (its functions: {names})"
        )


def _described(item: FunctionSpec) -> str:
    if item.key == item.function_id:
        return item.key
    return f"{item.key} (deployed as {item.function_id})"


def function_named(name: str, service_file: pathlib.Path | None = None) -> FunctionName:
    """The function ``name`` means, inside the service directory of ``service_file``
    (default ``./serverless.yml``; stage ``EG_STAGE``, else the file's): a key under
    ``functions:`` stands for its functionId. Outside one, or when the file cannot be
    read whole, ``name`` is the functionId."""
    from eventgateway.cli.context import SERVICE_FILE, load_service_file

    path = service_file or pathlib.Path(SERVICE_FILE)
    if not path.is_file():
        return FunctionName(name, name)
    try:
        declared = load_service_file(path, os.environ.get("EG_STAGE") or None).functions
    except ConfigError:  # a file only a deploy can read: names are ids then
        return FunctionName(name, name)
    if any(item.function_id == name for item in declared):
        return FunctionName(name, name, declared)
    key = next((item for item in declared if item.key == name), None)
    return FunctionName(name, name if key is None else key.function_id, declared)
