"""Container names: ``esdm://<name>``, where a name is one or more path segments."""

from __future__ import annotations

import re

SCHEME = "esdm://"
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_SHOWN = 80  # characters of a refused URI quoted in the message


def container_name(uri: str) -> str:
    """The container name in ``uri``; ValueError naming the problem otherwise."""
    if not isinstance(uri, str):
        raise ValueError(f"uri must be a string like 'esdm://name', not {type(uri).__name__}")
    shown = repr(uri if len(uri) <= _SHOWN else uri[:_SHOWN] + "...")
    if not uri.startswith(SCHEME):
        raise ValueError(f"uri {shown}: container URIs look like 'esdm://name'")
    name = uri[len(SCHEME) :]
    # Refused rather than stripped: esdm:///x reads like an absolute path and
    # esdm://x/ like a directory, and neither names anything but esdm://x.
    if name.startswith("/"):
        raise ValueError(f"uri {shown}: no '/' may follow 'esdm://' (write 'esdm://name')")
    if name.endswith("/"):
        raise ValueError(f"uri {shown}: a container name does not end with '/'")
    if not name or not all(_SEGMENT.fullmatch(s) for s in name.split("/")):
        raise ValueError(
            f"uri {shown}: a container name is one or more segments of letters, digits, "
            "'_', '.' and '-' separated by '/' (not starting with '.')"
        )
    return name
