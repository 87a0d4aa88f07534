"""HDF5 file names -> ESDM containers (docs/architecture.md §6.2).

An HDF5 program names a file; through the connector that name describes a
virtual container instead (seed 6.3, "Dealing with file names"). Three spellings are accepted:

``esdm://run1``
    the container ``run1`` of the site configuration (``$ESDM_CONFIG``,
    ``./esdm.json`` or the built-in default).
``esd-cfg:/path/run1.json``
    a small JSON document that defines the container, for names too long or
    too rich for a file name::

        {"container": "esdm://run1", "config": "site.json"}

    ``container`` is required (``esdm://name`` or a bare name); ``config`` is
    optional: a site configuration file (relative to the document) or the
    configuration itself as a JSON object.
anything else
    a path. It names the container with the same path under the site's
    default: ``out.h5`` -> ``esdm://out.h5``, ``/scratch/run/out.h5`` ->
    ``esdm://scratch/run/out.h5``. Characters a container name cannot hold
    become ``_``; ``..`` is refused rather than guessed at.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esdm_hpc.uri import SCHEME, container_name

CONFIG_PREFIX = "esd-cfg:"
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.\-]")
_DOCUMENT_KEYS = {"container", "config"}


@dataclass(frozen=True, slots=True)
class Target:
    """What `esdm_hpc.open` needs to open the container an HDF5 name describes."""

    uri: str
    config: str | dict[str, Any] | None = None  # None: the site's default configuration


def resolve(filename: str) -> Target:
    """The container (and site configuration) the HDF5 file name ``filename`` describes."""
    if not filename:
        raise ValueError("an empty file name names no container")
    if filename.startswith(SCHEME):
        return Target(f"{SCHEME}{container_name(filename)}")
    if filename.startswith(CONFIG_PREFIX):
        return _from_document(Path(filename[len(CONFIG_PREFIX) :]))
    return Target(f"{SCHEME}{container_for_path(filename)}")


def container_for_path(path: str) -> str:
    """The container name a plain path maps to (see the module documentation)."""
    parts = [p for p in posixpath.normpath(path).split("/") if p not in ("", ".")]
    if not parts:
        raise ValueError(f"file name {path!r} names no container")
    if ".." in parts:
        raise ValueError(
            f"file name {path!r}: '..' cannot be mapped to a container name; "
            "use a path without '..' or an esdm:// URI"
        )
    return "/".join(_segment(p) for p in parts)


def _segment(part: str) -> str:
    part = _NOT_NAME.sub("_", part)
    # container name segments start with a letter, digit or '_'
    return part if part[0].isalnum() or part[0] == "_" else "_" + part[1:]


def _from_document(path: Path) -> Target:
    where = f"{CONFIG_PREFIX}{path}"
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise FileNotFoundError(f"{where}: cannot read the container document ({error})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{where}: the document must be a JSON object")
    unknown = set(document) - _DOCUMENT_KEYS
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_DOCUMENT_KEYS)})"
        )
    container = document.get("container")
    if not isinstance(container, str) or not container:
        raise ValueError(f"{where}: 'container' must name the container, e.g. 'esdm://run1'")
    uri = container if container.startswith(SCHEME) else f"{SCHEME}{container}"
    config = document.get("config")
    if isinstance(config, str):
        config = str(path.parent / config)
    elif config is not None and not isinstance(config, dict):
        raise ValueError(f"{where}: 'config' must be a file name or a JSON object")
    return Target(f"{SCHEME}{container_name(uri)}", config)
