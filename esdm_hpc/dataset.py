"""Datasets (variables): N-dimensional arrays written in fragments, read by region."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import numpy as np

from esdm_hpc import external, strings
from esdm_hpc.empty import Empty
from esdm_hpc.encoding import VLEN
from esdm_hpc.namespace import DatasetMeta
from esdm_hpc.node import Node
from esdm_hpc.selection import Key, hyperslab
from esdm_hpc.strings import is_string

if TYPE_CHECKING:
    from esdm_hpc.hooks import Hook, OnFailure


# a checked write: the dataset, the offset of the slab, the data in its dtype and shape
PreparedWrite = tuple[DatasetMeta, tuple[int, ...], np.ndarray]


class Dataset(Node):
    """A dataset of a container; ``dset[region]`` reads, ``dset[region] = array`` writes.

    Writes are independent (no other rank takes part) and become visible with
    the next commit; reads return the epoch the container has pinned.
    """

    @property
    def _meta(self) -> DatasetMeta:
        return self._container.dataset_meta(self.name)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._meta.shape

    @property
    def maxshape(self) -> tuple[int | None, ...]:
        return self._meta.maxshape

    @property
    def dtype(self) -> np.dtype:
        """The type of its elements; h5py's ``vlen_dtype(base)`` for variable-length
        sequences (stored as strings: `esdm_hpc.strings.sequences_of`)."""
        stored = self._meta.dtype
        base = strings.sequence_base(stored)
        return stored if base is None else np.dtype("O", metadata={VLEN: base})

    @property
    def dims(self) -> tuple[str, ...]:
        return self._meta.dims

    @property
    def hints(self) -> dict[str, Any]:
        """What the dataset was created with to guide its storage (a copy)."""
        return dict(self._meta.hints)

    @property
    def fillvalue(self) -> Any:
        return self._meta.fillvalue[()]

    @property
    def empty(self) -> bool:
        """Whether it holds an `Empty` value (HDF5's null dataspace): a type, no
        elements; its ``shape`` is (0,) and every read is ``Empty(dtype)``."""
        return self._meta.null

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError(f"{self.name} is a scalar dataset")
        return self.shape[0]

    def __repr__(self) -> str:
        return f'<esdm Dataset "{self.name}": shape {self.shape}, type "{self.dtype.str}">'

    def __getitem__(self, key: Key) -> np.ndarray | Empty:
        if self.empty:
            return Empty(self.dtype)
        meta = self._meta
        slab = hyperslab(key, meta.shape, f"{self.name} read")
        data = self._read(meta, slab.offset, slab.count)
        return _shown(meta, data).reshape(slab.shape)

    def __setitem__(self, key: Key, value: Any) -> None:
        prepared = self._prepare_write(key, value)
        if prepared is not None:
            self._write(*prepared)

    def read_box(
        self, offset: tuple[int, ...], count: tuple[int, ...], out: np.ndarray | None = None
    ) -> np.ndarray:
        """``self[box]`` for the box at ``offset`` of shape ``count``, into ``out`` (C
        contiguous, of that shape and the dataset's dtype) when given: for callers
        that hold boxes and buffers rather than index expressions (the VOL connector)."""
        if out is None:
            out = np.empty(count, dtype=self.dtype)
        elif out.shape != count:
            raise ValueError(f"{self.name}: read into {out.dtype} {out.shape}, not {count}")
        self.read_boxes([(offset, out)])
        return out

    def read_boxes(self, boxes: Sequence[tuple[tuple[int, ...], np.ndarray]]) -> None:
        """For each (offset, out), the box at ``offset`` of ``out``'s shape into ``out``
        (C contiguous, of the dataset's dtype), all planned and read together: one
        H5Dread of many blocks reads like one region."""
        meta = self._meta
        for offset, out in boxes:
            _check_box(meta, offset, out.shape, self.name, "read")
            if out.dtype != meta.dtype:
                raise ValueError(f"{self.name}: read into {out.dtype}, not {meta.dtype}")
        outside = external.segments(meta.hints)
        if outside is None:
            self._container.read_many(meta, boxes)
        for offset, out in boxes:
            if outside is not None:
                out[...] = external.read(outside, meta.dtype, meta.shape, offset, out.shape)
            _shown(meta, out)

    def write_box(self, offset: tuple[int, ...], data: np.ndarray) -> None:
        """``self[box] = data`` for the box at ``offset`` of ``data``'s shape, ``data``
        already of the dataset's dtype: as `read_box`, no index expression to parse."""
        meta = self._meta
        _check_box(meta, offset, data.shape, self.name, "write")
        if data.dtype != meta.dtype:
            raise TypeError(f"{self.name}: {data.dtype} data for a dataset of {meta.dtype}")
        data = _stored(meta, data, self.name)
        if is_string(meta.dtype):
            data = strings.checked(data, f"{self.name}")
        if data.size:
            self._write(meta, offset, data)

    def write_async(self, key: Key, value: Any) -> WriteRequest:
        """Start writing ``value`` to ``self[key]`` and return at once.

        The data is checked now and written by the container's writer thread,
        in the order of the calls; ``value`` must not change until the request
        is done: ``request.wait()``, ``container.wait()``, or the next commit,
        which waits for every request first. Errors are raised by ``wait``.
        """
        prepared = self._prepare_write(key, value)
        if prepared is None:
            return WriteRequest(None)
        if external.segments(prepared[0].hints) is not None:
            self._write(*prepared)  # to its files at once: nothing to wait for
            return WriteRequest(None)
        return WriteRequest(self._container.write_async(*prepared))

    def _read(
        self, meta: DatasetMeta, offset: tuple[int, ...], count: tuple[int, ...]
    ) -> np.ndarray:
        outside = external.segments(meta.hints)
        if outside is None:
            return self._container.read(meta, offset, count)
        return external.read(outside, meta.dtype, meta.shape, offset, count)

    def _write(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        """Into fragments, or into the files of a dataset stored externally."""
        outside = external.segments(meta.hints)
        if outside is None:
            self._container.write(meta, offset, data)
        else:
            external.write(outside, meta.shape, offset, data)

    def _prepare_write(
        self, key: Key, value: Any
    ) -> tuple[DatasetMeta, tuple[int, ...], np.ndarray] | None:
        """(meta, offset, data in the dataset's dtype and the slab's shape), or None if empty."""
        meta = self._meta
        slab = hyperslab(key, meta.shape, f"{self.name} write")
        array = _stored(meta, value, f"{self.name}{slab}")
        if is_string(meta.dtype):
            array = strings.checked(array, f"{self.name}{slab}")
        if array.dtype == meta.dtype and array.shape == slab.shape:
            # data already as it will be stored, the common case: nothing to
            # check, cast or broadcast
            return None if slab.empty else (meta, slab.offset, array.reshape(slab.count))
        if not np.can_cast(array.dtype, meta.dtype, casting="same_kind"):
            raise TypeError(
                f"{self.name}: cannot write {array.dtype} data into a dataset of {meta.dtype}"
            )
        try:
            array = np.broadcast_to(array, slab.shape).reshape(slab.count)
        except ValueError:
            raise ValueError(
                f"{self.name}{slab}: cannot write an array of shape {array.shape} "
                f"into a selection of shape {slab.shape}"
            ) from None
        if slab.empty:
            return None
        return meta, slab.offset, array.astype(meta.dtype, copy=False)

    def on_write(
        self,
        function: Callable[..., Any],
        *,
        args: Mapping[str, Any] | None = None,
        budget: float | None = None,
        on_failure: OnFailure = "record",
        name: str | None = None,
    ) -> Hook:
        """Call ``function(block, offset[, comm], **args)`` after each write of this
        dataset, on the rank that wrote it (registering is collective). What it returns
        goes to the dataset's on_commit hooks (`CommitContext.results`); a Numba
        function taking ``(block, offset)`` is the fast path. See esdm_hpc/hooks/."""
        return self._container.hooks.add(self.name, "write", function, args=args, budget=budget,
                                         on_failure=on_failure, name=name)  # fmt: skip

    def on_commit(
        self,
        function: Callable[..., Any],
        *,
        args: Mapping[str, Any] | None = None,
        budget: float | None = None,
        on_failure: OnFailure = "record",
        name: str | None = None,
        blocks: bool = True,
    ) -> Hook:
        """Call ``function(context, **args)`` on every rank at each commit that follows
        writes of this dataset (collective); ``context.write`` adds derived datasets to
        the epoch being committed, atomically with the raw data. ``blocks=False``: the
        context has no blocks, so writes are not copied for it (a hook that reduces
        what on_write hooks returned). See esdm_hpc/hooks/."""
        return self._container.hooks.add(self.name, "commit", function, args=args, budget=budget,
                                         on_failure=on_failure, name=name,
                                         blocks=blocks)  # fmt: skip

    def keep_last(
        self,
        steps: int,
        *,
        trigger: Callable[..., Any],
        then: int = 0,
        args: Mapping[str, Any] | None = None,
        on_failure: OnFailure = "record",
        name: str | None = None,
    ) -> Hook:
        """Hold the last ``steps`` steps of this dataset in memory only, and persist them
        when ``trigger(context, **args)`` returns true on any rank (collective).

        A step is a commit after writes of the dataset: its writes are held (copies;
        in-situ hooks see them as usual), not written. At each such commit the
        trigger is called like an on_commit hook; when it fires, the held steps,
        that commit's included, are written into the epoch being committed, each
        where it was written (its time index), and the next ``then`` steps are
        written as they come; then holding starts again. ``close()`` persists what
        is held in its commit; ``abort()`` and a crash lose it. Every trigger and
        what it persisted is an event of kind "trigger". See esdm_hpc/hooks/."""
        return self._container.hooks.keep_last(self.name, steps, trigger, then=then, args=args,
                                               on_failure=on_failure, name=name)  # fmt: skip

    def resize(self, shape: tuple[int, ...] | int, axis: int | None = None) -> None:
        """Change the shape within ``maxshape`` (collective).

        Shrinking discards what lies outside the new shape: grown again, the
        dataset shows the fill value there (as HDF5). Older epochs keep it.
        """
        self._container.edit("resize").resize(self.name, _new_shape(self.shape, shape, axis))


class WriteRequest:
    """A write started by ``Dataset.write_async``."""

    def __init__(self, future: Future[None] | None):
        self._future = future

    def done(self) -> bool:
        return self._future is None or self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the data is written (not yet committed); re-raise its error."""
        if self._future is not None:
            self._future.result(timeout)


def _stored(meta: DatasetMeta, value: Any, what: str) -> np.ndarray:
    """``value`` as the dataset stores it: sequences as strings (the others as they are)."""
    base = strings.sequence_base(meta.dtype)
    if base is None:
        return np.asarray(value)
    if isinstance(value, np.ndarray) and value.dtype != object:
        one = np.empty((), dtype=object)  # one sequence (for one element, or all of them)
        one[()] = value
        value = one
    return strings.sequences_as_text(value, base, what)


def _shown(meta: DatasetMeta, data: np.ndarray) -> np.ndarray:
    """What the dataset stores as the reader sees it: strings back into sequences
    (in place, of h5py's dtype of them)."""
    base = strings.sequence_base(meta.dtype)
    if base is None:
        return data
    return strings.text_as_sequences(data, base, data).view(np.dtype("O", metadata={VLEN: base}))


def _check_box(
    meta: DatasetMeta, offset: tuple[int, ...], count: tuple[int, ...], name: str, verb: str
) -> None:
    inside = len(offset) == len(count) == len(meta.shape) and all(
        o >= 0 and o + c <= s for o, c, s in zip(offset, count, meta.shape, strict=True)
    )
    if not inside:
        raise IndexError(
            f"{name} {verb}: the box at {offset} of {count} is outside the extent {meta.shape}"
        )


def _new_shape(
    current: tuple[int, ...], shape: tuple[int, ...] | int, axis: int | None
) -> tuple[int, ...]:
    if axis is None:
        return (
            (int(shape),) if isinstance(shape, int | np.integer) else tuple(int(s) for s in shape)
        )
    if not isinstance(shape, int | np.integer):
        raise TypeError("with axis=, the new size is one integer")
    if not 0 <= axis < len(current):
        raise ValueError(f"axis {axis} is out of range for {len(current)} dimensions")
    return (*current[:axis], int(shape), *current[axis + 1 :])
