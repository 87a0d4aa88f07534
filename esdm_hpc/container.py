"""Containers: the virtual files of ESDM, opened collectively, committed in epochs."""

from __future__ import annotations

import secrets
import warnings
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from esdm_hpc import strings
from esdm_hpc.backends import Backend, open_backend
from esdm_hpc.comm import Comm, agree, as_comm, on_root
from esdm_hpc.config import SiteConfig, load_config
from esdm_hpc.copying import CopyOptions, copy_object
from esdm_hpc.empty import Empty
from esdm_hpc.epochs import lease as leases
from esdm_hpc.epochs.commit import commit
from esdm_hpc.epochs.manifest import Head, Manifest
from esdm_hpc.epochs.store import ContainerStore, Stored
from esdm_hpc.epochs.writer import EpochWriter
from esdm_hpc.errors import ContainerExistsError
from esdm_hpc.fragmentview import FragmentView
from esdm_hpc.group import Group
from esdm_hpc.namespace import DatasetMeta, Link, Namespace, Shrink
from esdm_hpc.reader import read_region
from esdm_hpc.strings import STRING, names_string
from esdm_hpc.uri import container_name

MODES = ("r", "w", "a")
# serialisation: "C" (row-major) or "hilbert" fragments; statistics: keep
# min/max per fragment (costs a pass over the data at write)
KNOWN_HINTS = {"serialisation", "statistics", "chunks"}


@dataclass(slots=True)
class _Opened:
    """What rank 0 finds at open and every rank receives."""

    head: Head
    stored: Stored  # the packs and manifests to load, as stored: each rank decodes them
    lease: leases.Lease | None
    fresh: bool  # "w" with overwrite: the namespace starts empty


def open(
    uri: str,
    mode: str = "r",
    comm: Any = None,
    config: Any = None,
    epoch: int | None = None,
    overwrite: bool = False,
) -> Container:
    """Open the container ``esdm://name`` (collective over ``comm`` when given).

    mode "r" reads the epoch HEAD names (or ``epoch``); "w" creates a container
    (an existing one only with ``overwrite=True``); "a" adds epochs to an
    existing one. "w" and "a" take the container's single-writer lease.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
    if epoch is not None and mode != "r":
        raise ValueError("epoch= travels back in time and is for mode 'r' only")
    comm = as_comm(comm)
    name = container_name(uri)
    agree(comm, "open", {"uri": uri, "mode": mode, "epoch": epoch, "overwrite": overwrite})
    site = load_config(config)
    backends = {b.id: open_backend(b) for b in site.backends}
    store = ContainerStore(name, backends, site.metadata_backend)
    session = on_root(comm, lambda: secrets.token_hex(4))
    opened = on_root(comm, lambda: _open_on_root(store, mode, epoch, overwrite, session))
    return Container(
        uri=f"esdm://{name}",
        mode=mode,
        comm=comm,
        config=site,
        store=store,
        backends=backends,
        session=session,
        opened=opened,
    )


def _open_on_root(
    store: ContainerStore, mode: str, epoch: int | None, overwrite: bool, session: str
) -> _Opened:
    exists = store.exists()
    if mode == "w" and exists and not overwrite:
        raise ContainerExistsError(
            f"esdm://{store.name} already exists: open it with mode 'a' to add epochs, "
            "or pass overwrite=True to start it afresh"
        )
    lease = leases.acquire(store, session) if mode in ("w", "a") else None
    try:
        if mode == "w" and not exists:
            store.publish(Manifest(0, None, _now(), {}, Namespace().to_json()))
        head = store.head()
        if epoch is not None and not 0 <= epoch <= head.epoch:
            raise ValueError(
                f"esdm://{store.name} has epochs 0..{head.epoch}; epoch {epoch} does not exist"
            )
        stored = store.load(head, epoch)
    except BaseException:
        if lease is not None:
            leases.release(store, lease)
        raise
    return _Opened(head, stored, lease, fresh=mode == "w" and exists)


# the names anonymous objects have until a link names them (`Container._anonymous_name`)
ANONYMOUS = ".anonymous-"


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.UTC).isoformat()


class Container(Group):
    """An open container. Use ``esdm_hpc.open`` to get one."""

    def __init__(
        self,
        *,
        uri: str,
        mode: str,
        comm: Comm,
        config: SiteConfig,
        store: ContainerStore,
        backends: Mapping[str, Backend],
        session: str,
        opened: _Opened,
    ):
        super().__init__(self, "/")
        self.uri = uri
        self.mode = mode
        self.comm = comm
        self.config = config
        self._store = store
        self._backends = backends
        self._session = session
        self._manifests: list[Manifest] = []
        self._records: dict[str, list[dict[str, Any]]] = defaultdict(list)  # per dataset
        self._views: dict[str, FragmentView] = {}
        self._head = opened.head
        # of the shown epoch's manifest (HEAD's, unless travelled back): refresh
        # checks that the newer part of the chain leads back to it
        self._checksum = opened.stored.manifests[-1][1]
        packed, manifests = opened.stored.decode()
        self._absorb_records(packed)
        self._absorb(manifests)
        committed = Namespace.from_json(self._manifests[-1].namespace)
        self._namespace = Namespace() if opened.fresh else committed
        self._dirty = opened.fresh
        self._writer: EpochWriter | None = None
        self._async: ThreadPoolExecutor | None = None  # started by the first write_async
        self._requests: list[Future[None]] = []
        self._generation = 0
        self._anonymous_next = 0  # see _anonymous_name
        if self.writable:
            self._writer = self._new_writer()
        self._closed = False
        # rank 0 holds the lease for all, renewed while the process lives
        self._lease = (
            leases.LeaseKeeper(store, opened.lease)
            if opened.lease is not None and comm.rank == 0
            else None
        )

    # --- state ----------------------------------------------------------------

    @property
    def writable(self) -> bool:
        return self.mode in ("w", "a")

    @property
    def epoch(self) -> int:
        """The committed epoch this container shows."""
        return self._manifests[-1].epoch

    @property
    def head(self) -> Head:
        return self._head

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mode {self.mode!r}, epoch {self.epoch}"
        return f"<esdm Container {self.uri} ({state})>"

    def __enter__(self) -> Container:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    # --- collective operations -------------------------------------------------

    def commit(self) -> int:
        """Publish everything written since the last commit as a new epoch (collective).

        A refused commit (overlapping writes, a storage error) raises the same
        error on every rank and discards the epoch: data and namespace changes
        since the last commit are dropped, the container shows that commit.
        """
        writer = self._require_writable("commit")
        lease = None if self._lease is None else self._lease.lease
        try:
            done = commit(
                self.comm, self._store, self._namespace, writer, self._head, self._manifests,
                lease, local_error=self._finish_requests(),
            )  # fmt: skip
        except BaseException:
            writer.discard()  # its logs are orphans now, for gc
            self._namespace = Namespace.from_json(self._manifests[-1].namespace)
            self._dirty = False
            self._writer = self._new_writer()
            raise
        writer.close()
        self._head = done.head
        self._checksum = done.head.checksum
        self._absorb([done.manifest])
        # the manifests packed by this commit: their records are kept, they are not
        self._manifests = [m for m in self._manifests if m.epoch > done.manifest.packed]
        self._namespace = Namespace.from_json(done.manifest.namespace)
        self._dirty = False
        self._writer = self._new_writer()
        return self.epoch

    def wait(self) -> None:
        """Block until every ``write_async`` of this process is written; raise the first error."""
        error = self._finish_requests()
        if error is not None:
            raise error

    def _finish_requests(self) -> Exception | None:
        requests, self._requests = self._requests, []
        errors = [r.exception() for r in requests]
        return next((e for e in errors if e is not None), None)

    def refresh(self) -> int:
        """Move a reader on to the newest committed epoch (collective); returns it."""
        if self.writable:
            return self.epoch
        current, checksum = self.epoch, self._checksum

        def newer() -> tuple[Head, list[Manifest]]:
            head = self._store.head()
            if head.epoch == current:
                return head, []
            return head, self._store.chain(head, since=current, since_checksum=checksum)

        head, manifests = on_root(self.comm, newer)
        self._head = head
        self._checksum = head.checksum
        if manifests:
            self._absorb(manifests)
            self._namespace = Namespace.from_json(manifests[-1].namespace)
        return self.epoch

    def close(self) -> None:
        """Commit what is pending (collective) and release the lease.

        A refused commit is raised after the container is closed and the lease
        released: a next writer can open it at once."""
        if self._closed:
            return
        try:
            if self._writer is not None:
                pending = self._dirty or self._writer.pending or bool(self._requests)
                if any(self.comm.allgather(pending)):
                    self.commit()
        finally:
            self._abort()

    def _abort(self) -> None:
        # Leaves the open epoch uncommitted: its logs become orphans for gc.
        self._closed = True
        if self._async is not None:
            self._async.shutdown(wait=True)
            self._async = None
        if self._writer is not None:
            self._writer.discard()
            self._writer = None
        keeper, self._lease = self._lease, None
        try:
            if keeper is not None:
                keeper.release()
        finally:
            for backend in self._backends.values():
                backend.close()

    # --- internals used by Group, Dataset and Attributes ------------------------

    def _absorb(self, manifests: list[Manifest]) -> None:
        for manifest in manifests:
            self._manifests.append(manifest)
            self._absorb_records(manifest.records)

    def _absorb_records(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self._records[record["dataset"]].append(record)
            self._views.pop(record["dataset"], None)

    def _new_writer(self) -> EpochWriter:
        # A refused commit leaves its logs (orphans for gc) under the same epoch
        # number the next writer uses: the generation keeps their names apart.
        self._generation += 1
        return EpochWriter(
            self._store,
            self.config,
            rank=self.comm.rank,
            epoch=self._head.epoch + 1,
            session=f"{self._session}.{self._generation}",
        )

    def _require_writable(self, what: str) -> EpochWriter:
        if self._closed:
            raise ValueError(f"{self.uri} is closed")
        if self._writer is None:
            raise PermissionError(
                f"{self.uri}: {what} needs mode 'w' or 'a' (opened {self.mode!r})"
            )
        return self._writer

    def _dataset_meta(self, path: str) -> DatasetMeta:
        try:
            return self._namespace.datasets[path]
        except KeyError:
            raise KeyError(f"{self.uri}: no dataset {path!r}") from None

    def _view(self, meta: DatasetMeta) -> FragmentView:
        view = self._views.get(meta.path)
        if view is None or view.shrinks != meta.shrinks:
            records = [
                r for r in self._records.get(meta.path, ()) if r["epoch"] > meta.created_epoch
            ]
            where = f"{self.uri} {meta.path}"
            view = FragmentView(records, len(meta.shape), meta.shrinks, where)
            self._views[meta.path] = view
        return view

    def _read(
        self,
        meta: DatasetMeta,
        offset: tuple[int, ...],
        count: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        if self._closed:
            raise ValueError(f"{self.uri} is closed")
        return read_region(meta, self._view(meta), offset, count, self._backends, out)

    def _settled_writer(self, what: str) -> EpochWriter:
        """The open epoch's writer once every ``write_async`` before this call is
        written: what comes next (a write, a shrink, a copy) takes effect after
        them, in the order of the calls. Their errors wait for the commit."""
        writer = self._require_writable(what)
        if self._requests and not self._requests[-1].done():
            wait_for(self._requests[-1:])  # one thread: the last one is done last
        return writer

    def _write(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        self._settled_writer(f"writing {meta.path}").write(meta, offset, data)

    def _write_async(
        self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray
    ) -> Future[None]:
        writer = self._require_writable(f"writing {meta.path}")
        if self._async is None:
            # one thread: writes land in call order, as synchronous ones do
            self._async = ThreadPoolExecutor(1, thread_name_prefix="esdm-write")
        request = self._async.submit(writer.write, meta, offset, data)
        self._requests.append(request)
        return request

    def _collective(self, call: str, arguments: dict[str, Any]) -> None:
        """Check a namespace change is allowed and that every rank makes the same one.

        Callers set ``_dirty`` only once the change succeeded, so a refused
        change does not make ``close()`` commit an empty epoch.
        """
        self._require_writable(call)
        agree(self.comm, call, arguments)

    def _create_group(self, path: str, track_order: bool, indexed: bool = True) -> str:
        self._collective(
            "create_group", {"path": path, "track_order": track_order, "indexed": indexed}
        )
        name = self._free_name(path)
        self._add_name(name)
        self._namespace.groups.add(name)
        if track_order:
            self._order_links(name, indexed)
        self._dirty = True
        return name

    def _track_order(self, group: str, indexed: bool = True) -> None:
        """List the links of ``group`` in creation order by default (HDF5's
        H5Pset_link_creation_order; ``indexed`` is only reported back)."""
        self._collective("track_order", {"group": group, "indexed": indexed})
        self._order_links(self._namespace.resolve(group), indexed)
        self._dirty = True

    def _order_links(self, group: str, indexed: bool) -> None:
        self._namespace.ordered.add(group)
        if not indexed:
            self._namespace.unindexed.add(group)

    def _create_link(self, path: str, link: Link) -> None:
        """A link at ``path``: hard (``link.target`` a path to an object), soft,
        external or user-defined (kept as they are)."""
        self._collective("create_link", {"path": path, **link.to_json()})
        if link.kind == "hard":
            link = Link("hard", self._namespace.resolve(link.target))
        name = self._free_name(path)
        self._add_name(name)
        if link.kind == "hard" and self._fresh_anonymous(link.target):
            # its first name becomes its identity: what lists and shows datasets
            # (esdm info, Dataset.name) shows that name, not an anonymous one
            self._namespace.rename(link.target, name)
            self._settled_writer("naming").rename(link.target, name)
        else:
            self._namespace.links[name] = link
        self._dirty = True

    def _fresh_anonymous(self, identity: str) -> bool:
        """Whether ``identity`` is an anonymous object that nothing refers to yet: no
        name, no committed record (created since the last commit)."""
        namespace = self._namespace
        if identity not in namespace.unlinked or namespace.hard_links_to(identity):
            return False
        committed = self._manifests[-1].namespace
        known = (committed["groups"], committed["datasets"], committed.get("datatypes", {}))
        return not any(identity in k for k in known)

    def _move_link(self, source: str, destination: str, keep_source: bool = False) -> None:
        """Rename the link ``source`` to ``destination`` (HDF5's H5Lmove), or with
        ``keep_source`` copy it there (H5Lcopy). The new name is the newest in its
        group; a moved object keeps its identity, so open handles still reach it."""
        self._collective(
            "copy_link" if keep_source else "move_link",
            {"source": source, "destination": destination},
        )
        namespace = self._namespace
        old = namespace.locate(source)
        link = namespace.link(old)
        name = self._free_name(destination)
        # As HDF5, by name: a group may not move below its own name, though a
        # hard link elsewhere may close a cycle.
        inside = f"{destination}/".startswith(f"{source}/") or name.startswith(f"{old}/")
        if inside and not keep_source:
            raise ValueError(f"{self.uri}: cannot move the group {source!r} into itself")
        self._add_name(name)
        namespace.links[name] = link
        if not keep_source:
            namespace.remove(old)
        self._dirty = True

    def _delete_link(self, path: str) -> None:
        """Delete the name ``path``; its object goes with its last name."""
        self._collective("delete_link", {"path": path})
        self._namespace.remove(self._namespace.locate(path))
        self._dirty = True

    def _copy(
        self,
        source: str,
        destination: str,
        options: CopyOptions,
        origin: Container | None = None,
    ) -> str:
        """Copy the object at ``source`` (in ``origin``, by default this container)
        to ``destination`` (collective; see copying.py)."""
        arguments = {"source": source, "destination": destination, **asdict(options)}
        if origin is not None:
            arguments["origin"] = origin.uri
        self._collective("copy", arguments)
        self._settled_writer("copying")
        name = copy_object(self, source, destination, options, origin)
        self._dirty = True
        return name

    def _anonymous_name(self) -> str:
        """The identity for a new object without a name (HDF5's H5Dcreate_anon and
        kin): at the root, hidden by `_hide` until a link names it. Never one this
        container handed out before: a handle's `_drop_if_unnamed` must not find
        another object under the name its object had until a link renamed it."""
        n = self._anonymous_next
        while self._namespace.taken(f"/{ANONYMOUS}{n}"):
            n += 1
        self._anonymous_next = n + 1
        return f"/{ANONYMOUS}{n}"

    def _hide(self, path: str) -> None:
        """Make the object just created at ``path`` anonymous: alive, unlisted."""
        self._namespace.order.pop(path, None)
        self._namespace.unlinked.add(path)

    def _drop_if_unnamed(self, identity: str) -> None:
        """Drop an anonymous object that no link names: HDF5 does when its last ID
        closes (collective, as closing it is in parallel HDF5)."""
        namespace = self._namespace
        if self._closed or identity not in namespace.unlinked or namespace.hard_links_to(identity):
            return
        self._collective("drop", {"path": identity})
        namespace.collect(identity)
        self._dirty = True

    def _commit_datatype(self, path: str, spelling: Any) -> None:
        """A named datatype (HDF5's committed datatype) at ``path``."""
        self._collective("commit_datatype", {"path": path, "type": spelling})
        name = self._free_name(path)
        self._add_name(name)
        self._namespace.datatypes[name] = spelling
        self._dirty = True

    def _set_attribute(self, path: str, key: str, value: np.ndarray | Empty) -> None:
        shown = repr(value) if isinstance(value, Empty) else value.tolist()
        self._collective("attrs.__setitem__", {"path": path, "key": key, "value": shown})
        self._namespace.attributes.setdefault(path, {})[key] = value
        self._dirty = True

    def _delete_attribute(self, path: str, key: str) -> None:
        self._collective("attrs.__delitem__", {"path": path, "key": key})
        attributes = self._namespace.attributes.get(path, {})
        if key not in attributes:
            raise KeyError(f"{path} has no attribute {key!r}")
        del attributes[key]
        self._dirty = True

    def _free_name(self, path: str) -> str:
        """The name a new object or link at ``path`` gets: its groups followed
        through links. ValueError if that name is taken."""
        name = self._namespace.locate(path)
        if self._namespace.taken(name):
            raise ValueError(f"{self.uri}: {path!r} already exists")
        return name

    def _add_name(self, name: str) -> None:
        """Record the new ``name`` in its group, making missing groups on the way."""
        parts = name.strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/" + "/".join(parts[:depth])
            if parent in self._namespace.groups:
                continue
            if self._namespace.taken(parent):
                raise ValueError(f"{self.uri}: {parent!r} is not a group")
            self._namespace.groups.add(parent)
            self._namespace.name(parent)
        self._namespace.name(name)

    def _create_dataset(self, path: str, shape: Any, dtype: Any, **options: Any) -> None:
        data = options.pop("data", None)
        unknown = set(options) - {"maxshape", "dims", "fillvalue", "hints"}
        if unknown:
            raise TypeError(f"create_dataset got unknown options {sorted(unknown)}")
        if data is not None:
            data = np.asarray(data)
            shape = data.shape if shape is None else shape
            dtype = data.dtype if dtype is None else dtype
        arguments = {"path": path, "shape": shape, "dtype": str(dtype), **options}
        if data is not None:
            arguments["data"] = (data.shape, data.dtype.str)
        self._collective("create_dataset", arguments)
        name = self._free_name(path)
        meta = _dataset_meta(name, shape, dtype, epoch=self._head.epoch, **options)
        self._add_name(name)
        self._namespace.datasets[name] = meta
        self._dirty = True
        if data is not None and self.comm.rank == 0 and data.size:
            self[name][...] = data

    def _resize(self, path: str, shape: tuple[int, ...]) -> None:
        self._collective("resize", {"path": path, "shape": shape})
        meta = self._dataset_meta(path)
        if len(shape) != len(meta.shape):
            raise ValueError(f"{path}: resize to {shape} changes the number of dimensions")
        for axis, (new, limit) in enumerate(zip(shape, meta.maxshape, strict=True)):
            if new < 0 or (limit is not None and new > limit):
                bound = "any size" if limit is None else limit
                raise ValueError(f"{path}: axis {axis} can grow to {bound}, not {new}")
        shrink = None
        if any(new < old for new, old in zip(shape, meta.shape, strict=True)):
            shrink = self._shrink(shape)
        self._namespace.datasets[path] = meta.resized(shape, shrink)
        self._dirty = True

    def _shrink(self, shape: tuple[int, ...]) -> Shrink:
        """The record of a shrink now: which writes of this epoch came before it."""
        writer = self._settled_writer("resizing")
        marks = self.comm.allgather(len(writer.fragments))
        return Shrink(shape, writer.epoch, tuple(marks))


def _dataset_meta(
    path: str,
    shape: Any,
    dtype: Any,
    *,
    epoch: int,
    maxshape: Any = None,
    dims: Any = None,
    fillvalue: Any = None,
    hints: dict[str, Any] | None = None,
) -> DatasetMeta:
    if shape is None:
        raise ValueError(f"{path}: create_dataset needs a shape (or data)")
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    if not all(isinstance(s, int | np.integer) and s >= 0 for s in shape):
        raise ValueError(f"{path}: shape must be non-negative integers, not {shape}")
    shape = tuple(int(s) for s in shape)
    try:
        dt = STRING if names_string(dtype) else np.dtype("f8" if dtype is None else dtype)
    except (TypeError, ValueError, SyntaxError) as error:  # numpy's parser, for any string
        raise TypeError(f"{path}: unsupported dtype {dtype!r} ({error})") from None
    if dt is not STRING:
        if dt.hasobject:
            raise TypeError(
                f"{path}: dtype {dt} holds Python objects; use str for variable-length strings"
            )
        if _has_kind(dt, "Mm"):
            raise TypeError(
                f"{path}: dtype {dt} (datetime64/timedelta64) is not supported; store times "
                "as numbers with a units attribute, as CF and netCDF do"
            )
        if dt.itemsize == 0:
            raise TypeError(f"{path}: dtype {dt} has no bytes per element; nothing could be stored")
        if dt.subdtype is not None:
            raise TypeError(
                f"{path}: dtype {dt} is an array type; give its shape {dt.shape} to the dataset"
            )
    maxshape = shape if maxshape is None else tuple(maxshape)
    if len(maxshape) != len(shape) or any(
        m is not None and (not isinstance(m, int | np.integer) or m < s)
        for m, s in zip(maxshape, shape, strict=True)
    ):
        raise ValueError(f"{path}: maxshape {maxshape} must be None or >= shape {shape} per axis")
    dims = tuple(f"dim_{i}" for i in range(len(shape))) if dims is None else tuple(dims)
    if len(dims) != len(shape) or not all(isinstance(d, str) and d for d in dims):
        raise ValueError(f"{path}: dims must name each of the {len(shape)} dimensions")
    hints = dict(hints or {})
    unknown = set(hints) - KNOWN_HINTS
    if unknown:
        raise ValueError(f"{path}: unknown hints {sorted(unknown)} (known: {sorted(KNOWN_HINTS)})")
    if hints.get("serialisation", "C") not in ("C", "hilbert"):
        raise ValueError(f"{path}: hints['serialisation'] is 'C' or 'hilbert'")
    if "chunks" in hints:
        chunks = hints["chunks"]
        if not isinstance(chunks, list | tuple) or len(chunks) != len(shape):
            raise ValueError(f"{path}: hints['chunks'] needs one size per dimension")
        if not all(isinstance(c, int | np.integer) and c > 0 for c in chunks):
            raise ValueError(f"{path}: hints['chunks'] must be positive integers, not {chunks}")
        hints["chunks"] = [int(c) for c in chunks]
    if dt is STRING:
        if hints.get("statistics") or hints.get("serialisation", "C") != "C":
            raise ValueError(f"{path}: strings take no statistics or serialisation hints")
        fill = strings.checked(np.asarray("" if fillvalue is None else fillvalue), path)
    else:
        fill = np.zeros((), dtype=dt) if fillvalue is None else _fill(path, fillvalue, dt)
    return DatasetMeta(
        path=path,
        shape=shape,
        maxshape=tuple(None if m is None else int(m) for m in maxshape),
        dtype=dt,
        fillvalue=fill.reshape(()),
        dims=dims,
        created_epoch=epoch,
        hints=hints,
    )


def _has_kind(dtype: np.dtype, kinds: str) -> bool:
    """Whether ``dtype`` or any field or element type in it is of one of ``kinds``."""
    if dtype.fields:
        return any(_has_kind(field[0], kinds) for field in dtype.fields.values())
    if dtype.subdtype is not None:
        return _has_kind(dtype.subdtype[0], kinds)
    return dtype.kind in kinds


def _fill(path: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """``value`` as a 0-d array of ``dtype``; ValueError unless it is one value of it
    that converts as it is (no wrap-around, rounding to an integer, overflow to
    infinity or lost imaginary part: numpy's casts do all of these silently)."""
    try:  # a compound's value may be a tuple of its fields
        fill = np.array(value, dtype=dtype) if dtype.names else np.asarray(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(
            f"{path}: fillvalue {value!r} is not a value of {dtype} ({error})"
        ) from None
    if fill.size != 1:
        raise ValueError(f"{path}: fillvalue must be one value of {dtype}, not {value!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # overflow, invalid value, ComplexWarning
            converted = fill.astype(dtype)
    except (TypeError, ValueError, OverflowError, Warning) as error:
        raise ValueError(
            f"{path}: fillvalue {value!r} is not a value of {dtype} ({error})"
        ) from None
    exact = dtype.kind in "biu" and fill.dtype.kind in "biufc"
    if exact and converted.item() != fill.item():
        raise ValueError(f"{path}: fillvalue {value!r} is not a value of {dtype}")
    return converted.reshape(())
