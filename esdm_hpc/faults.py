"""Crash points: where tests kill a writer to prove a crash never loses an epoch.

``ESDM_CRASH=<point>:<n>`` makes the process SIGKILL itself the n-th time it
passes ``crash_point("<point>")``. Unset (always, outside tests) a crash point
costs one comparison. The points sit between the steps whose order makes a
commit atomic: data appended, data durable, manifest written, HEAD renamed.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("ESDM_CRASH", "")
_POINT, _, _NTH = _SPEC.partition(":")
_passes = 0


def crash_point(name: str) -> None:
    global _passes
    if name != _POINT:
        return
    _passes += 1
    if _passes == int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
