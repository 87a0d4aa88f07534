"""Epoch manifests and the HEAD pointer (docs/architecture.md §3.4, §3.7).

Each commit writes one immutable manifest: the whole namespace as of that
epoch (small) and the fragments new in it (the rest are in earlier manifests).
HEAD names the newest manifest and carries its checksum; each manifest carries
its parent's, so a reader verifies the whole chain it loads. HEAD is replaced
by atomic rename, so a crash at any point leaves the previous epoch intact.

A run that commits every step makes thousands of manifests, and reading them
all made an open cost a file per epoch (120-235 ms for 1000). Every
PACK_EPOCHS epochs a commit also writes a pack: the fragment records of the
epochs since the previous pack, in one object. Each manifest lists every pack
before it with its checksum, so a reader reads HEAD's manifest, the manifests
after its last pack and the packs; older manifests stay for time travel.

A pack also records the parent checksum of each epoch it holds, so time
travel to epoch k need not walk the chain from HEAD down to k: the pack
holding epoch k+1 (verified by its entry in HEAD's manifest) verifies
manifest k, which verifies the rest of what a reader of k reads. Packs
written before they recorded them are still read, by the walk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from esdm_hpc.errors import CorruptMetadataError
from esdm_hpc.fragment import Fragment
from esdm_hpc.kernels.checksum import checksum

HEAD_FORMAT = "esdm-head/1"
MANIFEST_FORMAT = "esdm-manifest/1"
PACK_FORMAT = "esdm-pack/1"
PACK_EPOCHS = 64  # a commit packs the epochs since the last pack once there are this many


@dataclass(frozen=True, slots=True)
class Head:
    epoch: int
    manifest: str
    checksum: int

    def encode(self) -> bytes:
        record = {"format": HEAD_FORMAT, "epoch": self.epoch, "manifest": self.manifest,
                  "checksum": self.checksum}  # fmt: skip
        return json.dumps(record).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes, where: str) -> Head:
        record = _load_json(data, where)
        if record.get("format") != HEAD_FORMAT:
            raise CorruptMetadataError(
                f"{where}: not an ESDM HEAD (format {record.get('format')!r})"
            )
        try:
            return cls(int(record["epoch"]), str(record["manifest"]), int(record["checksum"]))
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptMetadataError(f"{where}: malformed HEAD ({error})") from None


@dataclass(frozen=True, slots=True)
class Pack:
    """The fragment records of epochs ``first`` to ``last``, in one object."""

    name: str
    first: int
    last: int
    checksum: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "first": self.first, "last": self.last,
                "checksum": self.checksum}  # fmt: skip

    @classmethod
    def from_json(cls, record: Any, where: str) -> Pack:
        try:
            return cls(str(record["name"]), int(record["first"]), int(record["last"]),
                       int(record["checksum"]))  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptMetadataError(f"{where}: malformed pack entry ({error!r})") from None


def pack_name(first: int, last: int) -> str:
    return f"packs/e{first:09d}-e{last:09d}.json"


@dataclass(frozen=True, slots=True)
class PackContents:
    """A pack as decoded: the fragment records of its epochs and the parent
    checksum of each (None: a pack written before packs recorded them)."""

    pack: Pack
    fragments: list[dict[str, Any]]
    parent_checksums: list[int | None] | None

    def manifest_checksum(self, epoch: int) -> int | None:
        """The checksum of manifest ``epoch``, as its child in this pack records it
        (None: the pack does not hold its child, or records no checksums)."""
        if self.parent_checksums is None or not self.pack.first <= epoch + 1 <= self.pack.last:
            return None
        return self.parent_checksums[epoch + 1 - self.pack.first]


def encode_pack(manifests: Sequence[Manifest]) -> bytes:
    """The pack of the (consecutive) ``manifests``' fragment records."""
    record = {"format": PACK_FORMAT, "first": manifests[0].epoch, "last": manifests[-1].epoch,
              "parent_checksums": [m.parent_checksum for m in manifests],
              "fragments": [r for m in manifests for r in m.records]}  # fmt: skip
    return _dumps(record).encode()


def verify_pack(data: bytes, pack: Pack, where: str) -> None:
    """Raise unless ``data`` is what ``pack`` (an entry in a manifest) names."""
    if checksum(data) != pack.checksum:
        raise CorruptMetadataError(
            f"{where}: checksum mismatch (truncated or modified after commit)"
        )


def decode_pack(data: bytes, pack: Pack, where: str) -> PackContents:
    """``pack``'s contents, checked against its entry in a manifest."""
    verify_pack(data, pack, where)
    record = _load_json(data, where)
    if record.get("format") != PACK_FORMAT or (record.get("first"), record.get("last")) != (
        pack.first,
        pack.last,
    ):
        raise CorruptMetadataError(f"{where}: not the ESDM pack of epochs {pack.first}-{pack.last}")
    fragments, parents = record.get("fragments"), record.get("parent_checksums")
    if not isinstance(fragments, list):
        raise CorruptMetadataError(f"{where}: malformed pack (no list of fragments)")
    if parents is not None and not _are_parent_checksums(parents, pack):
        raise CorruptMetadataError(f"{where}: malformed pack (parent_checksums)")
    return PackContents(pack, fragments, parents)


def _are_parent_checksums(parents: Any, pack: Pack) -> bool:
    """One checksum per epoch of ``pack``; epoch 0 alone has no parent."""
    epochs = range(pack.first, pack.last + 1)
    return (
        isinstance(parents, list)
        and len(parents) == len(epochs)
        and all(
            p is None if epoch == 0 else type(p) is int
            for epoch, p in zip(epochs, parents, strict=True)
        )
    )


@dataclass(slots=True)
class Manifest:
    epoch: int
    parent_checksum: int | None
    created: str
    writer: dict[str, Any]
    namespace: dict[str, Any]
    # the fragment records as stored (Fragment.to_json): decoded into Fragment
    # objects only where a reader needs them, not on every rank at every commit
    records: list[dict[str, Any]] = field(default_factory=list)
    packs: list[Pack] = field(default_factory=list)  # every pack of the epochs before
    # the epochs up to this one whose manifests give committed fragments new
    # replicas (drains): a reader of an earlier epoch reads them too, since a
    # drained fragment's burst-buffer copy may be gone
    replicated_in: list[int] = field(default_factory=list)

    @property
    def packed(self) -> int:
        """The last epoch whose records are in a pack (0: none are)."""
        return self.packs[-1].last if self.packs else 0

    @property
    def first_unpacked(self) -> int:
        """The oldest epoch whose manifest a reader of this epoch reads (the rest are packed)."""
        return self.packed + 1 if self.packs else 0

    def pack_holding(self, epoch: int) -> Pack | None:
        """The pack this manifest lists that holds epoch ``epoch``, if one does."""
        return next((p for p in self.packs if p.first <= epoch <= p.last), None)

    @property
    def fragments(self) -> list[Fragment]:
        return [decode_fragment(record, f"epoch {self.epoch}") for record in self.records]

    def encode(self, fragments_json: Sequence[str] | None = None) -> bytes:
        """The manifest as stored. ``fragments_json``: the fragment records already
        encoded as JSON arrays (one per rank), spliced in as they are."""
        if fragments_json is None:
            fragments_json = [_dumps(self.records)]
        record = {
            "format": MANIFEST_FORMAT,
            "epoch": self.epoch,
            "parent_checksum": self.parent_checksum,
            "created": self.created,
            "writer": self.writer,
            "namespace": self.namespace,
            **({"packs": [p.to_json() for p in self.packs]} if self.packs else {}),
            **({"replicated_in": self.replicated_in} if self.replicated_in else {}),
            "fragments": [],
        }
        head = _dumps(record)
        assert head.endswith('"fragments":[]}')
        arrays = ",".join(text[1:-1] for text in fragments_json if text != "[]")
        return (head[: -len("]}")] + arrays + "]}").encode()

    @classmethod
    def decode(cls, data: bytes, expected_checksum: int, where: str) -> Manifest:
        if checksum(data) != expected_checksum:
            raise CorruptMetadataError(
                f"{where}: checksum mismatch (truncated or modified after commit)"
            )
        record = _load_json(data, where)
        if record.get("format") != MANIFEST_FORMAT:
            raise CorruptMetadataError(f"{where}: not an ESDM manifest")
        try:
            manifest = cls(
                epoch=record["epoch"],
                parent_checksum=record["parent_checksum"],
                created=record["created"],
                writer=record["writer"],
                namespace=record["namespace"],
                records=record["fragments"],
                packs=[Pack.from_json(p, where) for p in record.get("packs", [])],
                replicated_in=record.get("replicated_in", []),
            )
        except (KeyError, TypeError) as error:  # no writer writes this
            raise CorruptMetadataError(f"{where}: malformed manifest ({error!r})") from None
        # the chain is verified through parent_checksum: epoch 0 alone may have none
        parent = manifest.parent_checksum
        if not isinstance(manifest.replicated_in, list) or not all(
            type(e) is int and 0 < e <= manifest.epoch for e in manifest.replicated_in
        ):
            raise CorruptMetadataError(f"{where}: malformed manifest (replicated_in)")
        if type(manifest.epoch) is not int or (
            type(parent) is not int if manifest.epoch else parent is not None
        ):
            fields = f"epoch {manifest.epoch!r}, parent_checksum {parent!r}"
            raise CorruptMetadataError(f"{where}: malformed manifest ({fields})")
        return manifest


def decode_fragment(record: dict[str, Any], where: str) -> Fragment:
    """A fragment record as stored, checked: a malformed one is corrupt metadata."""
    try:
        return Fragment.from_json(record)
    except (KeyError, TypeError, ValueError) as error:
        raise CorruptMetadataError(f"{where}: malformed fragment record ({error!r})") from None


def encode_fragments(fragments: Sequence[Fragment]) -> str:
    """A rank's fragment records as a JSON array, ready for ``Manifest.encode``."""
    return _dumps([f.to_json() for f in fragments])


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def manifest_name(epoch: int) -> str:
    return f"manifests/e{epoch:09d}.json"


def _load_json(data: bytes, where: str) -> dict[str, Any]:
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptMetadataError(f"{where}: unreadable ({error})") from None
    if not isinstance(record, dict):
        raise CorruptMetadataError(f"{where}: unreadable (not a JSON object)")
    return record
