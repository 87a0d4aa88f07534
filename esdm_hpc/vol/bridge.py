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

import atexit
import base64
import functools
import itertools
import math
import posixpath
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

import esdm_hpc
from esdm_hpc import codecs, strings
from esdm_hpc.config import SiteConfig, load_config
from esdm_hpc.container import Container
from esdm_hpc.copying import CopyOptions
from esdm_hpc.dataset import Dataset
from esdm_hpc.empty import Empty
from esdm_hpc.encoding import array_of
from esdm_hpc.errors import ContainerNotFoundError
from esdm_hpc.fragment import Fragment
from esdm_hpc.namespace import ExternalLinkFound, Link
from esdm_hpc.strings import STRING, is_string
from esdm_hpc.vol import anonymous, dtypes, names, values
from esdm_hpc.vol.filters import Filter, codecs_for, reported
from esdm_hpc.vol.objects import (
    AttributeHandle,
    FileHandle,
    Kind,
    Location,
    NodeHandle,
    absolute,
    group,
    kind_of,
    link_name,
    node,
    resolve,
)

SERIAL = -1
T = TypeVar("T")
# how external links open the file they name (object_open's access)
INHERIT, READ_ONLY, READ_WRITE = -1, 0, 1
MAX_EXTERNAL_LINKS = 16  # followed in one lookup before it is taken for a loop
ORDER_TRACKED, ORDER_INDEXED = 1, 2  # H5P_CRT_ORDER_TRACKED, H5P_CRT_ORDER_INDEXED
# H5L_type_t of the link kinds of the namespace; a user-defined link has its class's
LINK_TYPES = {"hard": 0, "soft": 1, "external": 64}
HARD, EXTERNAL = LINK_TYPES["hard"], LINK_TYPES["external"]

# --- files ---------------------------------------------------------------------------


# Containers open in this process, with the number of files sharing each. As HDF5
# does, opening a file that is open already (a second H5Fopen, an external link
# back into it) shares it rather than taking a second writer's lease.
_open: dict[tuple[str, str], tuple[Container, int]] = {}


@atexit.register
def _close_all() -> None:
    """At interpreter exit, commit and close what the application left open, as
    H5Fclose would: HDF5 closes its own IDs only after Python is gone. If an
    uncaught exception ended the program, a container shared with other MPI
    ranks is closed without committing: they may never reach a commit, and a
    collective one would hang the exit (the last committed epoch stands)."""
    died = hasattr(sys, "last_value")
    while _open:
        _, (container, _) = _open.popitem()
        try:
            if died and container.comm.size > 1:
                container.abort()
            else:
                container.close()
        except Exception as error:  # the others still close; this one says why not
            print(f"esdm VOL: closing {container.uri} at exit failed: {error}", file=sys.stderr)


def file_create(filename: str, truncate: bool, comm_handle: int) -> FileHandle:
    """H5Fcreate: a new container; an existing one only with H5F_ACC_TRUNC (collective)."""
    uri, site, key = _target(filename)
    if key in _open:
        raise ValueError(f"{uri} is open: close it before creating it anew")
    container = esdm_hpc.open(uri, "w", comm=_comm(comm_handle), config=site, overwrite=truncate)
    _open[key] = (container, 1)
    return FileHandle(container, filename, key)


def file_open(filename: str, writable: bool, comm_handle: int) -> FileHandle:
    """H5Fopen: mode "a" for H5F_ACC_RDWR, else "r" (collective). A container open in
    this process already is shared; for writing only if it was opened so."""
    uri, site, key = _target(filename)
    if key in _open:
        container, files = _open[key]
        if writable and not container.writable:
            raise ValueError(f"{uri} is open read-only in this process")
    else:
        mode = "a" if writable else "r"
        container = esdm_hpc.open(uri, mode, comm=_comm(comm_handle), config=site)
        files = 0
    _open[key] = (container, files + 1)
    return FileHandle(container, filename, key)


def _target(filename: str) -> tuple[str, SiteConfig, tuple[str, str]]:
    """The container a file name names, its site, and its key among the open ones."""
    target = names.resolve(filename)
    site = load_config(target.config)
    return target.uri, site, (target.uri, site.backend(site.metadata_backend).target)


def file_flush(file: FileHandle) -> int:
    """H5Fflush: publish what was written as a new epoch (collective); returns it."""
    container = file.container
    return container.commit() if container.writable else container.epoch


def file_refresh(file: FileHandle) -> int:
    """H5Drefresh, H5Orefresh of a reader (a SWMR one, say): the newest epoch, which
    it moves on to (collective)."""
    return file.container.refresh()


def file_close(file: FileHandle) -> None:
    """H5Fclose: the last file of a container commits what is pending (collective)
    and closes it.

    If the commit fails (overlapping writes, say) the container is closed
    anyway, its lease released and the last epoch kept: HDF5 will not call
    again for this file.
    """
    container, files = _open.pop(file.key, (file.container, 1))
    if files > 1:
        _open[file.key] = (container, files - 1)
        return
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


def group_create(location: Location, name: str | None, order: int = 0) -> NodeHandle:
    """H5Gcreate, H5Gcreate_anon (name None) (collective); missing parents are
    created, as HDF5 does with H5Pset_create_intermediate_group. order: the
    flags of H5Pset_link_creation_order."""
    container = location.file.container
    path = container.edit("create_group").create_group(
        _new_path(location, name), bool(order & ORDER_TRACKED), bool(order & ORDER_INDEXED)
    )
    return _made(location, path, Kind.GROUP, name is None)


def _new_path(location: Location, name: str | None) -> str:
    """Where a new object goes: ``name`` relative to ``location``, or for an
    anonymous one (name None) a fresh identity that a later H5Olink names."""
    return (
        anonymous.new_identity(location.file.container) if name is None else resolve(location, name)
    )


def _made(location: Location, path: str, kind: Kind, unnamed: bool) -> NodeHandle:
    """The handle on a new object; an anonymous one is dropped when its handle
    goes unless a link names it by then (`anonymous.drop_if_unnamed`)."""
    handle = NodeHandle(location.file, path, kind)
    if unnamed:
        container = location.file.container
        anonymous.hide(container, path)
        weakref.finalize(handle, anonymous.drop_if_unnamed, container, path)
    return handle


def group_creation_order(location: Location, name: str) -> int:
    """H5Gget_create_plist: the H5Pset_link_creation_order flags the group was
    created with."""
    namespace = location.file.container.namespace
    path = group(location.file, resolve(location, name)).name
    if path not in namespace.ordered:
        return 0
    return ORDER_TRACKED if path in namespace.unindexed else ORDER_TRACKED | ORDER_INDEXED


def group_track_order(file: FileHandle, order: int) -> None:
    """H5Fcreate with H5Pset_link_creation_order flags ``order`` in its fcpl:
    the root group tracks creation order (collective)."""
    file.container.edit("track_order").track_order("/", bool(order & ORDER_INDEXED))


def object_open(location: Location, name: str, access: int = INHERIT) -> tuple[NodeHandle, int]:
    """H5Gopen, H5Dopen, H5Oopen: the handle and its `Kind`. Through external links
    the handle is on the container they lead to, opened for it (see `_open_node`);
    its ``file`` is then another `FileHandle`, which the C side closes with the
    last object on it. access: the link access list's H5Pset_elink_acc_flags, as
    `READ_ONLY` or `READ_WRITE`, or `INHERIT`."""
    handle = _open_node(location, name, access, 0)
    return handle, int(handle.kind)


def _open_node(location: Location, name: str, access: int, hops: int) -> NodeHandle:
    """The object ``name`` names; past an external link, in the container the link
    names, opened (or shared, if this process has it open) for as long as the
    handle lives: by this process alone (every rank of an MPI program opens it by
    itself, so that none takes the lease), for writing if ``access`` asks or, by
    default, if the link's file is open so by this process alone."""
    try:
        return node(location.file, resolve(location, name))
    except ExternalLinkFound as link:
        source = location.file.container
        if access == INHERIT:
            writable = source.writable and source.comm.size == 1
        else:
            writable = access == READ_WRITE
        file, path = _external_file(link, writable, hops), link.path  # `link` goes with the block
    try:
        handle = _open_node(file, path, access, hops + 1)
    except BaseException:
        file_close(file)
        raise
    if handle.file is not file:  # a further external link led elsewhere
        file_close(file)
    return handle


def _external_file(link: ExternalLinkFound, writable: bool, hops: int) -> FileHandle:
    """The file an external link names, opened by this process alone; the caller closes it."""
    if hops >= MAX_EXTERNAL_LINKS:
        raise KeyError(f"more than {MAX_EXTERNAL_LINKS} external links in a row (a loop?)")
    return file_open(link.file, writable, SERIAL)


def _across(location: Location, name: str, query: Callable[[Location, str], T], hops: int = 0) -> T:
    """``query(location, name)``, or past an external link on the way the same query
    in the container the link names, opened for reading for as long as it takes."""
    try:
        return query(location, name)
    except ExternalLinkFound as link:
        file, path = _external_file(link, False, hops), link.path
    try:
        return _across(file, path, query, hops + 1)
    finally:
        file_close(file)


def object_info(location: Location, name: str) -> tuple[int, str, int, int]:
    """H5Oexists_by_name, H5Oget_info: (`Kind`, identity, number of attributes, number
    of hard links); kind NONE when nothing has that name. Past an external link the
    object's in the container it names; one whose container does not exist dangles
    (as a soft link may)."""
    try:
        return _across(location, name, _object_info)
    except ContainerNotFoundError:
        return int(Kind.NONE), absolute(location, name), 0, 0


def _object_info(location: Location, name: str) -> tuple[int, str, int, int]:
    path = resolve(location, name)
    kind = kind_of(location.file, path)
    if kind is Kind.NONE:
        return int(kind), path, 0, 0
    namespace = location.file.container.namespace
    return int(kind), path, len(namespace.attributes.get(path, {})), namespace.hard_links_to(path)


def group_members(location: Location, name: str, by_order: bool = False) -> list[str]:
    """H5Lget_name_by_idx: link names in HDF5's name order (UTF-8 byte order, which
    is code point order) or in creation order."""
    namespace = location.file.container.namespace
    path = group(location.file, resolve(location, name)).name
    return namespace.children_by_order(path) if by_order else namespace.children(path)


def link_at(location: Location, name: str, creation_order: bool, descending: bool, n: int) -> str:
    """The H5L*_by_idx and H5O*_by_idx calls: the n-th link of the group ``name``
    names in name or creation order, as a name relative to ``location``."""
    found = group_members(location, name, creation_order)
    member = _nth(found, descending, n, f"{name} has {len(found)} links")
    return member if name == "." else f"{name}/{member}"


def group_info(location: Location, name: str) -> tuple[int, int]:
    """H5Gget_info: (number of links, next creation order)."""
    path = group(location.file, resolve(location, name)).name
    namespace = location.file.container.namespace
    return len(namespace.children(path)), namespace.next_order.get(path, 0)


LinkRecord = tuple[str, int, str | bytes, int]


def link_info(location: Location, name: str) -> LinkRecord:
    """H5Lget_info, H5Lget_val: (name, H5L_type_t, value, creation order); the value
    is the object's identity (hard), the path (soft), or the bytes HDF5 packs
    (external, user-defined); the creation order is -1 where the group does not
    track it (H5Pset_link_creation_order). KeyError if there is no such link. A group
    on the way may be in another container, through an external link."""
    return _across(location, name, lambda at, path: (name, *_link_info(at, path)[1:]))


def _link_info(location: Location, name: str) -> LinkRecord:
    if name == "." and isinstance(location, NodeHandle):
        # the object itself (H5Gget_objinfo of an open ID), by its identity: a
        # moved object's first name is no link any more
        return name, HARD, location.path, -1
    namespace = location.file.container.namespace
    path = link_name(location, name)
    link = namespace.link(path)
    tracked = posixpath.dirname(path) in namespace.ordered
    order = namespace.order.get(path, 0) if tracked else -1
    return name, _link_type(link), _link_value(link), order


def _link_type(link: Link) -> int:
    return link.user_class if link.kind == "user" else LINK_TYPES[link.kind]


def _link_value(link: Link) -> str | bytes:
    if link.kind == "external":
        # H5Lunpack_elink_val's layout: version 0 and no flags, then two strings
        return b"\0" + link.file.encode() + b"\0" + link.target.encode() + b"\0"
    if link.kind == "user":
        return bytes.fromhex(link.target)
    return link.target


def link_list(
    location: Location,
    name: str,
    recursive: bool,
    by_order: bool = False,
    descending: bool = False,
) -> list[LinkRecord]:
    """H5Literate (recursive=False), H5Lvisit (True): `link_info` per link, names
    relative to the group, in name or creation order, each subgroup's links right
    after it; every group is entered once, through hard links only (as HDF5 does)."""
    namespace = location.file.container.namespace
    top = group(location.file, resolve(location, name)).name
    entered, found = {top}, []

    def walk(path: str, prefix: str) -> None:
        members = group_members(location.file, path, by_order)
        for member in reversed(members) if descending else members:
            record = _link_info(location.file, posixpath.join(path, member))
            found.append((prefix + member, *record[1:]))
            target = record[2]
            enter = record[1] == HARD and target in namespace.groups
            if recursive and enter and target not in entered:
                entered.add(target)
                walk(target, f"{prefix}{member}/")

    walk(top, "")
    return found


def object_list(
    location: Location, name: str, by_order: bool, descending: bool
) -> list[tuple[str, str]]:
    """H5Ovisit: (name relative to the object, identity) of the object itself (".")
    and of every object below it, each once, reached through hard links."""
    top = resolve(location, name)
    if kind_of(location.file, top) is not Kind.GROUP:
        return [(".", top)]
    records = link_list(location, name, True, by_order, descending)
    seen, found = {top}, [(".", top)]
    for relative, kind, target, _ in records:
        if kind == HARD and target not in seen:
            seen.add(target)
            found.append((relative, target))
    return found


def link_exists(location: Location, name: str) -> bool:
    """H5Lexists: whether the link exists (a soft one may dangle); False when a group
    on the way does not."""
    try:
        link_info(location, name)
    except KeyError:
        return False
    return True


def link_create_hard(location: Location, name: str, target: Location, target_name: str) -> None:
    """H5Lcreate_hard, H5Olink (collective): ``name`` becomes another name for the
    object; the first name of an anonymous one becomes its identity, which the
    handle follows."""
    path = resolve(target, target_name)
    new = link_name(location, name)
    location.file.container.create_hard_link(new, path)
    if (
        isinstance(target, NodeHandle)
        and target.path == path
        and path != (identity := location.file.container.namespace.resolve(new))
    ):
        target.follow(identity)


def link_create_soft(location: Location, name: str, value: str) -> None:
    """H5Lcreate_soft (collective): a link holding the path ``value``."""
    location.file.container.create_soft_link(link_name(location, name), value)


def link_delete(location: Location, name: str) -> None:
    """H5Ldelete (collective)."""
    del location.file.container[link_name(location, name)]


def link_create_ud(location: Location, name: str, link_type: int, value: bytes) -> None:
    """H5Lcreate_external (link_type H5L_TYPE_EXTERNAL, value as H5Lunpack_elink_val
    reads it) and H5Lcreate_ud (collective)."""
    external = value[:1] == b"\0" and value[-1:] == b"\0" and value[1:].count(b"\0") == 2
    if link_type == EXTERNAL and external:
        file, path = bytes(value[1:-1]).decode().split("\0")
        link = Link("external", path, file)
    else:  # as HDF5, a malformed external link is kept too: it fails when followed
        link = Link("user", bytes(value).hex(), user_class=link_type)
    location.file.container.edit("create_link").create_link(link_name(location, name), link)


def link_move(
    source: Location, name: str, destination: Location, new_name: str, keep_source: bool
) -> None:
    """H5Lmove (keep_source False) and H5Lcopy (True), within one file (collective)."""
    container = _one_container(source, destination, "links cannot be moved or copied")
    container.edit("move").move_link(
        absolute(source, name), absolute(destination, new_name), keep_source
    )


def _one_container(source: Location, destination: Location, refusal: str) -> Container:
    """The container both locations are in; ValueError with ``refusal`` if two."""
    if source.file.container is not destination.file.container:
        raise ValueError(f"{refusal} between files")
    return source.file.container


def object_copy(
    source: Location,
    name: str,
    destination: Location,
    new_name: str,
    flags: tuple[bool, bool, bool],
) -> None:
    """H5Ocopy (collective). flags: (H5O_COPY_WITHOUT_ATTR_FLAG,
    H5O_COPY_SHALLOW_HIERARCHY_FLAG, H5O_COPY_EXPAND_SOFT_LINK_FLAG). Between
    files the data is read from the source as published: a lone process
    publishes its own writes first, as for a read."""
    without_attributes, shallow, expand_soft = flags
    options = CopyOptions(
        attributes=not without_attributes, shallow=shallow, expand_soft_links=expand_soft
    )
    origin, container = source.file.container, destination.file.container
    if origin is not container:
        _publish_own_writes(source.file)
    container.copy_at(
        absolute(source, name),
        absolute(destination, new_name),
        options,
        None if origin is container else origin,
    )


# --- named datatypes -------------------------------------------------------------------------


def datatype_commit(location: Location, name: str | None, spelling: dtypes.Spelling) -> NodeHandle:
    """H5Tcommit, H5Tcommit_anon (name None) (collective): the type as an object
    of its own."""
    path = _new_path(location, name)
    location.file.container.edit("commit_datatype").commit_datatype(path, spelling)
    return _made(location, path, Kind.DATATYPE, name is None)


def datatype_describe(handle: NodeHandle) -> dtypes.Spelling:
    """H5Topen: the named datatype's spelling."""
    return handle.datatype().spelling


# --- datasets --------------------------------------------------------------------------------


# A virtual dataset's mapping: the virtual and the source selection (H5Sencode2),
# the source's file and dataset names.
VirtualMapping = tuple[bytes, str, str, bytes]


def dataset_create(
    location: Location,
    name: str | None,
    spelling: dtypes.Spelling,
    shape: tuple[int, ...] | None,
    maxshape: tuple[int, ...] | None,
    fill: bytes | None,
    chunks: tuple[int, ...] | None = None,
    filters: list[Filter] | None = None,
    virtual: list[VirtualMapping] | None = None,
    external: list[tuple[str, int, int | None]] | None = None,
) -> NodeHandle:
    """H5Dcreate, H5Dcreate_anon (name None) (collective). maxshape -1 is
    H5S_UNLIMITED; shape and maxshape None are a null dataspace (an `Empty` value);
    fill is one value or None; chunks the chunk shape asked for
    (kept as a hint and reported back: ESDM cuts fragments its own way); filters
    the filter pipeline, applied where the core has the codecs and reported back
    (esdm_hpc.vol.filters); virtual the mappings of a virtual dataset (kept as the
    hint ``virtual``, vol_plugin/src/virtual.c reads through them); external the
    segments (file, offset, size or None) of external storage (esdm_hpc/external.py)."""
    dtype = dtypes.string_dtype(spelling) or dtypes.to_numpy(spelling)
    path = _new_path(location, name)
    if shape is None or maxshape is None:
        options: dict[str, Any] = {"data": Empty(dtype)}
    else:
        options = {"maxshape": tuple(None if m < 0 else m for m in maxshape)}
    if fill is not None:
        value = strings.text(fill) if is_string(dtype) else np.frombuffer(fill, dtype)[0]
        options["fillvalue"] = value
    hints: dict[str, Any] = {} if chunks is None else {"chunks": list(chunks)}
    if filters:
        hints["filters"] = [[ident, flags, list(values)] for ident, flags, values in filters]
        hints["codecs"] = codecs_for(filters, is_string(dtype))
    if virtual is not None:
        hints["virtual"] = [
            [_base64(vspace), file, source, _base64(space)]
            for vspace, file, source, space in virtual
        ]
    if external is not None:
        hints["external"] = [list(segment) for segment in external]
    if hints:
        options["hints"] = hints
    location.file.container.create_dataset(path, shape=shape, dtype=dtype, **options)
    return _made(location, path, Kind.DATASET, name is None)


def dataset_describe(
    handle: NodeHandle,
) -> tuple[
    dtypes.Spelling,
    tuple[int, ...] | None,
    tuple[int, ...] | None,
    bytes,
    tuple[int, ...] | None,
    list[Filter],
    bool,
]:
    """H5Dopen, H5Dget_type: (type, shape, maxshape with -1, fill value (a string's
    UTF-8; None for sequences and references), the chunk shape it was created with
    or None, the filters it reports and whether they are derived from its codecs:
    `esdm_hpc.vol.filters.reported`)."""
    dataset = handle.dataset()
    fill: bytes | None = None  # sequences and references: HDF5's (empty, null ones)
    if is_string(dataset.dtype):
        fill = strings.utf8(dataset.fillvalue)
    elif not dtypes.crosses_as_trees(dataset.dtype):
        fill = np.asarray(dataset.fillvalue, dtype=dataset.dtype).tobytes()
    chunks, external = dataset.hints.get("chunks"), dataset.hints.get("external")
    return (
        dtypes.spelling(dataset.dtype),
        *dataset_extent(handle),
        fill,
        None if chunks is None else tuple(chunks),
        *reported(dataset.hints),
        _mappings(dataset.hints),
        None if external is None else [tuple(s) for s in external],
    )


def _mappings(hints: dict[str, Any]) -> list[VirtualMapping] | None:
    kept = hints.get("virtual")
    if kept is None:
        return None
    return [(base64.b64decode(v), file, source, base64.b64decode(s)) for v, file, source, s in kept]


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dataset_extent(
    handle: NodeHandle,
) -> tuple[tuple[int, ...], tuple[int, ...]] | tuple[None, None]:
    """H5Dget_space: (shape, maxshape with -1 for unlimited), (None, None) for a null
    dataspace. h5py asks twice per H5Dwrite, so this is all it costs: no type
    spelling, no fill value."""
    dataset = handle.dataset()
    if dataset.empty:
        return None, None
    return dataset.shape, tuple(-1 if m is None else m for m in dataset.maxshape)


def dataset_write(handle: NodeHandle, nblocks: int, boxes: memoryview, data: memoryview) -> None:
    """H5Dwrite: each block of the packed ``data`` into its box (independent)."""
    dataset = handle.dataset()
    values = np.frombuffer(data, dtype=dataset.dtype)
    for offset, count, start, stop in _blocks(boxes, nblocks, dataset.ndim):
        dataset.write_box(offset, values[start:stop].reshape(count))


def dataset_read(handle: NodeHandle, nblocks: int, boxes: memoryview, out: memoryview) -> None:
    """H5Dread: each box into its block of the packed ``out`` (independent)."""
    _publish_own_writes(handle.file)
    dataset = handle.dataset()
    values = np.frombuffer(out, dtype=dataset.dtype)
    blocks = _blocks(boxes, nblocks, dataset.ndim)
    dataset.read_boxes([(o, values[start:stop].reshape(c)) for o, c, start, stop in blocks])


def dataset_write_strings(
    handle: NodeHandle, nblocks: int, boxes: memoryview, values: list[bytes | None]
) -> None:
    """H5Dwrite of variable-length strings (UTF-8, None for a null pointer): each
    block of ``values`` into its box (independent)."""
    dataset = handle.dataset()
    text = np.array([strings.text(v) for v in values], dtype=STRING)
    for offset, count, start, stop in _blocks(boxes, nblocks, dataset.ndim):
        dataset.write_box(offset, text[start:stop].reshape(count))


def dataset_read_strings(handle: NodeHandle, nblocks: int, boxes: memoryview) -> list[bytes]:
    """H5Dread of variable-length strings: the boxes' strings one after another, UTF-8."""
    _publish_own_writes(handle.file)
    dataset = handle.dataset()
    read = [(o, np.empty(c, dtype=STRING)) for o, c, _, _ in _blocks(boxes, nblocks, dataset.ndim)]
    dataset.read_boxes(read)
    return [strings.utf8(s) for _, block in read for s in block.reshape(-1)]


def dataset_write_values(
    handle: NodeHandle, nblocks: int, boxes: memoryview, trees: list[values.Tree]
) -> None:
    """H5Dwrite of values holding references or variable-length sequences, a tree
    per element (`esdm_hpc.vol.values`): each block of them into its box (independent)."""
    dataset = handle.dataset()
    dtype, digest = dataset.dtype, functools.partial(reference_digest, handle.file)
    elements = array_of([values.from_tree(tree, dtype, digest) for tree in trees], dtype)
    for offset, count, start, stop in _blocks(boxes, nblocks, dataset.ndim):
        dataset.write_box(offset, elements[start:stop].reshape(count))


def dataset_read_values(handle: NodeHandle, nblocks: int, boxes: memoryview) -> list[values.Tree]:
    """H5Dread of values holding references or variable-length sequences: the boxes'
    elements one after another, a tree each."""
    _publish_own_writes(handle.file)
    dataset = handle.dataset()
    dtype, path = dataset.dtype, functools.partial(reference_path, handle.file)
    read = [(o, np.empty(c, dtype=dtype)) for o, c, _, _ in _blocks(boxes, nblocks, dataset.ndim)]
    dataset.read_boxes(read)
    return [values.to_tree(e, dtype, path) for _, block in read for e in block.reshape(-1)]


# --- chunks: what HDF5 programs ask of the chunks of a dataset, answered from its fragments


ChunkRecord = tuple[tuple[int, ...], int, int]  # offset, stored bytes, address


def dataset_chunks(
    handle: NodeHandle,
    chunk: tuple[int, ...],
    low: tuple[int, ...] | None = None,
    high: tuple[int, ...] | None = None,
) -> list[ChunkRecord]:
    """H5Dget_num_chunks, H5Dget_chunk_info(_by_coord), H5Dchunk_iter: the chunks of
    shape ``chunk`` (the one the dataset reports) that hold written data, in HDF5's
    order (of their offsets), each as (offset, stored bytes, address). ESDM keeps
    fragments, not chunks: a chunk holds the parts of the fragments that are read
    in it, its bytes are theirs (in proportion to elements where fragments are
    coded), its address is where in its data log the fragment of its first part
    starts. low, high: the bounds of a selection the chunks meet (None: any)."""
    _publish_own_writes(handle.file)
    sizes: dict[tuple[int, ...], float] = {}
    addresses: dict[tuple[int, ...], int] = {}
    for fragment, offset, count in _live_parts(handle):
        per_element = fragment.replicas[0].length / math.prod(fragment.count)
        spans = [
            range(o // c, (o + n - 1) // c + 1)
            for o, n, c in zip(offset, count, chunk, strict=True)
        ]
        for index in itertools.product(*spans):
            start = tuple(i * c for i, c in zip(index, chunk, strict=True))
            inside = math.prod(
                min(o + n, s + c) - max(o, s)
                for o, n, s, c in zip(offset, count, start, chunk, strict=True)
            )
            sizes[start] = sizes.get(start, 0.0) + inside * per_element
            addresses.setdefault(start, fragment.replicas[0].byte_offset)
    found = [(start, max(1, round(size)), addresses[start]) for start, size in sizes.items()]
    if low is not None and high is not None:
        found = [record for record in found if _meets(record[0], chunk, low, high)]
    return sorted(found)


def _meets(
    start: tuple[int, ...], chunk: tuple[int, ...], low: tuple[int, ...], high: tuple[int, ...]
) -> bool:
    """Whether the chunk at ``start`` meets the box from ``low`` to ``high`` (inclusive)."""
    return all(s <= h and s + c > lo for s, c, lo, h in zip(start, chunk, low, high, strict=True))


def dataset_storage_size(handle: NodeHandle) -> int:
    """H5Dget_storage_size: the stored bytes of the fragments a read of the dataset
    reads from (their first replicas: coded, as stored)."""
    _publish_own_writes(handle.file)
    used = {fragment.id: fragment.replicas[0].length for fragment, _, _ in _live_parts(handle)}
    return sum(used.values())


def dataset_chunk_read(
    handle: NodeHandle, offset: tuple[int, ...], chunk: tuple[int, ...]
) -> tuple[int, bytes]:
    """H5Dread_chunk: (filter mask, bytes) of the chunk at ``offset`` as HDF5 would
    store it: its values in C order (the fill value where nothing was written and
    past the extent), through the dataset's codecs where it has any. The mask has
    the bits of the filters that have no codec (`esdm_hpc.vol.filters`): skipped."""
    _publish_own_writes(handle.file)
    dataset = handle.dataset()
    values = np.full(chunk, dataset.fillvalue, dtype=_fixed_size(dataset))
    inside = _chunk_inside(dataset, offset, chunk)
    values[tuple(slice(0, n) for n in inside)] = dataset.read_box(offset, inside)
    pipeline = codecs.for_dataset(dataset.hints)
    raw = values.reshape(-1).view(np.uint8)
    stored = raw if pipeline is None else pipeline.encode(raw, len(raw))[0]
    return _skipped_filters(dataset), stored.tobytes()


def dataset_chunk_write(
    handle: NodeHandle, offset: tuple[int, ...], chunk: tuple[int, ...], mask: int, data: memoryview
) -> None:
    """H5Dwrite_chunk: the chunk at ``offset`` from the bytes HDF5 would store for
    it, decoded through the dataset's codecs unless ``mask`` skips the filters they
    stand for (all or none of them) (independent)."""
    dataset = handle.dataset()
    dtype = _fixed_size(dataset)
    pipeline = codecs.for_dataset(dataset.hints)
    applied = _applied_filters(dataset)
    raw = np.frombuffer(data, dtype=np.uint8)
    if pipeline is not None and mask & applied != applied:
        if mask & applied:
            raise ValueError(f"{dataset.name}: a chunk with only some of its filters applied")
        decoded = np.empty(math.prod(chunk) * dtype.itemsize, dtype=np.uint8)
        pipeline.decode(raw, np.array([0, len(raw)]), decoded, len(decoded))
        raw = decoded
    if len(raw) != math.prod(chunk) * dtype.itemsize:
        raise ValueError(f"{dataset.name}: {len(raw)} bytes for a chunk of {chunk} {dtype}")
    inside = _chunk_inside(dataset, offset, chunk)
    values = raw.view(dtype).reshape(chunk)[tuple(slice(0, n) for n in inside)]
    dataset.write_box(offset, np.ascontiguousarray(values))


def _fixed_size(dataset: Dataset) -> np.dtype:
    if dtypes.crosses_as_trees(dataset.dtype) or is_string(dataset.dtype):
        raise TypeError(f"{dataset.name}: direct chunk I/O of variable-length values")
    return dataset.dtype


def _chunk_inside(dataset: Dataset, offset: tuple[int, ...], chunk: tuple[int, ...]) -> tuple:
    """The part of the chunk at ``offset`` inside the dataset's extent (its shape)."""
    if len(offset) != dataset.ndim or any(o % c for o, c in zip(offset, chunk, strict=True)):
        raise ValueError(f"{dataset.name}: {offset} is not the offset of a chunk of {chunk}")
    inside = tuple(min(c, s - o) for o, c, s in zip(offset, chunk, dataset.shape, strict=True))
    if any(n <= 0 for n in inside):
        raise ValueError(f"{dataset.name}: the chunk at {offset} is outside {dataset.shape}")
    return inside


def _applied_filters(dataset: Dataset) -> int:
    """The filter mask bits of the dataset's filters its codecs apply."""
    filters = dataset.hints.get("filters", [])
    string = is_string(dataset.dtype)
    has_codec = [bool(codecs_for([(i, f, tuple(v))], string)) for i, f, v in filters]
    return sum(1 << k for k, applied in enumerate(has_codec) if applied)


def _skipped_filters(dataset: Dataset) -> int:
    return ((1 << len(dataset.hints.get("filters", []))) - 1) & ~_applied_filters(dataset)


def _live_parts(handle: NodeHandle) -> Iterator[tuple[Fragment, tuple[int, ...], tuple[int, ...]]]:
    """(fragment, offset, count) of every part of the dataset a read takes from a
    fragment: the committed fragments as the newest ones cover the older."""
    container, dataset = handle.file.container, handle.dataset()
    if dataset.empty or dataset.size == 0:
        return
    view = container.view(container.dataset_meta(dataset.name))
    if not len(view):
        return
    offsets, counts, sources = view.plan((0,) * dataset.ndim, dataset.shape)
    parts = zip(offsets.tolist(), counts.tolist(), sources.tolist(), strict=True)
    for offset, count, source in parts:
        if source >= 0:
            yield view.fragment(source), tuple(offset), tuple(count)


def dataset_set_extent(handle: NodeHandle, shape: tuple[int, ...]) -> None:
    """H5Dset_extent (collective)."""
    handle.dataset().resize(shape)


def _blocks(
    boxes: memoryview, nblocks: int, ndim: int
) -> Iterator[tuple[tuple[int, ...], tuple[int, ...], int, int]]:
    """(offset, count, first, end) per box: where it starts, its shape and its element
    range in the packed data."""
    # Plain ints from the table: per-box numpy scalars cost more than a small write.
    table = boxes.cast("B").cast("Q").tolist()
    first = 0
    for box in range(nblocks):
        k = 2 * ndim * box
        offset, count = tuple(table[k : k + ndim]), tuple(table[k + ndim : k + 2 * ndim])
        end = first + math.prod(count)
        yield offset, count, first, end
        first = end


def _publish_own_writes(file: FileHandle) -> None:
    """Let a process alone read what it wrote, as HDF5 programs expect.

    Data becomes visible with a commit (docs/architecture.md §3.1). A commit is collective, so
    a read (independent) can only trigger one when the process is the whole
    communicator; parallel programs see their writes after H5Fflush.
    """
    container = file.container
    alone = container.comm.size == 1 and container.writable and not container.closed
    if alone and container.open_epoch.writer.pending:
        container.commit()


# --- attributes ---------------------------------------------------------------------------


def attribute_create(
    location: Location,
    name: str,
    attribute: str,
    spelling: dtypes.Spelling,
    shape: tuple[int, ...] | None,
) -> AttributeHandle:
    """H5Acreate (collective): the attribute, holding zeros (or "") until written;
    shape None is a null dataspace (an `Empty` value)."""
    owner = resolve(location, name)
    attributes = location.file.container[owner].attrs
    if attribute in attributes:
        raise ValueError(f"{owner} already has an attribute {attribute!r}")
    handle = AttributeHandle(location.file, owner, attribute)
    dtype = _initial_dtype(spelling)
    _store_attribute(handle, Empty(dtype) if shape is None else values.empty(dtype, shape))
    return handle


def attribute_open(location: Location, name: str, attribute: str) -> AttributeHandle:
    """H5Aopen."""
    handle = AttributeHandle(location.file, resolve(location, name), attribute)
    handle.stored()  # KeyError now rather than at the first read
    return handle


def attribute_describe(
    handle: AttributeHandle,
) -> tuple[dtypes.Spelling, tuple[int, ...] | None]:
    """H5Aget_type, H5Aget_space: (type, shape; None for a null dataspace)."""
    value = handle.stored()
    return dtypes.spelling(value.dtype), None if isinstance(value, Empty) else value.shape


def attribute_write(handle: AttributeHandle, data: memoryview) -> None:
    """H5Awrite of fixed-size values, packed in the attribute's type (collective)."""
    stored = handle.stored()
    value = np.frombuffer(data, dtype=stored.dtype).reshape(stored.shape).copy()
    _store_attribute(handle, value)


def attribute_write_strings(handle: AttributeHandle, values: list[bytes | None]) -> None:
    """H5Awrite of variable-length strings, UTF-8 (None for a null pointer) (collective)."""
    stored = handle.stored()
    text = [strings.text(v) for v in values]
    # UTF-8 ones as numpy unicode; ASCII ones in the core's string dtype, which keeps the cset
    dtype = stored.dtype if is_string(stored.dtype) else np.dtype("U")
    _store_attribute(handle, np.array(text, dtype=dtype).reshape(stored.shape))


def attribute_read(handle: AttributeHandle, out: memoryview) -> None:
    """H5Aread of fixed-size values into ``out``, packed in the attribute's type."""
    stored = handle.stored()
    np.frombuffer(out, dtype=stored.dtype)[...] = stored.reshape(-1)


def attribute_read_strings(handle: AttributeHandle) -> list[bytes]:
    """H5Aread of variable-length strings: each element, UTF-8 encoded."""
    return [strings.utf8(s) for s in handle.stored().reshape(-1)]


def attribute_write_values(handle: AttributeHandle, trees: list[values.Tree]) -> None:
    """H5Awrite of values holding references or variable-length sequences, each
    element as a tree (`esdm_hpc.vol.values`) (collective)."""
    stored = handle.stored()
    file = handle.file
    elements = [
        values.from_tree(tree, stored.dtype, lambda path: reference_digest(file, path))
        for tree in trees
    ]
    _store_attribute(handle, array_of(elements, stored.dtype).reshape(stored.shape))


def attribute_read_values(handle: AttributeHandle) -> list[values.Tree]:
    """H5Aread of values holding references or variable-length sequences: a tree per element."""
    stored = handle.stored()
    file = handle.file
    return [
        values.to_tree(element, stored.dtype, lambda digest: reference_path(file, digest))
        for element in stored.reshape(-1)
    ]


def object_identities(file: FileHandle) -> list[str]:
    """Every object's identity: the C side remembers their tokens at open, which
    references of the 1.10 format (a token as an haddr_t) stored in the file hold."""
    namespace = file.container.namespace
    return [*namespace.groups, *namespace.datasets, *namespace.datatypes]


def reference_digest(file: FileHandle, path: str) -> bytes:
    """What the core stores for a reference to the object at ``path``: the
    `values.digest` of its identity, the same through every hard link to it."""
    kind, identity, *_ = object_info(file, path)
    if kind == Kind.NONE:
        raise KeyError(f"{file.container.uri}: no object {path!r} to refer to")
    return values.digest(identity)


def reference_path(file: FileHandle, digest: bytes) -> str:
    """The object a stored reference names, by its identity (a path to it)."""
    for _, identity in object_list(file, "/", False, False):
        if values.digest(identity) == digest:
            return identity
    raise KeyError(f"{file.container.uri}: a reference names an object that no longer exists")


def attribute_exists(location: Location, name: str, attribute: str) -> bool:
    """H5Aexists."""
    return attribute in location.file.container[resolve(location, name)].attrs


def attribute_delete(location: Location, name: str, attribute: str) -> None:
    """H5Adelete (collective)."""
    del location.file.container[resolve(location, name)].attrs[attribute]


def attribute_names(location: Location, name: str, creation_order: bool = False) -> list[str]:
    """H5Aiterate, H5Oget_info (num_attrs): attribute names in name order, or in the
    order they were created in (H5_INDEX_CRT_ORDER, which netCDF-4 iterates in)."""
    attributes = location.file.container[resolve(location, name)].attrs
    return attributes.in_creation_order() if creation_order else sorted(attributes)


def attribute_at(
    location: Location, name: str, creation_order: bool, descending: bool, n: int
) -> str:
    """H5Aopen_by_idx, H5Adelete_by_idx, H5Aget_name_by_idx, H5Aget_info_by_idx: the
    name of the n-th attribute in name or creation order; IndexError past the last."""
    found = attribute_names(location, name, creation_order)
    return _nth(found, descending, n, f"{resolve(location, name)} has {len(found)} attributes")


def _nth(names: list[str], descending: bool, n: int, having: str) -> str:
    """The n-th of ``names`` counted from either end; IndexError saying ``having``."""
    if n >= len(names):
        raise IndexError(f"{having}, not {n + 1}")
    return names[len(names) - 1 - n if descending else n]


def attribute_rename(location: Location, name: str, old: str, new: str) -> None:
    """H5Arename (collective): the value moves to the new name, which becomes the
    most recently created attribute."""
    owner = resolve(location, name)
    if attribute_exists(location, name, new):
        raise ValueError(f"{owner} already has an attribute {new!r}")
    value = AttributeHandle(location.file, owner, old).stored()
    container = location.file.container
    pending = container.edit("renaming an attribute")
    pending.set_attribute(owner, new, value)
    pending.delete_attribute(owner, old)


def _initial_dtype(spelling: dtypes.Spelling) -> np.dtype:
    if spelling == dtypes.VLEN_STR:
        return np.dtype("U1")
    return dtypes.string_dtype(spelling) or dtypes.to_numpy(spelling)


def _store_attribute(handle: AttributeHandle, value: np.ndarray) -> None:
    # Attributes.__setitem__ stores a 0-d str as bytes (it reads back as str
    # either way); HDF5 must get back the variable-length string it wrote,
    # so unicode values go to the namespace as they are.
    container = handle.file.container
    if value.dtype.kind == "U":
        container.edit("writing an attribute").set_attribute(handle.owner, handle.name, value)
    else:
        container[handle.owner].attrs[handle.name] = value
