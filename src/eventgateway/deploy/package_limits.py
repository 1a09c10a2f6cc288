"""The bundle size limits, and the message that helps a user get under them."""

from __future__ import annotations

import pathlib

from eventgateway.errors import ConfigError

__all__ = ["check_limit", "human_size"]


def check_limit(
    directory: pathlib.Path,
    sizes: dict[str, int],
    limit: int,
    kind: str,
    *,
    total: int | None = None,
) -> None:
    """Refuse a bundle over ``limit``, naming its biggest top-level parts and the fix.

    Raises:
        ConfigError: the bundle (``total``, else the sum of ``sizes``) is over ``limit``.
    """
    size = sum(sizes.values()) if total is None else total
    if size <= limit:
        return
    # Grouped by top-level entry: those are what a pattern most easily leaves out.
    groups: dict[str, int] = {}
    for path, bytes_ in sizes.items():
        top, slash, _ = path.partition("/")
        groups[top + slash] = groups.get(top + slash, 0) + bytes_
    biggest = sorted(groups.items(), key=lambda item: (-item[1], item[0]))[:3]
    listed = ", ".join(f"{name} ({human_size(bytes_)})" for name, bytes_ in biggest)
    examples = ", ".join(
        f"'!{name}**'" if name.endswith("/") else f"'!{name}'" for name, _ in biggest
    )
    raise ConfigError(
        f"the bundle of {directory} is {human_size(size)} {kind}, over the gateway's limit of "
        f"{human_size(limit)} {kind}; the biggest parts are {listed}. "
        f"Leave out what the functions do not need with package.patterns in "
        f"serverless.yml, for example {examples}"
    )


def human_size(size: int) -> str:
    """``size`` bytes as people read it: ``812 bytes``, ``1.5 KiB``, ``50 MiB``."""
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.0f} {unit}" if value.is_integer() else f"{value:.1f} {unit}"
