"""Anonymous objects (HDF5's H5Dcreate_anon, H5Gcreate_anon, H5Tcommit_anon).

HDF5 creates an object without a name and names it later with H5Olink; one
that no link names by the time its last ID closes is dropped. Here such an
object gets an identity at the root that no listing shows (it is unlinked:
`Namespace.unlinked`) until a link names it; its first name then becomes its
identity (`PendingNamespace.create_link`).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from esdm_hpc.container import Container

PREFIX = ".anonymous-"  # of the identities anonymous objects have until a link names them

# per container, the number the next anonymous identity tries first
_next: weakref.WeakKeyDictionary[Container, int] = weakref.WeakKeyDictionary()


def new_identity(container: Container) -> str:
    """The identity for a new object without a name. Never one this container handed
    out before: a handle's `drop_if_unnamed` must not find another object under
    the name its object had until a link renamed it."""
    namespace = container.edit("creating an object").namespace
    n = _next.get(container, 0)
    while namespace.taken(f"/{PREFIX}{n}"):
        n += 1
    _next[container] = n + 1
    return f"/{PREFIX}{n}"


def hide(container: Container, path: str) -> None:
    """Make the object just created at ``path`` anonymous: alive, unlisted."""
    namespace = container.edit("creating an object").namespace
    namespace.order.pop(path, None)
    namespace.unlinked.add(path)


def drop_if_unnamed(container: Container, identity: str) -> None:
    """Drop the anonymous object ``identity`` unless a link names it (collective);
    nothing once the container is closed."""
    if not container.closed and container.writable:
        container.edit("closing an object").collect_unnamed(identity)
