"""Where a container lives: its HEAD, manifest chain and data logs on the backends."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from esdm_hpc.backends import Backend, CompareAndSwap
from esdm_hpc.config import ConfigError
from esdm_hpc.epochs.manifest import (
    Head,
    Manifest,
    Pack,
    PackContents,
    decode_pack,
    encode_pack,
    manifest_name,
    pack_name,
    verify_pack,
)
from esdm_hpc.errors import ContainerNotFoundError, CorruptMetadataError, PublishConflictError
from esdm_hpc.faults import crash_point
from esdm_hpc.kernels.checksum import checksum

# Types that may hold container metadata (docs/architecture.md §3.4): posix and
# memory publish HEAD under the container's lock, s3 by compare-and-swap (its
# backend is a `CompareAndSwap`: an s3 lock would be a lease that a frozen
# holder can outlive). A burst buffer is node-local, out of other nodes' reach.
METADATA_TYPES = ("posix", "memory", "s3")
# The container's lock object (`ContainerStore.locked`), next to HEAD.
LOCK = "LOCK"
# Called before a publication writes anything (in its `ContainerStore.update` of
# HEAD); raises to refuse it.
Guard = Callable[[], None]
# What `ContainerStore.update` is given: the object's content (None: missing),
# and it returns the new content, None to leave it, or b"" to remove it.
Change = Callable[[bytes | None], bytes | None]


@dataclass(frozen=True, slots=True)
class Stored:
    """A container's metadata up to an epoch, as stored: the packs and the manifests
    after them, oldest first, each with what verifies it. Bytes are cheap to
    broadcast; every rank decodes its own copy (pickling the decoded records
    cost more than parsing them: 1.2 s for 80,000)."""

    name: str
    packs: list[tuple[Pack, bytes]]
    manifests: list[tuple[int, int, bytes]]  # epoch, checksum, data
    # later manifests that give fragments new replicas (`ContainerStore.load`)
    later: list[tuple[int, int, bytes]] = field(default_factory=list)

    def decode(self) -> tuple[list[dict[str, Any]], list[Manifest], list[dict[str, Any]]]:
        """The fragment records of the packs, the manifests, and the records of
        later epochs that give the fragments new replicas."""
        packed = []
        for pack, data in self.packs:
            packed += decode_pack(data, pack, f"esdm://{self.name} {pack.name}").fragments
        manifests = [_decode_manifest(self.name, e, c, data) for e, c, data in self.manifests]
        later = [_decode_manifest(self.name, e, c, data) for e, c, data in self.later]
        replicas = [r for m in later for r in m.records if "replicated" in r]
        return packed, manifests, replicas


def _decode_manifest(container: str, epoch: int, expected_checksum: int, data: bytes) -> Manifest:
    where = f"esdm://{container} {manifest_name(epoch)}"
    manifest = Manifest.decode(data, expected_checksum, where)
    if manifest.epoch != epoch:
        raise CorruptMetadataError(f"{where}: holds epoch {manifest.epoch}, not {epoch}")
    return manifest


class ContainerStore:
    """The stored state of one container, read and written through backends.

    Metadata (HEAD and manifests) lives on the configured metadata backend;
    each rank's data log of an epoch lives on every backend it wrote to.
    """

    def __init__(self, name: str, backends: Mapping[str, Backend], metadata_backend: str):
        self.name = name
        self.backends = backends
        self.meta = backends[metadata_backend]
        if self.meta.config.type not in METADATA_TYPES:
            raise ConfigError(
                f"esdm://{name}: the metadata backend {self.meta.id!r} is of type "
                f"{self.meta.config.type!r}, which holds data only; name a posix or s3 "
                "backend in metadata_backend"
            )
        self.prefix = f"containers/{name}/"

    def __repr__(self) -> str:
        return f"<ContainerStore esdm://{self.name} on {self.meta.id}>"

    # --- HEAD and manifests ------------------------------------------------

    def exists(self) -> bool:
        return self.meta.exists(self.prefix + "HEAD")

    def head(self) -> Head:
        where = f"esdm://{self.name} HEAD"
        if not self.exists():
            raise ContainerNotFoundError(f"esdm://{self.name}: no such container")
        return Head.decode(self.meta.read_small(self.prefix + "HEAD"), where)

    def _walk(self, epoch: int, expected: int) -> Iterator[tuple[Manifest, int, bytes]]:
        """The manifests from ``epoch``'s (verified by ``expected``) down to epoch 0,
        each verified by its child: with that checksum and the manifest's bytes.
        Reads one manifest per step: a caller stops when it has what it needs."""
        for below in range(epoch, -1, -1):
            manifest, data = self.read_manifest(below, expected)
            yield manifest, expected, data
            expected = manifest.parent_checksum

    def read_manifest(self, epoch: int, expected_checksum: int | None) -> tuple[Manifest, bytes]:
        """Manifest ``epoch`` and its bytes, verified by ``expected_checksum``; None
        checks only that it is a manifest of that epoch (``esdm verify`` reads on
        that way below a damaged manifest, to find more damage)."""
        data = self._metadata(manifest_name(epoch), "the epoch chain is broken")
        expected = checksum(data) if expected_checksum is None else expected_checksum
        return _decode_manifest(self.name, epoch, expected, data), data

    def read_pack(self, pack: Pack) -> PackContents:
        """The pack a manifest lists as ``pack``, checked against that entry."""
        data = self._metadata(pack.name, "a manifest lists it")
        return decode_pack(data, pack, f"esdm://{self.name} {pack.name}")

    def _metadata(self, name: str, missing: str) -> bytes:
        if not self.meta.exists(self.prefix + name):
            raise CorruptMetadataError(f"esdm://{self.name} {name}: missing ({missing})")
        return self.meta.read_small(self.prefix + name)

    def _walk_to(
        self, head: Head, epoch: int, newest: Manifest, data: bytes
    ) -> Iterator[tuple[Manifest, int, bytes]]:
        """The walk down the chain a load of ``epoch`` (< HEAD's) takes: from manifest
        ``epoch`` if the pack holding epoch+1 (verified by its entry in HEAD's
        manifest, ``newest``, stored as ``data``) records its checksum, else from
        HEAD's (epoch+1 is not packed yet, or its pack is older than packs
        recording checksums)."""
        pack = newest.pack_holding(epoch + 1)
        known = None if pack is None else self.read_pack(pack).manifest_checksum(epoch)
        if known is not None:
            return self._walk(epoch, known)
        assert newest.parent_checksum is not None  # epoch < head.epoch: HEAD's has a parent
        below = self._walk(head.epoch - 1, newest.parent_checksum)
        return itertools.chain([(newest, head.checksum, data)], below)

    def load(self, head: Head, epoch: int | None = None) -> Stored:
        """What a reader of ``epoch`` (default: HEAD's) needs, as stored: the packs its
        manifest lists and the manifests after them up to ``epoch``. The manifests
        are verified each by its child, the packs by their entries, manifest
        ``epoch`` by HEAD or by a pack HEAD's manifest verifies (``_walk_to``)."""
        epoch = head.epoch if epoch is None else epoch
        walked: list[tuple[int, int, bytes]] = []
        lowest, packs, later = 0, [], []
        if epoch == head.epoch:
            walk = self._walk(head.epoch, head.checksum)
        else:
            newest, newest_data = self.read_manifest(head.epoch, head.checksum)
            walk = self._walk_to(head, epoch, newest, newest_data)
            later = self._replicated_after(head, epoch, newest.replicated_in)
        for manifest, verified_by, data in walk:
            if manifest.epoch == epoch:
                packs = manifest.packs
                lowest = manifest.first_unpacked
            if manifest.epoch <= epoch:
                walked.append((manifest.epoch, verified_by, data))
            if manifest.epoch <= lowest:
                break
        stored = Stored(
            self.name,
            [(pack, self._metadata(pack.name, "a manifest lists it")) for pack in packs],
            walked[::-1],
            later,
        )
        for pack, data in stored.packs:  # here too: one error, raised where it was read
            verify_pack(data, pack, f"esdm://{self.name} {pack.name}")
        return stored

    def _replicated_after(
        self, head: Head, epoch: int, replicated_in: list[int]
    ) -> list[tuple[int, int, bytes]]:
        """The manifests after ``epoch`` that give fragments new replicas (drains,
        listed in HEAD's ``replicated_in``), as stored, each with the checksum that
        verified it: a reader of ``epoch`` needs them where a drained fragment's
        burst-buffer copy is gone."""
        wanted = [e for e in replicated_in if e > epoch]
        found = []
        if wanted:
            for manifest, verified_by, data in self._walk(head.epoch, head.checksum):
                if manifest.epoch in wanted:
                    found.append((manifest.epoch, verified_by, data))
                if manifest.epoch <= wanted[0]:
                    break
        return found[::-1]

    def replicas_since(self, seen: Head) -> tuple[Head, list[dict[str, Any]]]:
        """HEAD now, and the records of the epochs after ``seen`` that give fragments
        new replicas (drains, repairs): what a reader loaded before them needs
        once the copies its records name are gone."""
        head = self.head()
        if head.epoch == seen.epoch:
            return head, []
        manifests = self.chain(head, since=seen.epoch, since_checksum=seen.checksum)
        return head, [r for m in manifests for r in m.records if "replicated" in r]

    def write_pack(self, manifests: list[Manifest]) -> Pack:
        """Pack the records and parent checksums of the consecutive ``manifests``
        into one object."""
        data = encode_pack(manifests)
        pack = Pack(pack_name(manifests[0].epoch, manifests[-1].epoch), manifests[0].epoch,
                    manifests[-1].epoch, checksum(data))  # fmt: skip
        # deterministic for a history: a crashed commit's pack is replaced whole
        self.meta.write_atomic(self.prefix + pack.name, data)
        crash_point("publish.pack-written")
        return pack

    def chain(
        self, head: Head, since: int = -1, since_checksum: int | None = None
    ) -> list[Manifest]:
        """Manifests ``since+1 .. head.epoch``, oldest first, each verified by its child.

        ``since_checksum`` is the checksum of the already loaded manifest
        ``since``; the new part of the chain must lead back to it.
        """
        manifests: list[Manifest] = []
        if head.epoch > since:
            for manifest, _, _ in self._walk(head.epoch, head.checksum):
                manifests.append(manifest)
                if manifest.epoch == since + 1:
                    break
        leads_to = manifests[-1].parent_checksum if manifests else head.checksum
        if since >= 0 and leads_to != since_checksum:
            raise CorruptMetadataError(
                f"esdm://{self.name}: epoch {since} was replaced since it was loaded"
            )
        manifests.reverse()
        return manifests

    @property
    def swaps(self) -> bool:
        """Whether metadata objects are replaced by compare-and-swap (s3), not under a lock."""
        return isinstance(self.meta, CompareAndSwap)

    def locked(self) -> AbstractContextManager[None]:
        """The container's lock, where metadata is not swapped: publishing HEAD and
        changing the lease happen under it (`update`)."""
        return self.meta.locked(self.prefix + LOCK)

    def update(self, name: str, change: Change) -> bool:
        """Replace the container's metadata object ``name`` (HEAD, LEASE) by what
        ``change`` makes of its content, as one step no other writer comes
        between; whether it was replaced.

        Under the container's lock (posix, memory): always. By compare-and-swap
        where the metadata backend swaps (s3): the object is replaced only if it
        is still as it was read, else False (another writer was first; its change
        stands). ``change`` raises to refuse. Removing empties the object there,
        as S3 cannot delete conditionally; an empty object reads as missing.
        """
        path = self.prefix + name
        meta = self.meta
        if not isinstance(meta, CompareAndSwap):
            with self.locked():
                new = change(meta.read_small(path) if meta.exists(path) else None)
                if new == b"":
                    meta.delete(path)
                elif new is not None:
                    meta.write_atomic(path, new)
            return True
        stored = meta.read_versioned(path)
        content = None if stored is None or stored.data == b"" else stored.data
        new = change(content)
        if new is None or (new == b"" and content is None):
            return True
        return meta.replace_if(path, new, None if stored is None else stored.version) is not None

    def publish(
        self, manifest: Manifest, parent: Head | None = None, guard: Guard | None = None
    ) -> Head:
        return self.publish_encoded(manifest.epoch, manifest.encode(), parent, guard)

    def publish_encoded(
        self, epoch: int, data: bytes, parent: Head | None = None, guard: Guard | None = None
    ) -> Head:
        """Write the manifest, then point HEAD at it: the atomic step of a commit.

        One `update` of HEAD, so publishing epoch n is exclusive: ``guard`` (the
        writer's lease check) runs first and raises to refuse; then HEAD must
        still be ``parent``, the HEAD the writer built on (None: there is none
        yet), or nothing is written. Where HEAD is swapped, a writer that
        replaced it after this one read it wins, and this one is refused too.
        """
        name = manifest_name(epoch)
        head = Head(epoch, name, checksum(data))

        def point_at_manifest(stored: bytes | None) -> bytes:
            if guard is not None:
                guard()
            found = None if stored is None else Head.decode(stored, f"esdm://{self.name} HEAD")
            if found != parent:
                now = "no HEAD" if found is None else f"HEAD at epoch {found.epoch}"
                raise self._conflict(now, parent)
            leased = guard is not None or parent is None
            if not self._write_manifest(name, data, parent, leased):
                raise self._conflict(f"{name} written by another writer", parent)
            crash_point("publish.manifest-written")
            return head.encode()

        if not self.update("HEAD", point_at_manifest):
            raise self._conflict("HEAD replaced while this writer published", parent)
        crash_point("publish.head-renamed")
        return head

    def _write_manifest(self, name: str, data: bytes, parent: Head | None, leased: bool) -> bool:
        """Write the manifest that HEAD will name (within `publish_encoded`'s update);
        False if another writer's is in the way.

        Under the lock, by replacing whatever a failed commit left there. Where
        HEAD is swapped, by exclusive create. A manifest of this epoch already
        there is a failed commit's, or a racing writer's about to be named by its
        HEAD: only the lease holder replaces it (``leased``: its guard passed, or
        it creates the container just after taking the lease), and only while
        HEAD, read again, is still ``parent`` and the manifest unchanged since
        read. A writer frozen past its lease in between could still lose its
        manifest so; its HEAD's checksum then refuses the replacement
        (CorruptMetadataError), never wrong data.
        """
        path = self.prefix + name
        meta = self.meta
        if not isinstance(meta, CompareAndSwap):
            meta.write_atomic(path, data)
            return True
        if meta.replace_if(path, data, None) is not None:
            return True
        if not leased or (self.head() if self.exists() else None) != parent:
            return False
        stored = meta.read_versioned(path)
        return stored is not None and meta.replace_if(path, data, stored.version) is not None

    def _conflict(self, now: str, parent: Head | None) -> PublishConflictError:
        built = "a new container" if parent is None else f"epoch {parent.epoch}"
        return PublishConflictError(
            f"esdm://{self.name}: another writer published first ({now}; this writer "
            f"built on {built}); nothing was committed"
        )

    # --- data logs ------------------------------------------------------------

    def log_name(self, epoch: int, rank: int, session: str) -> str:
        # The session token keeps a crashed writer's orphan logs of epoch n
        # apart from those of the writer that commits epoch n after it.
        return f"{self.prefix}data/e{epoch:09d}/{session}-r{rank:06d}.log"

    def data_prefix(self) -> str:
        return f"{self.prefix}data/"
