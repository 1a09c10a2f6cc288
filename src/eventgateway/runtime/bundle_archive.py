"""Checking and extracting an uploaded zip: what ``BundleStore.put`` runs on a thread.

Everything a zip says about itself is distrusted: entry names may point outside the target
(``/etc/x``, ``../../x``, ``C:\\x``), entries may be symbolic links that a later entry
writes through, and declared sizes may lie (a zip bomb). Names and links are refused
before anything is written; sizes are checked against the declared total first and then
counted again while writing.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from eventgateway.errors import StoreError, ValidationError

__all__ = ["METADATA_NAME", "Extracted", "extract", "mib", "remove", "too_large"]

METADATA_NAME: Final = ".eg-bundle.json"  # written by the store next to the code
_CHUNK_BYTES: Final = 1024 * 1024
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_NOT_A_ZIP: Final = "bundle is not a valid zip archive"
_MAX_PART_BYTES: Final = 255  # NAME_MAX of ext4, XFS, btrfs, tmpfs
_MAX_NAME_BYTES: Final = 1024  # leaves room under PATH_MAX (4096) for the data dir's path

logger = logging.getLogger(__name__)


def mib(size: int) -> str:
    """``52428800`` → ``"50 MiB"``; sizes that are not whole MiB in bytes."""
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    return f"{size} bytes"


def too_large(message: str) -> ValidationError:
    """A size-limit refusal: a :class:`ValidationError` answered with 413."""
    return ValidationError(message, status_code=413)


@dataclass(frozen=True, slots=True)
class Extracted:
    """What an extracted bundle holds that the store must act on."""

    files: int
    unzipped_bytes: int
    has_requirements: bool  # requirements.txt at the top level
    has_package_json: bool  # package.json at the top level


def extract(
    zip_bytes: bytes,
    target: Path,
    *,
    max_unzipped_bytes: int,
    before_write: Callable[[int], None] | None = None,
) -> Extracted:
    """Check ``zip_bytes`` and extract it into ``target`` (which must not exist yet).

    ``before_write``, once every entry passed the checks and before anything is written, is
    called with the bytes the entries declare (at most ``max_unzipped_bytes``); an
    exception it raises refuses the zip. The declared total bounds what is written:
    ``zipfile`` stops reading an entry at its declared size.

    Raises:
        ValidationError: not a zip, an unsafe or reserved entry name, a symbolic link, an
            encrypted entry, or over ``max_unzipped_bytes`` (then with status 413).
        StoreError: ``target`` cannot be written (disk full, permissions).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError):
        raise ValidationError(_NOT_A_ZIP) from None
    with archive:
        entries = _check(archive.infolist(), max_unzipped_bytes)
        if before_write is not None:
            before_write(sum(info.file_size for _, info in entries))
        try:
            target.mkdir(parents=True)
            written = _write(archive, entries, target, max_unzipped_bytes)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            # A corrupt member (bad CRC, truncated data) or an unsupported compression.
            raise ValidationError(f"{_NOT_A_ZIP}: {exc}") from None
        except OSError as exc:
            # The gateway's own failure (disk full, permissions): the log gets the path, the
            # client only what went wrong.
            logger.error("cannot extract a bundle into %s: %s", target, exc)
            raise StoreError(f"cannot store the bundle: {exc.strerror or exc}") from exc
    top = {parts for parts, info in entries if not info.is_dir()}
    return Extracted(
        files=len(top),
        unzipped_bytes=written,
        has_requirements=("requirements.txt",) in top,
        has_package_json=("package.json",) in top,
    )


def _check(
    infos: list[zipfile.ZipInfo], max_unzipped_bytes: int
) -> list[tuple[tuple[str, ...], zipfile.ZipInfo]]:
    entries: list[tuple[tuple[str, ...], zipfile.ZipInfo]] = []
    declared = 0
    for info in infos:
        parts = _safe_parts(info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ValidationError(
                f"bundle entry {info.filename!r} is a symbolic link; bundles may not contain "
                "links: zip the files they point to instead"
            )
        if info.flag_bits & 0x1:
            raise ValidationError(f"bundle entry {info.filename!r} is encrypted")
        if parts == (METADATA_NAME,):
            raise ValidationError(f"bundle entry {info.filename!r} is reserved by eventgateway")
        declared += info.file_size
        if declared > max_unzipped_bytes:
            raise too_large(
                f"bundle unzips to more than the {mib(max_unzipped_bytes)} limit "
                f"(at least {declared} bytes)"
            )
        if parts:
            entries.append((parts, info))
    return entries


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path components of an entry name, or a ValidationError if it leaves the bundle."""
    if "\x00" in name:
        raise ValidationError(f"bundle entry {name!r} has a NUL character in its name")
    # Zips written on Windows may use backslashes; treat them as separators everywhere, so
    # that "..\\x" cannot slip past a check that only knows "/".
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise ValidationError(
            f"bundle entry {name!r} has an absolute path; entries must be relative"
        )
    parts = tuple(part for part in PurePosixPath(posix).parts if part not in ("", "."))
    if ".." in parts:
        raise ValidationError(f"bundle entry {name!r} points outside the bundle ('..')")
    # What every file system here can hold, wherever the data dir is: a longer name would
    # fail mid-extraction (ENAMETOOLONG), the client's fault reported as the gateway's.
    if len(posix.encode()) > _MAX_NAME_BYTES or any(
        len(part.encode()) > _MAX_PART_BYTES for part in parts
    ):
        shown = name if len(name) <= 80 else name[:80] + "…"
        raise ValidationError(
            f"bundle entry {shown!r} has too long a name: at most {_MAX_PART_BYTES} bytes "
            f"per file or directory name, {_MAX_NAME_BYTES} in all"
        )
    return parts


def _write(
    archive: zipfile.ZipFile,
    entries: list[tuple[tuple[str, ...], zipfile.ZipInfo]],
    target: Path,
    max_unzipped_bytes: int,
) -> int:
    written = 0
    for parts, info in entries:
        path = target.joinpath(*parts)
        try:
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            sink = path.open("xb")  # "x": a second entry of the same name is refused
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise ValidationError(
                f"bundle entry {info.filename!r} clashes with another entry of the same path"
            ) from None
        with sink, archive.open(info) as source:
            # Counted again here: the declared sizes were only the zip's word.
            while chunk := source.read(_CHUNK_BYTES):
                written += len(chunk)
                if written > max_unzipped_bytes:
                    raise too_large(
                        f"bundle unzips to more than the {mib(max_unzipped_bytes)} limit"
                    )
                sink.write(chunk)
        if (info.external_attr >> 16) & 0o111:  # keep executables (node_modules/.bin)
            os.chmod(path, 0o755)
    return written


def remove(path: Path) -> None:
    """Delete a directory tree if it exists; errors are ignored (it is only cleanup)."""
    shutil.rmtree(path, ignore_errors=True)
