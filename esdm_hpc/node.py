"""What every object of a container (group, dataset) has: its container, its
name and its attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from esdm_hpc.attributes import Attributes

if TYPE_CHECKING:
    from esdm_hpc.container import Container


class Node:
    def __init__(self, container: Container, path: str):
        self._container = container
        self.name = path

    @property
    def container(self) -> Container:
        """The container this object is in."""
        return self._container

    @property
    def attrs(self) -> Attributes:
        return Attributes(self._container, self.name)
