"""Containers: the virtual files of ESDM, opened collectively, committed in epochs.

A `Container` is a facade (docs/architecture.md §1): what it shows comes from
its `Catalogue` (the committed epochs it loaded), what a writer does goes to
its `OpenEpoch` (data) and `PendingNamespace` (namespace changes), and a
commit hands those to `epochs.commit`. Groups, datasets, attributes, copies
and the VOL connector use the public methods below.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import asdict
from typing import Any, TypeVar

import numpy as np

from esdm_hpc import measured
from esdm_hpc.backends import Backend, BackendError, open_backend
from esdm_hpc.comm import Comm, agree, as_comm, on_root
from esdm_hpc.config import SiteConfig, load_config
from esdm_hpc.copying import CopyOptions, copy_object
from esdm_hpc.creation import dataset_meta
from esdm_hpc.empty import Empty
from esdm_hpc.epochs import events, stageout
from esdm_hpc.epochs import lease as leases
from esdm_hpc.epochs.catalogue import Catalogue
from esdm_hpc.epochs.commit import Parent, Proposal, commit
from esdm_hpc.epochs.manifest import Head, Manifest
from esdm_hpc.epochs.open_epoch import OpenEpoch
from esdm_hpc.epochs.opening import Opened, open_on_root
from esdm_hpc.epochs.pending import PendingNamespace
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import ReplicaUnreachableError
from esdm_hpc.fragmentview import FragmentView
from esdm_hpc.group import Group
from esdm_hpc.hooks import Hook, Hooks, configured
from esdm_hpc.measured import learned_site
from esdm_hpc.namespace import DatasetMeta, Namespace
from esdm_hpc.reader import read_region, read_regions
from esdm_hpc.uri import container_name

MODES = ("r", "w", "a")


T = TypeVar("T")
DRAIN_POLL_SECONDS = 0.2  # how often a read waiting for another node's drain looks


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
    # imported and checked before the lease is taken: a bad hook opens nothing
    hooks = configured(site, name, comm) if mode != "r" else []
    backends = {b.id: open_backend(b) for b in site.backends}
    if site.performance_model == "learned":
        site = on_root(comm, lambda: learned_site(site, backends[site.metadata_backend]))
    store = ContainerStore(name, backends, site.metadata_backend)
    session = on_root(comm, lambda: secrets.token_hex(4))
    opened = on_root(comm, lambda: open_on_root(store, mode, epoch, overwrite, session))
    try:
        return Container(mode=mode, comm=comm, config=site, store=store, session=session,
                         opened=opened, hooks=hooks)  # fmt: skip
    except BaseException:  # the open failed: nothing may keep the lease
        if opened.lease is not None and comm.rank == 0:
            leases.release(store, opened.lease)
        for backend in backends.values():
            backend.close()
        raise


class Container(Group):
    """An open container. Use ``esdm_hpc.open`` to get one."""

    def __init__(
        self,
        *,
        mode: str,
        comm: Comm,
        config: SiteConfig,
        store: ContainerStore,
        session: str,
        opened: Opened,
        hooks: Sequence[Hook] = (),
    ):
        super().__init__(self, "/")
        self.uri = f"esdm://{store.name}"
        self.mode = mode
        self.comm = comm
        self.config = config
        self.store = store
        self._head = opened.head
        self._replicas_seen = opened.head  # new replicas are loaded up to this HEAD
        # of the shown epoch's manifest (HEAD's, unless travelled back): refresh
        # checks that the newer part of the chain leads back to it
        self._checksum = opened.stored.manifests[-1][1]
        self.catalogue = Catalogue(self.uri, *opened.stored.decode())
        self._shown = self.catalogue.namespace()  # a reader's namespace
        self._epoch: OpenEpoch | None = None
        self._pending: PendingNamespace | None = None
        if self.writable:
            self._epoch = OpenEpoch(store, config, comm.rank, session)
            self._epoch.start(self._head.epoch + 1)
            namespace = Namespace() if opened.fresh else self._shown
            self._pending = PendingNamespace(
                comm, self.catalogue, self._epoch, namespace, dirty=opened.fresh
            )
        self._closed = False
        self._staging: stageout.StageOut | stageout.Idle = stageout.Idle()
        if self._epoch is not None:
            self._staging = stageout.start(
                config, store.backends, comm.rank, self._epoch, self.catalogue.records()
            )
        self._hooks = Hooks(self, hooks)
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
    def closed(self) -> bool:
        return self._closed

    @property
    def epoch(self) -> int:
        """The committed epoch this container shows."""
        return self.catalogue.epoch

    @property
    def head(self) -> Head:
        return self._head

    @property
    def backends(self) -> Mapping[str, Backend]:
        return self.store.backends

    @property
    def namespace(self) -> Namespace:
        """The namespace as this container shows it: a writer's with its open epoch's
        changes (its data stays invisible until committed), a reader's as committed."""
        return self._shown if self._pending is None else self._pending.namespace

    @property
    def pending(self) -> bool:
        """Whether this process has anything to commit: writes or namespace changes."""
        return self._pending is not None and (
            self._pending.dirty or self.open_epoch.pending or self._hooks.waiting
        )

    @property
    def hooks(self) -> Hooks:
        """The in-situ hooks of this container (esdm_hpc/hooks/): those the site
        configuration names, and those added (`Dataset.on_write`, `on_commit`,
        `keep_last`)."""
        return self._hooks

    @property
    def open_epoch(self) -> OpenEpoch:
        """The writes of the open epoch (PermissionError for a reader)."""
        return self._writing("writing")

    def _writing(self, what: str) -> OpenEpoch:
        self.edit(what)  # closed or a reader: the error names ``what``
        assert self._epoch is not None
        return self._epoch

    def edit(self, what: str) -> PendingNamespace:
        """The namespace changes of the open epoch, for the collective change ``what``;
        ValueError if closed, PermissionError for a reader."""
        if self._closed:
            raise ValueError(f"{self.uri} is closed")
        if self._pending is None:
            raise PermissionError(
                f"{self.uri}: {what} needs mode 'w' or 'a' (opened {self.mode!r})"
            )
        return self._pending

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mode {self.mode!r}, epoch {self.epoch}"
        return f"<esdm Container {self.uri} ({state})>"

    def __enter__(self) -> Container:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # --- data --------------------------------------------------------------------

    def dataset_meta(self, path: str) -> DatasetMeta:
        return self.namespace.dataset(path, self.uri)

    def view(self, meta: DatasetMeta) -> FragmentView:
        """The index over the committed fragments of ``meta``."""
        return self.catalogue.view(meta)

    def read(
        self,
        meta: DatasetMeta,
        offset: tuple[int, ...],
        count: tuple[int, ...],
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The committed data of the box at ``offset`` of ``count`` (into ``out``)."""
        if self._closed:
            raise ValueError(f"{self.uri} is closed")
        return self._read_again_if_moved(
            lambda: read_region(meta, self.view(meta), offset, count, self.backends, out)
        )

    def read_many(
        self, meta: DatasetMeta, regions: Sequence[tuple[tuple[int, ...], np.ndarray]]
    ) -> None:
        """`read` for several boxes (offset, out), planned and read together."""
        if self._closed:
            raise ValueError(f"{self.uri} is closed")
        self._read_again_if_moved(
            lambda: read_regions(meta, self.view(meta), regions, self.backends)
        )

    def _read_again_if_moved(self, read: Callable[[], T]) -> T:
        """``read``; where storage failed it, again with the replicas committed since
        this container looked (a drain or a repair since deleted or replaced copies
        its records name), if there are any; where it needs a fragment only another
        node's burst buffer holds, again as its drain commits, for up to the
        site's ``drain_wait``."""
        try:
            return read()
        except (BackendError, ReplicaUnreachableError) as error:
            failed: Exception = error
        waits = isinstance(failed, ReplicaUnreachableError)
        deadline = time.monotonic() + (self.config.drain_wait if waits else 0.0)
        while True:
            self._replicas_seen, records = self.store.replicas_since(self._replicas_seen)
            if records:
                self.catalogue.absorb_replicas(records)
                try:
                    return read()
                except ReplicaUnreachableError as error:  # drained in part so far
                    failed = error
            if time.monotonic() >= deadline:
                if waits and self.config.drain_wait:
                    raise ReplicaUnreachableError(
                        f"{failed} (waited {self.config.drain_wait:g} s for its drain)"
                    ) from None
                raise failed
            time.sleep(DRAIN_POLL_SECONDS)

    def write(self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray) -> None:
        """Write ``data`` (of the dataset's dtype) at ``offset`` in the open epoch (or
        hold it in memory: `Dataset.keep_last`)."""
        epoch = self._writing(f"writing {meta.path}")
        if not self._hooks.holds(meta.path):
            epoch.write(meta, offset, data)
        self._hooks.written(meta, offset, data)

    def write_async(
        self, meta: DatasetMeta, offset: tuple[int, ...], data: np.ndarray
    ) -> Future[None]:
        epoch = self._writing(f"writing {meta.path}")
        if self._hooks.holds(meta.path):  # held: a copy is taken now, nothing to wait for
            request: Future[None] = Future()
            request.set_result(None)
        else:
            request = epoch.write_async(meta, offset, data)
        self._hooks.written(meta, offset, data)
        return request

    def wait(self) -> None:
        """Block until every ``write_async`` of this process is written; raise the first error."""
        if self._epoch is None:
            return
        error = self._epoch.finish_requests()
        if error is not None:
            raise error

    # --- collective operations -------------------------------------------------

    def create_dataset_at(self, path: str, shape: Any, dtype: Any, **options: Any) -> str:
        """Create the dataset ``path`` (collective; `Group.create_dataset` is the
        user's call); returns its name."""
        data = options.pop("data", None)
        unknown = set(options) - {"maxshape", "dims", "fillvalue", "hints"}
        if unknown:
            raise TypeError(f"create_dataset got unknown options {sorted(unknown)}")
        null = isinstance(data, Empty)  # a type and no elements (HDF5's null dataspace)
        if null:
            dtype, data = data.dtype if dtype is None else dtype, None
        if data is not None:
            data = np.asarray(data)
            shape = data.shape if shape is None else shape
            dtype = data.dtype if dtype is None else dtype
        arguments = {"path": path, "shape": shape, "dtype": str(dtype), "null": null, **options}
        if data is not None:
            arguments["data"] = (data.shape, data.dtype.str)
        pending = self.edit("create_dataset")
        pending.agree("create_dataset", arguments)
        name = pending.free_name(path)
        meta = dataset_meta(name, shape, dtype, epoch=self.epoch, null=null, **options)
        pending.add_dataset(meta)
        if data is not None and self.comm.rank == 0 and data.size:
            self[name][...] = data
        return name

    def copy_at(
        self, source: str, destination: str, options: CopyOptions, origin: Container | None
    ) -> str:
        """Copy the object at ``source`` (in ``origin``, by default this container)
        to ``destination`` (collective; see copying.py)."""
        arguments = {"source": source, "destination": destination, **asdict(options)}
        if origin is not None:
            arguments["origin"] = origin.uri
        pending = self.edit("copy")
        pending.agree("copy", arguments)
        self.open_epoch.settle()  # the writes in flight come first
        name = copy_object(self, source, destination, options, origin)
        pending.copied()
        return name

    def commit(self) -> int:
        """Publish everything written since the last commit as a new epoch (collective).

        A refused commit (overlapping writes, a storage error) raises the same
        error on every rank and discards the epoch: data and namespace changes
        since the last commit are dropped, the container shows that commit.
        """
        with self._staging.paused():  # the background drain copies nothing meanwhile
            return self._commit()

    def _commit(self) -> int:
        pending, epoch = self.edit("commit"), self.open_epoch
        lease = None if self._lease is None else self._lease.lease
        try:
            # derived datasets go into this epoch, committed with the raw data
            hooked = self._hooks.before_commit(self._head.epoch + 1)
            error = epoch.finish_requests() or hooked.error
            proposal = Proposal(pending.namespace, epoch.writer, error, hooked.events)
            parent = Parent(self._head, self.catalogue.manifests, lease)
            done = commit(self.comm, self.store, proposal, parent)
        except BaseException:
            self._hooks.refused()
            self._staging.refused()
            epoch.end(committed=False)
            pending.reset()
            epoch.start(self._head.epoch + 1)
            raise
        epoch.end(committed=True)
        self._head = done.head
        self._checksum = done.head.checksum
        self.catalogue.absorb([done.manifest])
        self.catalogue.forget_packed()
        pending.reset()
        epoch.start(self._head.epoch + 1)
        self._hooks.committed()
        self._staging.committed(done.manifest)
        return self.epoch

    def log_event(self, kind: str, **fields: Any) -> events.Event:
        """Append the user event ``kind`` with ``fields`` (JSON data) to the container's
        event log (collective: every rank passes the same, rank 0 writes it, every
        rank gets the event or the same error). Any open container may log, a
        reader too; the event records the epoch this container shows."""
        if self._closed:
            raise ValueError(f"{self.uri} is closed")
        events.check_user_event(kind, fields)
        agree(self.comm, "log_event", {"kind": kind, "fields": fields})
        log = events.EventLog(self.store)
        return on_root(self.comm, lambda: log.append(kind, self.epoch, fields))

    def refresh(self) -> int:
        """Move a reader on to the newest committed epoch (collective); returns it."""
        if self.writable:
            return self.epoch
        current, checksum = self.epoch, self._checksum

        def newer() -> tuple[Head, list[Manifest]]:
            head = self.store.head()
            if head.epoch == current:
                return head, []
            return head, self.store.chain(head, since=current, since_checksum=checksum)

        head, manifests = on_root(self.comm, newer)
        self._head = head
        self._checksum = head.checksum
        if manifests:
            self.catalogue.absorb(manifests)
            self._shown = self.catalogue.namespace()
        return self.epoch

    def close(self) -> None:
        """Commit what is pending (collective), the steps held by `Dataset.keep_last`
        included, and release the lease.

        A refused commit is raised after the container is closed and the lease
        released: a next writer can open it at once."""
        if self._closed:
            return
        try:
            if self.writable:  # background outputs and held steps land in the last commit
                self._hooks.finish()
                self._hooks.persist_held()
            if self.writable and any(self.comm.allgather(self.pending)):
                self.commit()
        finally:
            self.abort()

    def abort(self) -> None:
        """Close without committing: the open epoch's logs become orphans for gc."""
        self._closed = True
        self._hooks.close()
        self._staging.close()  # after the copy in progress; the rest waits for esdm drain
        if self.writable and self.comm.rank == 0:
            measured.flush(self.store.meta)  # what this writer's commits taught the site
        if self._epoch is not None:
            self._epoch.close()
            self._epoch = None
        self._pending = None
        keeper, self._lease = self._lease, None
        try:
            if keeper is not None:
                keeper.release()
        finally:
            for backend in self.backends.values():
                backend.close()
