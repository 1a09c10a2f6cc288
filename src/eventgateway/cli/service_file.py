"""The gateway settings of a service directory: ``custom.eventgateway`` of ``serverless.yml``.

Every ``eg`` command reads ``url``, ``configurationUrl``, ``space`` and ``apiKey`` (or
``accessKey``) from here when no flag or ``EG_*`` variable gave them
(:func:`~eventgateway.cli.context.resolve_options`). The file is read, its variables
resolved and the values checked by the code ``eg deploy`` uses, so a bad value fails the
same way for every command: ``serverless.yml:7: custom.eventgateway.url: …``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from eventgateway.deploy.manifest_source import Source
    from eventgateway.deploy.model import GatewayTarget

__all__ = ["DeclaredSettings", "ServiceFile", "Settings"]


class Settings(Protocol):
    """Where the settings of ``custom.eventgateway`` come from."""

    def get(self, *keys: str) -> str | None:
        """The first of ``keys`` set, checked; None when none is."""


class ServiceFile:
    """``custom.eventgateway`` of a ``serverless.yml``, read on first use.

    Variables are resolved the way ``eg deploy`` resolves them (``${env:…}``,
    ``${self:…}``, ``${opt:stage, 'dev'}``, ``${file(…)}``), one key at a time: a key a
    flag already gave is never read, so a value only a deploy can resolve does no harm.
    A missing file has no settings.
    """

    def __init__(self, path: pathlib.Path, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._environ = os.environ if environ is None else environ
        self._read: tuple[dict[str, Any], Source] | None = None

    def get(self, *keys: str) -> str | None:
        """The first of ``keys`` set under ``custom.eventgateway``, resolved and checked.

        Raises:
            ConfigError: ``<file>:<line>: <key path>: …``: the file is not YAML, a section
                is not a mapping, a variable cannot be resolved, or the value is invalid.
        """
        from eventgateway.deploy.manifest import gateway_setting

        document, src = self._document()
        for key in keys:
            # Checked as load_service checks the file, after resolving (`custom` may be a
            # ${file(…)}) and before using the value.
            resolved = self._resolve(document, src, key)
            custom = src.mapping(resolved.get("custom"), ("custom",))
            section = src.mapping(custom.get("eventgateway"), ("custom", "eventgateway"))
            value = gateway_setting(section, key, src)
            if value is not None:
                return value
        return None

    def _document(self) -> tuple[dict[str, Any], Source]:
        if self._read is None:
            from eventgateway.deploy.manifest_source import Source, read_source

            if not self.path.is_file():
                self._read = {}, Source(str(self.path))
            else:
                data, src = read_source(self.path)
                if data is not None and not isinstance(data, dict):
                    raise src.error((), "must be a mapping with service:, provider: and functions:")
                self._read = data or {}, src
        return self._read

    def _resolve(self, document: dict[str, Any], src: Source, key: str) -> dict[str, Any]:
        """``document`` with the variables on the path to ``custom.eventgateway.<key>``
        resolved; everything else is copied as it is."""
        from eventgateway.deploy.manifest_source import file_reader
        from eventgateway.deploy.variables import (
            VariableError,
            VariableSources,
            effective_stage,
            resolve_variables,
        )

        provider = document.get("provider")
        provider_stage = provider.get("stage") if isinstance(provider, dict) else None
        sources = VariableSources(
            environ=self._environ,
            options={},
            stage=effective_stage(None, {}, provider_stage),
            read_file=file_reader(self.path.parent),
        )
        path = ("custom", "eventgateway", key)
        try:
            resolved: dict[str, Any] = resolve_variables(
                document, sources, skip=lambda at: tuple(at) != path[: len(at)]
            )
        except VariableError as exc:
            raise src.error(exc.path, exc.detail) from exc
        return resolved


class DeclaredSettings:
    """The settings of a service ``eg deploy`` has read whole (already checked) from the
    file at ``path``."""

    def __init__(self, target: GatewayTarget, path: pathlib.Path | None = None) -> None:
        from eventgateway.deploy.model import DEFAULT_SPACE

        self.path = pathlib.Path("serverless.yml") if path is None else path

        self._values = {
            "url": target.url,
            "configurationUrl": target.config_url,
            # The reader fills in "default" for a file without `space:`; as not set, it
            # lets resolve_options take the space a hosted-style URL names, as for every
            # other command ("default" still, for any other URL).
            "space": None if target.space == DEFAULT_SPACE else target.space,
            "apiKey": target.api_key,
        }

    def get(self, *keys: str) -> str | None:
        """The first of ``keys`` set (``accessKey`` is already folded into ``apiKey``)."""
        return next((value for key in keys if (value := self._values.get(key))), None)
