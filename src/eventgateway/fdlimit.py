"""Open-file descriptors: raising this process's soft limit, and sizing the call pool.

Every delivery in flight holds a socket, so the outbound pool must be larger than the
dispatcher's own bound: when it was smaller (512 against 1,024 deliveries in flight), four
hung subscribers of 128 slots each took every connection and healthy ones timed out
waiting for one (QA). A distribution's default soft limit (often 1,024) is below that, so
the gateway raises it to the hard limit at start, as Go programs do since Go 1.19 (the
original gateway was one); children (the delivery worker, functions) inherit it.
"""

from __future__ import annotations

import logging
import resource

__all__ = ["pool_size", "raise_open_files_limit"]

logger = logging.getLogger(__name__)

# Linux refuses a soft limit above fs.nr_open (1,048,576 by default), even if the hard
# limit is unlimited.
_CEILING = 1 << 20


def pool_size(concurrency: int) -> int:
    """Outbound connections at most for a dispatcher of ``concurrency`` deliveries in
    flight: room for all of them, and as many more for calls beside it (sync routes,
    at-most-once deliveries, connections still closing)."""
    return max(512, 2 * concurrency)


def raise_open_files_limit(needed: int = 0) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; the soft limit afterwards.

    Warns when even the hard limit is below ``needed`` (sockets this process may hold).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _CEILING if hard == resource.RLIM_INFINITY else min(hard, _CEILING)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # a container may forbid it
            logger.debug("could not raise the open files limit to %d: %s", target, exc)
    if needed and soft != resource.RLIM_INFINITY and soft < needed:
        logger.warning(
            "the open files limit is %d, below the ~%d sockets deliveries may need at "
            "once; raise it (`ulimit -n`, systemd LimitNOFILE=) or lower "
            "--dispatch-concurrency",
            soft,
            needed,
        )
    return soft
