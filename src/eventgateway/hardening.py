"""Process hardening of the gateway's own processes (``eg serve`` and its delivery worker).

Handlers run as the gateway's user, so without this they could read
``/proc/<gateway pid>/environ`` (the operator key, NATS credentials) or ptrace the gateway.
A non-dumpable process's ``/proc`` files that reveal its memory or environment are owned by
root and ptrace of it needs ``CAP_SYS_PTRACE``; ``status``, ``stat`` and ``task/*/stat``
stay world-readable. ``exec`` makes a process dumpable again (unless its credentials
change), so workers and installers are unaffected. It also stops core dumps, and same-user
debuggers (``py-spy``, ``gdb -p``) and ``/proc/<pid>/fd`` listings by anyone but root:
``EG_DUMPABLE=1`` keeps a process inspectable when that is needed.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Final

__all__ = ["DUMPABLE_ENV", "forbid_inspection"]

logger = logging.getLogger(__name__)

DUMPABLE_ENV: Final = "EG_DUMPABLE"
_PR_SET_DUMPABLE: Final = 4


def forbid_inspection() -> bool:
    """Make this process non-dumpable (Linux); True if it now is.

    Does nothing elsewhere, or when ``EG_DUMPABLE=1`` is set.
    """
    if not sys.platform.startswith("linux") or os.environ.get(DUMPABLE_ENV) == "1":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        logger.warning("cannot make this process non-dumpable: %s", os.strerror(ctypes.get_errno()))
        return False
    return True
