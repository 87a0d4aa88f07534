"""The functions the C shim calls, one per HDF5 operation it maps onto the core.

Contract with vol_plugin/src (keep both sides in step):

- Handles are the objects of `esdm_hpc.vol.objects`; the C side treats them
  as opaque and passes them back.
- A location plus a name is how HDF5 addresses objects; the C side passes
  ``"."`` for the location itself.
- Data crosses as memoryviews of the application's (or the shim's) memory,
  valid only during the call: nothing here may keep a reference to them.
  Values are packed in the dataset's type (the C side converts), block after
  block, each block in C order.
- Blocks are ``nblocks`` boxes packed as uint64 ``[start_0..start_n-1,
  count_0..count_n-1]`` per box (n = the dataset's rank; none for scalars).
- Communicators come as Fortran handles (``MPI_Comm_c2f``), -1 for none; the
  C side owns them and frees them after `file_close`.
- Every exception propagates: the C side turns it into an HDF5 error whose
  message is the exception's text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

import esdm_hpc
from esdm_hpc.vol import dtypes, names
from esdm_hpc.vol.objects import (
    AttributeHandle,
    FileHandle,
    Kind,
    Location,
    NodeHandle,
    group,
    kind_of,
    node,
    resolve,
)

SERIAL = -1

# --- files ---------------------------------------------------------------------------


def file_create(filename: str, truncate: bool, comm_handle: int) -> FileHandle:
    """H5Fcreate: a new container; an existing one only with H5F_ACC_TRUNC (collective)."""
    target = names.resolve(filename)
    container = esdm_hpc.open(
        target.uri, "w", comm=_comm(comm_handle), config=target.config, overwrite=truncate
    )
    return FileHandle(container, filename)


def file_open(filename: str, writable: bool, comm_handle: int) -> FileHandle:
    """H5Fopen: mode "a" for H5F_ACC_RDWR, else "r" (collective)."""
    target = names.resolve(filename)
    mode = "a" if writable else "r"
    container = esdm_hpc.open(target.uri, mode, comm=_comm(comm_handle), config=target.config)
    return FileHandle(container, filename)


def file_flush(file: FileHandle) -> int:
    """H5Fflush: publish what was written as a new epoch (collective); returns it."""
    container = file.container
    return container.commit() if container.writable else container.epoch


def file_close(file: FileHandle) -> None:
    """H5Fclose: commit what is pending (collective) and close.

    If the commit fails (overlapping writes, say) the container is closed
    anyway, its lease released and the last epoch kept: HDF5 will not call
    again for this file.
    """
    container = file.container
    try:
        container.close()
    except BaseException as error:
        container.__exit__(type(error), error, error.__traceback__)
        raise


def file_accessible(filename: str) -> bool:
    """H5Fis_accessible: whether the container exists and can be opened for reading."""
    try:
        target = names.resolve(filename)
        esdm_hpc.open(target.uri, "r", config=target.config).close()
    except (OSError, ValueError):
        return False
    return True


def _comm(handle: int) -> Any:
    if handle == SERIAL:
        return None
    from mpi4py import MPI

    return MPI.Comm.f2py(handle)


# --- groups, links and objects -----------------------------------------------------------


def group_create(location: Location, name: str) -> NodeHandle:
    """H5Gcreate (collective); missing parents are created, as HDF5 does with
    H5Pset_create_intermediate_group."""
    path = resolve(location, name)
    location.file.container.create_group(path)
    return NodeHandle(location.file, path, Kind.GROUP)


def object_open(location: Location, name: str) -> tuple[NodeHandle, int]:
    """H5Gopen, H5Dopen, H5Oopen: the handle and its `Kind`."""
    handle = node(location.file, resolve(location, name))
    return handle, int(handle.kind)


def object_info(location: Location, name: str) -> tuple[int, str, int]:
    """H5Lexists, H5Oexists_by_name, H5Oget_info: (`Kind`, absolute path, number of
    attributes); kind NONE when nothing has that name."""
    path = resolve(location, name)
    kind = kind_of(location.file, path)
    if kind is Kind.NONE:
        return int(kind), path, 0
    return int(kind), path, len(location.file.container[path].attrs)


def group_members(location: Location, name: str) -> list[str]:
    """H5Gget_info, H5Lget_name_by_idx: member names in HDF5's name order."""
    # Code point order of str is byte order of UTF-8, HDF5's name index order.
    return sorted(group(location.file, resolve(location, name)).keys())


def link_list(location: Location, name: str, recursive: bool) -> list[tuple[str, str]]:
    """H5Literate (recursive=False), H5Lvisit and H5Ovisit (True): (name relative to the
    group, absolute path) per link, in name order, each subgroup's links right after it."""
    top = resolve(location, name)
    found: list[tuple[str, str]] = []

    def walk(path: str, prefix: str) -> None:
        for member in group_members(location.file, path):
            relative, absolute = prefix + member, resolve(location.file, f"{path}/{member}")
            found.append((relative, absolute))
            if recursive and kind_of(location.file, absolute) is Kind.GROUP:
                walk(absolute, relative + "/")

    walk(top, "")
    return found


# --- datasets --------------------------------------------------------------------------------


def dataset_create(
    location: Location,
    name: str,
    spelling: str,
    shape: tuple[int, ...],
    maxshape: tuple[int, ...],
    fill: bytes | None,
) -> NodeHandle:
    """H5Dcreate (collective). maxshape -1 is H5S_UNLIMITED; fill is one value or None."""
    dtype = dtypes.to_numpy(spelling)
    path = resolve(location, name)
    options: dict[str, Any] = {"maxshape": tuple(None if m < 0 else m for m in maxshape)}
    if fill is not None:
        options["fillvalue"] = np.frombuffer(fill, dtype=dtype)[0]
    location.file.container.create_dataset(path, shape=shape, dtype=dtype, **options)
    return NodeHandle(location.file, path, Kind.DATASET)


def dataset_describe(handle: NodeHandle) -> tuple[str, tuple[int, ...], tuple[int, ...], bytes]:
    """H5Dopen, H5Dget_space, H5Dget_type: (type, shape, maxshape with -1, fill value)."""
    dataset = handle.dataset()
    maxshape = tuple(-1 if m is None else m for m in dataset.maxshape)
    fill = np.asarray(dataset.fillvalue, dtype=dataset.dtype).tobytes()
    return dtypes.spelling(dataset.dtype), dataset.shape, maxshape, fill


def dataset_write(handle: NodeHandle, nblocks: int, boxes: memoryview, data: memoryview) -> None:
    """H5Dwrite: each block of the packed ``data`` into its box (independent)."""
    dataset = handle.dataset()
    values = np.frombuffer(data, dtype=dataset.dtype)
    for region, start, stop in _blocks(boxes, nblocks, dataset.ndim):
        dataset[region] = values[start:stop].reshape(_count(region))


def dataset_read(handle: NodeHandle, nblocks: int, boxes: memoryview, out: memoryview) -> None:
    """H5Dread: each box into its block of the packed ``out`` (independent)."""
    _publish_own_writes(handle.file)
    dataset = handle.dataset()
    values = np.frombuffer(out, dtype=dataset.dtype)
    for region, start, stop in _blocks(boxes, nblocks, dataset.ndim):
        values[start:stop] = dataset[region].reshape(-1)


def dataset_set_extent(handle: NodeHandle, shape: tuple[int, ...]) -> None:
    """H5Dset_extent (collective)."""
    handle.dataset().resize(shape)


def _blocks(
    boxes: memoryview, nblocks: int, ndim: int
) -> Iterator[tuple[tuple[slice, ...], int, int]]:
    """(region, first, end) per box: its slices and its element range in the packed data."""
    table = np.frombuffer(boxes, dtype=np.uint64).reshape(nblocks, 2, ndim).astype(np.int64)
    first = 0
    for starts, counts in table:
        end = first + int(np.prod(counts))
        yield tuple(slice(s, s + c) for s, c in zip(starts, counts, strict=True)), first, end
        first = end


def _count(region: tuple[slice, ...]) -> tuple[int, ...]:
    return tuple(s.stop - s.start for s in region)


def _publish_own_writes(file: FileHandle) -> None:
    """Let a process alone read what it wrote, as HDF5 programs expect.

    Data becomes visible with a commit (DESIGN 3). A commit is collective, so
    a read (independent) can only trigger one when the process is the whole
    communicator; parallel programs see their writes after H5Fflush.
    """
    container = file.container
    writer = container._writer  # the open epoch; no public "pending" yet
    if container.comm.size == 1 and writer is not None and writer.fragments:
        container.commit()


# --- attributes ---------------------------------------------------------------------------


def attribute_create(
    location: Location, name: str, attribute: str, spelling: str, shape: tuple[int, ...]
) -> AttributeHandle:
    """H5Acreate (collective): the attribute, holding zeros (or "") until written."""
    owner = resolve(location, name)
    attributes = location.file.container[owner].attrs
    if attribute in attributes:
        raise ValueError(f"{owner} already has an attribute {attribute!r}")
    handle = AttributeHandle(location.file, owner, attribute)
    _store_attribute(handle, np.zeros(shape, dtype=_initial_dtype(spelling)))
    return handle


def attribute_open(location: Location, name: str, attribute: str) -> AttributeHandle:
    """H5Aopen."""
    handle = AttributeHandle(location.file, resolve(location, name), attribute)
    handle.stored()  # KeyError now rather than at the first read
    return handle


def attribute_describe(handle: AttributeHandle) -> tuple[str, tuple[int, ...]]:
    """H5Aget_type, H5Aget_space: (type, shape)."""
    value = handle.stored()
    return dtypes.spelling(value.dtype), value.shape


def attribute_write(handle: AttributeHandle, data: memoryview) -> None:
    """H5Awrite of fixed-size values, packed in the attribute's type (collective)."""
    stored = handle.stored()
    value = np.frombuffer(data, dtype=stored.dtype).reshape(stored.shape).copy()
    _store_attribute(handle, value)


def attribute_write_strings(handle: AttributeHandle, values: list[bytes | None]) -> None:
    """H5Awrite of variable-length strings, UTF-8 (None for a null pointer) (collective)."""
    stored = handle.stored()
    text = [b.decode("utf-8", "surrogateescape") if b is not None else "" for b in values]
    _store_attribute(handle, np.array(text, dtype="U").reshape(stored.shape))


def attribute_read(handle: AttributeHandle, out: memoryview) -> None:
    """H5Aread of fixed-size values into ``out``, packed in the attribute's type."""
    stored = handle.stored()
    np.frombuffer(out, dtype=stored.dtype)[...] = stored.reshape(-1)


def attribute_read_strings(handle: AttributeHandle) -> list[bytes]:
    """H5Aread of variable-length strings: each element, UTF-8 encoded."""
    return [str(s).encode("utf-8", "surrogateescape") for s in handle.stored().reshape(-1)]


def attribute_exists(location: Location, name: str, attribute: str) -> bool:
    """H5Aexists."""
    return attribute in location.file.container[resolve(location, name)].attrs


def attribute_delete(location: Location, name: str, attribute: str) -> None:
    """H5Adelete (collective)."""
    del location.file.container[resolve(location, name)].attrs[attribute]


def attribute_names(location: Location, name: str) -> list[str]:
    """H5Aiterate, H5Oget_info (num_attrs): attribute names in name order."""
    return sorted(location.file.container[resolve(location, name)].attrs)


def _initial_dtype(spelling: str) -> np.dtype:
    return np.dtype("U1") if spelling == dtypes.VLEN_STR else dtypes.to_numpy(spelling)


def _store_attribute(handle: AttributeHandle, value: np.ndarray) -> None:
    # Attributes.__setitem__ stores a 0-d str as bytes (it reads back as str
    # either way); HDF5 must get back the variable-length string it wrote,
    # so unicode values go to the namespace as they are.
    container = handle.file.container
    if value.dtype.kind == "U":
        container._set_attribute(handle.owner, handle.name, value)
    else:
        container[handle.owner].attrs[handle.name] = value
