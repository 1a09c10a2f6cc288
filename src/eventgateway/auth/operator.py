"""The bootstrap operator key: from ``EG_OPERATOR_KEY``, else a file in the data directory.

The first start in auth mode creates ``<data-dir>/operator.key`` (mode 0600) with a new
random key and prints it once, on stderr; later starts read the file and print nothing
secret. A ``memory://`` gateway keeps nothing on disk, so it makes a key per process and
prints it at every start.
"""

from __future__ import annotations

import logging
import os
import pathlib
import stat
import sys
from collections.abc import Callable
from typing import Final

from eventgateway.auth.keys import MIN_OPERATOR_KEY_CHARS, generate_operator_key
from eventgateway.errors import ConfigError
from eventgateway.settings import Settings

__all__ = ["OPERATOR_KEY_FILE", "load_operator_key", "operator_key_for"]

logger = logging.getLogger(__name__)

OPERATOR_KEY_FILE: Final = "operator.key"

Announce = Callable[[str], None]


def _print_to_stderr(line: str) -> None:
    # Straight to stderr, not through logging: the key must not reach log shippers that
    # collect records, and this is the one place it is ever shown.
    print(line, file=sys.stderr, flush=True)


def operator_key_for(settings: Settings) -> str | None:
    """The operator key a gateway with ``settings`` accepts; ``None`` without auth mode."""
    if not settings.auth:
        return None
    data_dir = None if settings.in_memory else settings.data_dir
    return load_operator_key(data_dir, configured=settings.operator_key)


def load_operator_key(
    data_dir: pathlib.Path | None,
    *,
    configured: str | None = None,
    announce: Announce = _print_to_stderr,
) -> str:
    """The operator key for this start, creating and announcing one when there is none.

    Args:
        data_dir: where ``operator.key`` lives; ``None`` for a ``memory://`` gateway.
        configured: ``EG_OPERATOR_KEY``, when set (then nothing is written or printed).
        announce: prints the one line that shows a new key (stderr by default).

    Raises:
        ConfigError: the configured key is too short, or the key file cannot be read or
            written.
    """
    if configured is not None:
        if len(configured) < MIN_OPERATOR_KEY_CHARS:
            raise ConfigError(
                f"EG_OPERATOR_KEY has {len(configured)} characters: use at least "
                f"{MIN_OPERATOR_KEY_CHARS}, e.g. from `python -c 'import secrets; "
                "print(secrets.token_hex(24))'`"
            )
        logger.info("Operator key: taken from EG_OPERATOR_KEY")
        return configured
    if data_dir is None:
        key = generate_operator_key()
        announce(f"Operator key for this process (memory store, not kept): {key}")
        return key
    path = data_dir / OPERATOR_KEY_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    key = generate_operator_key()
    try:
        _create(path, key)
    except FileExistsError:  # another process created it first: use theirs
        return _read(path)
    announce(
        f"Operator key (shown once; kept in {path}, mode 0600): {key}\n"
        "Use it as `Authorization: Bearer <key>` or EG_API_KEY to manage spaces."
    )
    logger.info("Operator key: created %s", path)
    return key


def _read(path: pathlib.Path) -> str:
    try:
        mode = path.stat().st_mode
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read the operator key file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "Operator key file %s is readable by others (mode %o); run: chmod 600 %s",
            path,
            stat.S_IMODE(mode),
            path,
        )
    if len(key) < MIN_OPERATOR_KEY_CHARS:
        raise ConfigError(
            f"the operator key file {path} holds no usable key (under "
            f"{MIN_OPERATOR_KEY_CHARS} characters); delete it to have a new one made"
        )
    logger.info("Operator key: read from %s", path)
    return key


def _create(path: pathlib.Path, key: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never overwrite a key someone already holds; 0600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot create the operator key file {path}: {exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(key + "\n")
