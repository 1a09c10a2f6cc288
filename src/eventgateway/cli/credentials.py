"""The credentials file: the API keys `eg` saved, per Configuration API and space.

``eg spaces claim`` and a claiming ``eg deploy`` write the space's admin key here; every
`eg` command reads it as the last source of its key (after ``--api-key``/``EG_API_KEY``
and ``serverless.yml``). Where it is: ``$EG_CREDENTIALS_FILE``, else
``$XDG_CONFIG_HOME/eventgateway/credentials.json``, else
``~/.config/eventgateway/credentials.json``. The file is mode 0600 and a directory made
for it 0700, since it holds secrets.

::

    {"version": 1,
     "gateways": {"http://localhost:4001": {"acme-crm": {"apiKey": "…", "keyId": "…",
                                                         "scopes": […], "savedAt": "…"}}}}

Gateways are named by their Configuration API base URL as the SDK derives it
(:meth:`~eventgateway.sdk._wire.Endpoints.derive`), so ``--url http://localhost:4000``
and ``--config-url http://localhost:4001`` find the same keys.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import click

from eventgateway.errors import ConfigError

__all__ = [
    "CREDENTIALS_ENV",
    "Credentials",
    "SavedKey",
    "config_base",
    "credentials_path",
]

CREDENTIALS_ENV: Final = "EG_CREDENTIALS_FILE"
_VERSION: Final = 1


def credentials_path(environ: Mapping[str, str] | None = None) -> pathlib.Path:
    """Where the credentials file is, for ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    explicit = environ.get(CREDENTIALS_ENV)
    if explicit:
        return pathlib.Path(explicit).expanduser()
    xdg = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = pathlib.Path(xdg) if os.path.isabs(xdg) else pathlib.Path.home() / ".config"
    return base / "eventgateway" / "credentials.json"


def config_base(url: str, config_url: str | None, space: str) -> str | None:
    """The Configuration API base URL a client of these options talks to; None if the URLs
    are invalid (the command itself will say so)."""
    from eventgateway.sdk._wire import Endpoints

    try:
        return Endpoints.derive(url, config_url, space).config.base
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class SavedKey:
    """One key of the credentials file."""

    api_key: str
    key_id: str | None = None


class Credentials:
    """The credentials file at ``path`` (see the module's documentation).

    Reads never lock: writes replace the file in one rename. Writes hold an advisory lock
    on ``<path>.lock``, so two `eg` commands saving keys at once both keep theirs.
    """

    def __init__(self, path: pathlib.Path | None = None) -> None:
        self.path = credentials_path() if path is None else path

    def get(self, config_url: str, space: str) -> SavedKey | None:
        """The key saved for ``space`` on the gateway at ``config_url``, if any; for an
        ``https://`` URL, else the one saved for the same URL with ``http://``.

        Raises:
            ConfigError: the file exists but cannot be read or is not a credentials file.
        """
        return self.saved(config_url).get(space)

    def saved(self, config_url: str) -> dict[str, SavedKey]:
        """Every key saved for the gateway at ``config_url``, by space name; for an
        ``https://`` URL, also those saved for the same URL with ``http://``.

        Raises:
            ConfigError: the file exists but cannot be read or is not a credentials file.
        """
        gateways = self._gateways(self._read())
        spaces = dict(gateways.get(config_url, {}))
        if config_url.startswith("https://"):
            # The same gateway, switched to TLS since its keys were saved: they now travel
            # encrypted. (Never the other way: an https key is not sent in clear.)
            plain = gateways.get("http://" + config_url.removeprefix("https://"), {})
            spaces = {**plain, **spaces}
        found = {name: _saved_key(spaces[name]) for name in sorted(spaces)}
        return {name: key for name, key in found.items() if key is not None}

    def save(self, config_url: str, space: str, reply: Mapping[str, Any]) -> None:
        """Save the key of a claim or key creation (``apiKey``, ``keyId``, ``scopes``).

        Raises:
            OSError: the file or its directory cannot be written.
            ConfigError: the existing file is not a credentials file.
        """
        entry = {
            "apiKey": reply["apiKey"],
            "keyId": reply.get("keyId"),
            "scopes": reply.get("scopes"),
            "savedAt": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        with self._locked() as document:
            self._gateways(document).setdefault(config_url, {})[space] = entry

    def forget(self, config_url: str, space: str, *, key_id: str | None = None) -> bool:
        """Drop the key saved for ``space`` (only if its id is ``key_id``, when given).

        Returns:
            Whether a key was dropped.
        """
        if not self.path.exists():
            return False
        with self._locked() as document:
            spaces = self._gateways(document).get(config_url, {})
            entry = spaces.get(space)
            if entry is None or (key_id is not None and entry.get("keyId") != key_id):
                return False
            del spaces[space]
            if not spaces:
                del self._gateways(document)[config_url]
            return True

    def _gateways(self, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
        gateways = document.setdefault("gateways", {})
        if not isinstance(gateways, dict) or not all(
            isinstance(spaces, dict) for spaces in gateways.values()
        ):
            raise ConfigError(f"{self.path} is not an eventgateway credentials file")
        return gateways

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return {"version": _VERSION, "gateways": {}}
        except OSError as exc:
            raise ConfigError(f"cannot read the credentials file {self.path}: {exc}") from exc
        if mode & 0o077:
            click.secho(
                f"Warning: {self.path} holds API keys and others can read it; "
                f"run `chmod 600 {self.path}`",
                fg="yellow",
                err=True,
            )
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise ConfigError(
                f"the credentials file {self.path} is not JSON ({exc}); fix or remove it"
            ) from exc
        if not isinstance(document, dict):
            raise ConfigError(f"{self.path} is not an eventgateway credentials file")
        return document

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The document to change in place; written back when the block ends."""
        self._make_directory()
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            document = self._read()
            yield document
            document["version"] = _VERSION
            self._write(document)
        finally:
            os.close(fd)  # closing releases the lock

    def _make_directory(self) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            return  # an existing directory (maybe /tmp or $HOME) keeps its mode
        directory.chmod(0o700)  # mkdir's mode is cut by the umask

    def _write(self, document: Mapping[str, Any]) -> None:
        # Written beside the file and renamed over it: a reader never sees half a file,
        # and the secret never sits in a file readable by others.
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(document, file, indent=2)
                file.write("\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _saved_key(entry: object) -> SavedKey | None:
    """The key of one entry of the file; None for an entry that is not one."""
    if not isinstance(entry, dict) or not isinstance(entry.get("apiKey"), str):
        return None
    key_id = entry.get("keyId")
    return SavedKey(entry["apiKey"], key_id if isinstance(key_id, str) else None)
