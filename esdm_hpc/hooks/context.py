"""What an on_commit hook is called with: the `CommitContext`, through which it
writes derived datasets into the epoch being committed (docs/architecture.md §7.4)."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from esdm_hpc.hooks.records import Block, WriteResult

if TYPE_CHECKING:
    from esdm_hpc.hooks.hookcomm import HookComm

# (path, shape, dtype, whole): how the ranks check that their outputs fit together
Spec = tuple[str, tuple[int, ...], str, bool]


@dataclass(frozen=True, slots=True)
class Output:
    """A derived dataset's data one rank hands in: the whole dataset (offset None,
    rank 0's written) or this rank's part of it."""

    path: str
    data: np.ndarray
    offset: tuple[int, ...] | None
    shape: tuple[int, ...]

    @property
    def spec(self) -> Spec:
        return (self.path, self.shape, self.data.dtype.str, self.offset is None)


class CommitContext:
    """What an on_commit hook is called with, on every rank: ``epoch`` (the epoch the
    blocks were written in), ``dataset``, ``comm`` (a `HookComm`), ``blocks`` (this
    rank's `Block`s of the dataset in the epoch, maybe none; none at all for a hook
    registered with ``blocks=False``) and ``results`` (the `WriteResult`s of the
    dataset's on_write hooks on this rank since the last run)."""

    def __init__(
        self,
        epoch: int,
        dataset: str,
        comm: HookComm,
        blocks: Sequence[Block],
        results: Sequence[WriteResult],
    ):
        self.epoch = epoch
        self.dataset = dataset
        self.comm = comm
        self.blocks = blocks
        self.results = results
        self.outputs: list[Output] = []
        self._open = True

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    def write(self, path: str, value: Any) -> None:
        """Write the derived dataset ``path`` whole: ``value`` is the same on every
        rank (a reduction's result) and rank 0's is written. Created on first use
        with the value's shape and type, overwritten by each later commit (older
        epochs keep theirs: ``esdm_hpc.open(uri, epoch=k)``)."""
        data = np.array(value)
        self._add(Output(self._path(path), data, None, data.shape))

    def write_part(self, path: str, data: Any, offset: Sequence[int], shape: Sequence[int]) -> None:
        """Write this rank's part ``data`` at ``offset`` of the derived dataset ``path``
        of ``shape`` (every rank that writes a part names the same shape and type;
        ranks that write no part need not call it: a time series, say, of which
        rank 0 writes one element per commit)."""
        array = np.array(data)
        at, whole = tuple(int(o) for o in offset), tuple(int(s) for s in shape)
        fits = len(at) == len(whole) == array.ndim and all(
            o >= 0 and o + n <= s for o, n, s in zip(at, array.shape, whole, strict=True)
        )
        if not fits:
            raise ValueError(
                f"{path}: a part of shape {array.shape} at {at} is outside the shape {whole}"
            )
        self._add(Output(self._path(path), array, at, whole))

    def _path(self, path: str) -> str:
        if not isinstance(path, str) or not path.strip("/"):
            raise ValueError(f"a derived dataset's path is a non-empty string, not {path!r}")
        normal = posixpath.normpath("/" + path.lstrip("/"))
        if normal == self.dataset:
            raise ValueError(f"{path}: a hook writes derived datasets, not the one it is on")
        return normal

    def _add(self, output: Output) -> None:
        if not self._open:
            raise ValueError(f"{output.path}: the hook has returned; write while it runs")
        if output.data.dtype.kind not in "biufc":
            raise TypeError(f"{output.path}: derived data must be numbers, not {output.data.dtype}")
        self.outputs.append(output)

    def close(self) -> tuple[Spec, ...]:
        """No more writes; the specs of what was written."""
        self._open = False
        return tuple(output.spec for output in self.outputs)
