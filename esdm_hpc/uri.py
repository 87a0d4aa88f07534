"""Container names: ``esdm://<name>``, where a name is one or more path segments."""

from __future__ import annotations

import re

SCHEME = "esdm://"
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def container_name(uri: str) -> str:
    """The container name in ``uri``; ValueError naming the problem otherwise."""
    if not isinstance(uri, str):
        raise ValueError(f"uri must be a string like 'esdm://name', not {type(uri).__name__}")
    if not uri.startswith(SCHEME):
        raise ValueError(f"uri {uri!r}: container URIs look like 'esdm://name'")
    name = uri[len(SCHEME) :].strip("/")
    segments = name.split("/")
    if not name or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(
            f"uri {uri!r}: a container name is one or more segments of letters, digits, "
            "'_', '.' and '-' separated by '/' (not starting with '.')"
        )
    return name
