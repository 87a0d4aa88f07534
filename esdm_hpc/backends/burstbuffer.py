"""The burst buffer: node-local storage that absorbs writes at memory speed
(docs/architecture.md §5).

A directory on each node (a tmpfs or a local SSD), the same configured path
everywhere, holding only what that node's ranks wrote. Objects are plain files
as on posix, under a directory named for the node, so that a replica names
the node that holds it (`Replica.node`) and nodes sharing one directory (or
simulated on one machine with ``ESDM_NODE``) never see each other's logs.
Committed fragments leave it for the backend ``drain_to`` names (`esdm_hpc.drain`).
"""

from __future__ import annotations

import os
import socket

from esdm_hpc.backends.posix import PosixBackend, PosixLogWriter
from esdm_hpc.config import BackendConfig

# Names the node in place of its host name: a test of several nodes on one machine.
NODE_VARIABLE = "ESDM_NODE"


def this_node() -> str:
    """The name of the node this process runs on."""
    return os.environ.get(NODE_VARIABLE) or socket.gethostname()


class BurstBufferBackend(PosixBackend):
    # Every append is written at once: on memory-speed storage gathering saves
    # little, and a full burst buffer must fail the append (which then goes to
    # the next tier), not a flush at the commit, which would lose the epoch.
    gather_below = 0

    def __init__(self, config: BackendConfig) -> None:
        self._node = this_node()
        # a node name is one path component: it came from the host or ESDM_NODE
        super().__init__(config, os.path.join(config.target, self._node.replace("/", "_")))

    @property
    def node(self) -> str:
        return self._node

    def create_log(self, name: str) -> PosixLogWriter:
        # posix would make the missing directories again: on a burst buffer that
        # is writing to whatever lies under a vanished mount, so it is an error
        if not os.path.isdir(self.root):
            raise self.error(
                name,
                f"the burst-buffer directory {self.root} has disappeared "
                "(unmounted or removed); nothing can be written there",
            )
        return super().create_log(name)
