"""Code bundles for ``eg deploy``: the service directory as a deterministic zip.

The gateway names a bundle by the SHA-256 of its zip and ``eg deploy`` uploads only the
bundles it does not have, so the same files must always give the same bytes: entries are
sorted, every timestamp is 1980-01-01, modes are 0o644 or 0o755, compression is fixed, and
the zip has no directory entries and no extra fields.

Which files go in follows ``package.patterns`` of the Serverless Framework v3: every file
under the directory, less :data:`DEFAULT_EXCLUDES` and the service's own ``serverless.yml``
(Serverless leaves its configuration file out too: editing it changes no code, so no
bundle id), then the service's patterns in order;
``!pattern`` leaves matches out and ``pattern`` puts them (back) in, and the last pattern
that matches a file decides. Globs match like micromatch with ``dot: true``: ``*`` within
one path segment, ``**`` across segments, and both match dotfiles.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pathlib
import re
import stat
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from wcmatch import glob

from eventgateway.deploy.package_limits import check_limit
from eventgateway.errors import ConfigError
from eventgateway.runtime.bundle_archive import METADATA_NAME

__all__ = [
    "DEFAULT_EXCLUDES",
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIP_BYTES",
    "Bundle",
    "build_bundle",
    "select_files",
]

logger = logging.getLogger(__name__)

MIB: Final = 1024 * 1024
# The gateway's limits (BundleStore's defaults): refused here before a useless upload.
MAX_ZIP_BYTES = 50 * MIB
MAX_UNZIPPED_BYTES = 250 * MIB

DEFAULT_EXCLUDES: Final = (
    # Serverless Framework v3's own.
    ".git/**",
    ".gitignore",
    ".DS_Store",
    "npm-debug.log",
    ".serverless/**",
    ".serverless_plugins/**",
    # The gateway's data directory, and Python's caches and environments.
    ".eventgateway/**",
    "**/__pycache__/**",
    "**/*.pyc",
    ".venv/**",
    "venv/**",
    ".pytest_cache/**",
    ".mypy_cache/**",
    ".ruff_cache/**",
    "node_modules/.cache/**",
)

_FLAGS: Final = glob.GLOBSTAR | glob.DOTGLOB | glob.BRACE | glob.EXTGLOB | glob.FORCEUNIX
_MAGIC: Final = re.compile(r"[*?\[\]{}\\]|[!+@]\(")
_EPOCH: Final = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
_LEVEL: Final = 6  # zlib's default, pinned so that a changed default cannot change hashes
_UNIX: Final = 3  # ZipInfo.create_system; else zipfile writes 0 on Windows


@dataclass(frozen=True, slots=True)
class Bundle:
    """A zipped service directory, ready to upload.

    Attributes:
        data: the zip.
        bundle_id: the SHA-256 of ``data`` in hex, the id the gateway gives it.
        files: the paths in the zip, relative and ``/``-separated, sorted.
        unzipped_bytes: what the files hold once extracted.
        warnings: files left out that the user may have expected in (symbolic links that
            point outside the directory or to a directory, special files).

    .. versionadded:: 0.1.0
    """

    data: bytes = field(repr=False)
    bundle_id: str
    files: tuple[str, ...]
    unzipped_bytes: int
    warnings: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """The size of the zip in bytes."""
        return len(self.data)


def select_files(
    directory: pathlib.Path, patterns: Sequence[str] = (), *, config_file: str | None = None
) -> list[str]:
    """The files of ``directory`` that go into its bundle, sorted.

    Args:
        directory: the service directory (the one holding ``serverless.yml``).
        patterns: ``package.patterns`` from ``serverless.yml``, applied in order after
            :data:`DEFAULT_EXCLUDES`.
        config_file: the name of the service's configuration file in ``directory``,
            left out by default too (a pattern may put it back).

    Returns:
        Relative ``/``-separated paths. A symbolic link to a file inside ``directory`` is
        listed under its own path; links that point elsewhere are left out and logged.

    Raises:
        ConfigError: ``directory`` or one of its subdirectories cannot be read, or a
            pattern is empty or not a valid glob.

    .. versionadded:: 0.1.0
    """
    selection = _Walker(directory, patterns, config_file).walk()
    for warning in selection.warnings:
        logger.warning("%s", warning)
    return [entry.path for entry in selection.files]


def build_bundle(
    directory: pathlib.Path, patterns: Sequence[str] = (), *, config_file: str | None = None
) -> Bundle:
    """Zip the selected files of ``directory`` (see :func:`select_files`).

    The same files with the same contents and executable bits always give the same zip,
    whatever their timestamps, owners or other permission bits.

    Raises:
        ConfigError: no file is selected, a file cannot be read, or the bundle is over
            the gateway's limits (:data:`MAX_ZIP_BYTES` zipped, :data:`MAX_UNZIPPED_BYTES`
            unzipped); the message names the biggest files and directories.

    .. versionadded:: 0.1.0
    """
    selection = _Walker(directory, patterns, config_file).walk()
    if not selection.files:
        why = (
            f"package.patterns {list(patterns)!r} leave out every file"
            if patterns
            else "it holds no files but those left out by default"
        )
        raise ConfigError(f"nothing to bundle in {directory}: {why}")
    if METADATA_NAME in (entry.path for entry in selection.files):
        raise ConfigError(
            f"{directory / METADATA_NAME} is a name eventgateway reserves in a bundle: "
            f"rename it or leave it out with '!{METADATA_NAME}' in package.patterns"
        )
    declared = {entry.path: entry.size for entry in selection.files}
    check_limit(directory, declared, MAX_UNZIPPED_BYTES, "unzipped")

    contents = [(entry, _read(directory, entry.path)) for entry in selection.files]
    # Check again: a file may have grown since it was listed.
    read = {entry.path: len(data) for entry, data in contents}
    check_limit(directory, read, MAX_UNZIPPED_BYTES, "unzipped")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry, data in contents:
            info = zipfile.ZipInfo(entry.path, date_time=_EPOCH)
            info.create_system = _UNIX
            info.external_attr = (stat.S_IFREG | (0o755 if entry.executable else 0o644)) << 16
            try:
                archive.writestr(info, data, zipfile.ZIP_DEFLATED, _LEVEL)
            except UnicodeEncodeError:
                raise ConfigError(
                    f"{entry.path!r} in {directory} has a name that is not valid UTF-8: "
                    "rename it or leave it out with package.patterns"
                ) from None
        compressed = {info.filename: info.compress_size for info in archive.infolist()}
    data = buffer.getvalue()
    check_limit(directory, compressed, MAX_ZIP_BYTES, "zipped", total=len(data))
    return Bundle(
        data=data,
        bundle_id=hashlib.sha256(data).hexdigest(),
        files=tuple(entry.path for entry in selection.files),
        unzipped_bytes=sum(read.values()),
        warnings=selection.warnings,
    )


# -- selecting -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    include: bool
    matcher: glob.WcMatcher[str]
    # A negative rule whose last segment is literal or ``**`` also leaves out everything
    # under a directory it matches (fast-glob, under Serverless, stops reading there).
    covers_directories: bool
    literal_prefix: tuple[str, ...]  # the segments before the first glob character
    depth: int | None  # how many segments every match has; None: any number


@dataclass(frozen=True, slots=True)
class _File:
    path: str
    size: int
    executable: bool


@dataclass(frozen=True, slots=True)
class _Selection:
    files: tuple[_File, ...]
    warnings: tuple[str, ...]


def _compile(raw: str, *, default: bool = False) -> _Rule:
    include = not raw.startswith("!")
    pattern = raw if include else raw[1:]
    while pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.rstrip("/")
    source = "the default exclusions" if default else "package.patterns"
    if not pattern:
        raise ConfigError(f"{source}: {raw!r} is an empty pattern")
    try:
        matcher = glob.compile(pattern, flags=_FLAGS)
    except ValueError as exc:
        raise ConfigError(f"{source}: {raw!r} is not a valid glob: {exc}") from None
    segments = tuple(pattern.split("/"))
    literal: list[str] = []
    for segment in segments:
        if _MAGIC.search(segment):
            break
        literal.append(segment)
    return _Rule(
        include=include,
        matcher=matcher,
        covers_directories=not include
        and (pattern.endswith("/**") or not _MAGIC.search(segments[-1])),
        literal_prefix=tuple(literal),
        depth=None if "**" in pattern or "{" in pattern else len(segments),
    )


def _may_match_under(rule: _Rule, directory: tuple[str, ...]) -> bool:
    """Whether ``rule`` could match a file below ``directory``; a cheap over-estimate."""
    if rule.depth is not None and rule.depth <= len(directory):
        return False
    return all(a == b for a, b in zip(rule.literal_prefix, directory, strict=False))


class _Walker:
    def __init__(
        self, directory: pathlib.Path, patterns: Sequence[str], config_file: str | None
    ) -> None:
        self.directory = directory
        self.rules = [_compile(f"!{raw}", default=True) for raw in DEFAULT_EXCLUDES]
        if config_file is not None:
            self.rules.append(_compile(f"!{glob.escape(config_file)}", default=True))
        self.rules += [_compile(raw) for raw in patterns]
        self.root = directory.resolve()
        self.files: list[_File] = []
        self.warnings: list[str] = []

    def walk(self) -> _Selection:
        if not self.directory.is_dir():
            raise ConfigError(f"cannot bundle {self.directory}: it is not a directory")
        # Each directory carries the index of the last rule that left it out whole (-1:
        # none), so that a file need only be matched against the rules after it.
        pending: list[tuple[str, int]] = [("", -1)]
        while pending:
            prefix, excluded_by = pending.pop()
            for entry in self._scan(prefix):
                self._visit(entry, prefix + entry.name, excluded_by, pending)
        self.files.sort(key=lambda file: file.path)
        return _Selection(tuple(self.files), tuple(sorted(self.warnings)))

    def _scan(self, prefix: str) -> list[os.DirEntry[str]]:
        path = self.directory / prefix if prefix else self.directory
        try:
            with os.scandir(path) as entries:
                return list(entries)
        except OSError as exc:
            raise ConfigError(
                f"cannot read {path}: {exc.strerror or exc}; fix its permissions or leave "
                "it out with package.patterns"
            ) from None

    def _visit(
        self,
        entry: os.DirEntry[str],
        path: str,
        excluded_by: int,
        pending: list[tuple[str, int]],
    ) -> None:
        try:
            if entry.is_dir(follow_symlinks=False):
                excluded_by = self._excluded_by(path, excluded_by)
                if not self._skippable(path, excluded_by):
                    pending.append((path + "/", excluded_by))
            elif entry.is_symlink():
                self._visit_link(entry, path, excluded_by)
            elif not self._included(path, excluded_by):
                pass
            elif entry.is_file(follow_symlinks=False):
                self._add(path, entry.stat(follow_symlinks=False))
            else:
                self.warnings.append(f"skipped {path}: not a regular file")
        except OSError as exc:
            raise ConfigError(f"cannot read {self.directory / path}: {exc}") from None

    def _visit_link(self, entry: os.DirEntry[str], path: str, excluded_by: int) -> None:
        try:
            target = pathlib.Path(entry.path).resolve(strict=True)
            status = target.stat()
        except (OSError, RuntimeError):  # dangling, or a loop
            if self._included(path, excluded_by):
                self.warnings.append(f"skipped {path}: a symbolic link to nothing")
            return
        if stat.S_ISDIR(status.st_mode):
            if not self._skippable(path, self._excluded_by(path, excluded_by)):
                self.warnings.append(
                    f"skipped {path}: a symbolic link to a directory; bundles hold no "
                    "links, so copy the directory in or list its files"
                )
        elif not self._included(path, excluded_by):
            pass
        elif not target.is_relative_to(self.root):
            self.warnings.append(
                f"skipped {path}: a symbolic link to {target}, outside {self.directory}"
            )
        elif not stat.S_ISREG(status.st_mode):
            self.warnings.append(f"skipped {path}: not a regular file")
        else:
            self._add(path, status)

    def _add(self, path: str, status: os.stat_result) -> None:
        executable = bool(status.st_mode & 0o111)
        self.files.append(_File(path, status.st_size, executable))

    def _excluded_by(self, directory: str, inherited: int) -> int:
        candidate = directory + "/"  # so that "dir/**" matches the directory itself
        for index in range(len(self.rules) - 1, inherited, -1):
            rule = self.rules[index]
            if rule.covers_directories and rule.matcher.match(candidate):
                return index
        return inherited

    def _skippable(self, directory: str, excluded_by: int) -> bool:
        if excluded_by < 0:
            return False
        segments = tuple(directory.split("/"))
        return not any(
            rule.include and _may_match_under(rule, segments)
            for rule in self.rules[excluded_by + 1 :]
        )

    def _included(self, path: str, excluded_by: int) -> bool:
        for index in range(len(self.rules) - 1, excluded_by, -1):
            rule = self.rules[index]
            if rule.matcher.match(path):
                return rule.include
        return excluded_by < 0  # no later rule matched: the directory's exclusion stands


# -- reading and limits ----------------------------------------------------------------------


def _read(directory: pathlib.Path, path: str) -> bytes:
    try:
        return (directory / path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read {directory / path}: {exc.strerror or exc}; fix its permissions "
            "or leave it out with package.patterns"
        ) from None
