"""Checking a container's metadata for ``esdm verify``: every manifest from HEAD's
down to epoch 0 and every pack, each against what verifies it, and which
epochs each damaged one leaves unopenable.

A reader of epoch k (``ContainerStore.load``) needs HEAD's manifest; the pack
holding epoch k+1 if it records manifest k's checksum, else the manifests from
HEAD's down to k; manifest k; the manifests after k's last pack; and k's
packs. The check reads each object once and derives from those rules the
epochs each damaged one breaks. Below a damaged manifest it reads on, to find
more damage: verified where an intact pack records the next checksum, else
against what the (intact, but not verified) manifest above records, which the
report says. Only fragment records verified from HEAD are handed on for
scrubbing: a damaged manifest's from the pack holding its epoch.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from esdm_hpc.backends import BackendError
from esdm_hpc.epochs.manifest import (
    Head,
    Manifest,
    Pack,
    PackContents,
    decode_fragment,
    manifest_name,
)
from esdm_hpc.epochs.store import ContainerStore
from esdm_hpc.errors import CorruptMetadataError
from esdm_hpc.fragment import Fragment
from esdm_hpc.kernels.checksum import checksum
from esdm_hpc.namespace import Namespace

# A damaged object: a manifest by its epoch, a pack by the entry that names it.
_Object = int | Pack


@dataclass(frozen=True, slots=True)
class MetadataDamage:
    name: str  # in the container: manifests/e000000005.json, packs/...
    location: str  # backend:object
    problem: str
    epochs: tuple[int, ...]  # the epochs that can no longer be opened because of it

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}; {_epochs(self.epochs)} ({self.location})"


@dataclass(slots=True)
class ChainReport:
    manifests: int  # checked
    packs: int  # checked (distinct entries)
    fragments: list[Fragment]  # every epoch's, verified from HEAD, oldest epoch first
    namespace: Namespace | None  # the newest verified epoch's
    damage: list[MetadataDamage]


def check_chain(store: ContainerStore) -> ChainReport:
    """Read and check every manifest and pack of ``store``'s container.

    A HEAD that cannot be read raises (nothing can be verified without it).
    """
    scan = _Scan(store, store.head())
    for epoch in range(scan.head.epoch, -1, -1):
        scan.manifest(epoch)
    fragments = scan.fragments()  # may find malformed records: before the damage
    newest = max(scan.verified, default=None)
    return ChainReport(
        manifests=scan.head.epoch + 1,
        packs=len(scan.packs.keys() | {o for o in scan.problems if isinstance(o, Pack)}),
        fragments=fragments,
        namespace=None if newest is None else Namespace.from_json(scan.read[newest].namespace),
        damage=scan.damage(),
    )


@dataclass(frozen=True, slots=True)
class _Expected:
    """The checksum a manifest must have, what records it, and whether that is
    verified from HEAD."""

    checksum: int
    source: str
    verified: bool


@dataclass(slots=True)
class _Scan:
    store: ContainerStore
    head: Head
    read: dict[int, Manifest] = field(default_factory=dict)  # those that decode
    verified: set[int] = field(default_factory=set)  # epochs verified from HEAD
    packs: dict[Pack, PackContents] = field(default_factory=dict)  # the intact ones
    verified_packs: set[Pack] = field(default_factory=set)
    problems: dict[_Object, str] = field(default_factory=dict)
    # packs whose problem was found against an entry nothing verifies (it may be the
    # entry that is damaged)
    doubtful: set[Pack] = field(default_factory=set)
    expected: dict[int, _Expected] = field(default_factory=dict)
    own: dict[int, list[Fragment]] = field(default_factory=dict)  # verified manifests'

    def __post_init__(self) -> None:
        self.expected[self.head.epoch] = _Expected(self.head.checksum, "HEAD", True)

    def manifest(self, epoch: int) -> None:
        name = manifest_name(epoch)
        expected = self.expected.get(epoch)
        verified_by = expected.checksum if expected and expected.verified else None
        verified = verified_by is not None
        try:
            manifest, data = self.store.read_manifest(epoch, verified_by)
        except (CorruptMetadataError, BackendError) as error:
            self.problems[epoch] = self._problem(name, error)
            return
        if expected is not None and checksum(data) != expected.checksum:  # not verified
            self.problems[epoch] = (
                f"checksum mismatch with what {expected.source} records, which nothing verifies"
            )
            return
        self.read[epoch] = manifest
        if manifest.parent_checksum is not None:
            self._expect(epoch - 1, _Expected(manifest.parent_checksum, name, verified))
        for pack in manifest.packs:
            self._pack(pack, verified)
        if verified:
            self.verified.add(epoch)
            try:
                self.own[epoch] = manifest.fragments
            except CorruptMetadataError as error:
                self.problems[epoch] = self._problem(manifest_name(epoch), error)

    def _pack(self, pack: Pack, verified: bool) -> None:
        seen = pack in self.packs or pack in self.problems
        if pack in self.verified_packs or (seen and not verified):
            return  # every later manifest lists it again: this is the common case
        if not seen:
            try:
                self.packs[pack] = self.store.read_pack(pack)
            except (CorruptMetadataError, BackendError) as error:
                self.problems[pack] = self._problem(pack.name, error)
                self.doubtful.add(pack)
        if verified:
            self.verified_packs.add(pack)
            self.doubtful.discard(pack)
        if pack in self.packs:
            contents = self.packs[pack]
            for epoch in range(pack.first - 1, pack.last):
                recorded = contents.manifest_checksum(epoch)
                if recorded is not None:
                    self._expect(epoch, _Expected(recorded, pack.name, verified))

    def _expect(self, epoch: int, expected: _Expected) -> None:
        if epoch not in self.expected or (expected.verified and not self.expected[epoch].verified):
            self.expected[epoch] = expected

    def _problem(self, name: str, error: Exception) -> str:
        return str(error).removeprefix(f"esdm://{self.store.name} {name}: ")

    def fragments(self) -> list[Fragment]:
        """Every epoch's fragments: its manifest's, or if that is not verified, those
        a verified pack holds of it."""
        found = dict(self.own)
        for pack in sorted(self.verified_packs & self.packs.keys(), key=lambda p: p.first):
            missing = set(range(pack.first, pack.last + 1)) - found.keys()
            if missing:
                try:
                    by_epoch = self._decoded(self.packs[pack], missing)
                except CorruptMetadataError as error:
                    self.problems[pack] = self._problem(pack.name, error)
                    continue
                found |= by_epoch
        return [f for epoch in sorted(found) for f in found[epoch]]

    @staticmethod
    def _decoded(contents: PackContents, epochs: set[int]) -> dict[int, list[Fragment]]:
        by_epoch: dict[int, list[Fragment]] = {e: [] for e in epochs}
        for record in contents.fragments:
            fragment = decode_fragment(record, f"pack {contents.pack.name}")
            committed_in = fragment.epoch if fragment.replicated is None else fragment.replicated
            if committed_in in by_epoch:
                by_epoch[committed_in].append(fragment)
        return by_epoch

    def damage(self) -> list[MetadataDamage]:
        broken: dict[_Object, list[int]] = {o: [] for o in self.problems}
        damaged = sorted(o for o in self.problems if isinstance(o, int))
        for epoch in range(self.head.epoch + 1):
            for needed in self._damaged_needs(epoch, damaged):
                broken[needed].append(epoch)
        meta = self.store.meta.id
        damage = []
        for needed, problem in self.problems.items():
            if needed in self.doubtful:
                problem += ", by an entry in a manifest nothing verifies"
            name = manifest_name(needed) if isinstance(needed, int) else needed.name
            location = f"{meta}:{self.store.prefix}{name}"
            damage.append(MetadataDamage(name, location, problem, tuple(sorted(broken[needed]))))
        return damage

    def _damaged_needs(self, epoch: int, damaged: list[int]) -> Iterator[_Object]:
        """The damaged objects a reader of ``epoch`` needs (the rules at the top)."""
        top = self.head.epoch
        manifests = [(top, top), (epoch, epoch)]  # closed ranges of epochs
        newest = self.read.get(top)
        if epoch < top and newest is not None:
            pack = newest.pack_holding(epoch + 1)
            if pack is not None and pack in self.problems:
                yield pack
            elif pack is None or self.packs[pack].manifest_checksum(epoch) is None:
                manifests.append((epoch + 1, top))
        own = self.read.get(epoch)
        if own is not None:
            manifests.append((own.first_unpacked, epoch))
            yield from (p for p in own.packs if p in self.problems)
        hits = (damaged[bisect_left(damaged, a) : bisect_right(damaged, b)] for a, b in manifests)
        yield from {damaged_epoch for found in hits for damaged_epoch in found}


def _epochs(epochs: tuple[int, ...]) -> str:
    """``epochs 3-9, 12 cannot be opened``"""
    runs: list[list[int]] = []
    for epoch in epochs:
        if runs and runs[-1][1] == epoch - 1:
            runs[-1][1] = epoch
        else:
            runs.append([epoch, epoch])
    spans = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return f"epoch{'s' if len(epochs) > 1 else ''} {spans} cannot be opened"
