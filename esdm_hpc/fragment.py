"""Fragment records: one hyperslab of one dataset, written by one rank in one epoch.

A fragment's bytes are a range of an append-only data log on a backend
(``Replica``); it may have several replicas. Checksums are per block of the
serialised bytes so a partial read verifies only what it touches.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from esdm_hpc import serialisation
from esdm_hpc.kernels.checksum import block_checksums


def fragment_boxes(
    offsets: Sequence[Sequence[int]], counts: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """(n, ndim) int64 arrays of fragment boxes for the box kernels.

    The kernels know no 0-d boxes: a scalar dataset's fragments become the
    1-d box [0, 1), so they overlap each other as they should.
    """
    n = len(offsets)
    ndim = len(offsets[0]) if n else 0
    if ndim == 0:
        return np.zeros((n, 1), dtype=np.int64), np.ones((n, 1), dtype=np.int64)
    return (
        np.array(offsets, dtype=np.int64).reshape(n, ndim),
        np.array(counts, dtype=np.int64).reshape(n, ndim),
    )


def newest_records(records: Iterable[Fragment]) -> list[Fragment]:
    """One record per fragment, oldest first: where a later epoch gave a fragment new
    replicas (a drain), that record in place of the earlier one; such a record
    of a fragment not among ``records`` (a reader of an earlier epoch) is left out."""
    newest: dict[str, Fragment] = {}
    for fragment in records:
        if fragment.replicated is None or fragment.id in newest:
            newest[fragment.id] = fragment
    return list(newest.values())


def write_order(fragments: Sequence[Fragment]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The epoch, rank and write sequence number of each fragment, as arrays."""
    keys = np.array([(f.epoch, f.rank, f.seq) for f in fragments], dtype=np.int64)
    keys = keys.reshape(-1, 3)
    return keys[:, 0], keys[:, 1], keys[:, 2]


DIGEST = np.dtype("<u8")


def encode_digests(digests: np.ndarray) -> str:
    """Block digests as a fragment record keeps them."""
    return base64.b64encode(digests.astype(DIGEST).tobytes()).decode("ascii")


def _digests_from_json(value: str | list[int]) -> str:
    if not isinstance(value, str):  # manifests before base64 digests hold integers
        return encode_digests(np.array(value, dtype=np.uint64))
    if len(value) % 4 or _decoded_size(value) % DIGEST.itemsize:
        raise ValueError(f"checksums of {len(value)} base64 characters, not whole digests")
    return value


def _decoded_size(text: str) -> int:
    # looks at the padding only: reads ask for every verify, the text is long
    return len(text) // 4 * 3 - (2 if text.endswith("==") else text.endswith("="))


@dataclass(frozen=True, slots=True)
class Replica:
    backend: str
    location: str
    byte_offset: int
    length: int
    # the node whose local storage holds it (a burst buffer); None: every node reaches it
    node: str | None = None

    def to_json(self) -> list[Any]:
        fields = [self.backend, self.location, self.byte_offset, self.length]
        return fields if self.node is None else [*fields, self.node]

    @classmethod
    def from_json(cls, record: Sequence[Any]) -> Replica:
        backend, location, offset, length, *node = record
        if len(node) > 1:
            raise ValueError(f"replica of {len(record)} fields, not 4 or 5")
        where = str(node[0]) if node else None
        return cls(str(backend), str(location), int(offset), int(length), where)


@dataclass(frozen=True, slots=True)
class Fragment:
    id: str
    dataset: str
    epoch: int
    rank: int
    seq: int  # order of the rank's writes within the epoch: later wins
    offset: tuple[int, ...]
    count: tuple[int, ...]
    serialisation: str
    codec: str
    nbytes: int
    block_size: int
    # one little-endian uint64 digest per block, base64 as in the manifest: decoded
    # only where a read needs them (digests), since JSON ints cost a fragment
    # of 4096 blocks most of a millisecond to parse at open
    checksums: str
    replicas: tuple[Replica, ...]
    minimum: float | None = None
    maximum: float | None = None
    # set on a record that a later epoch's commit made to give the fragment of epoch
    # ``epoch`` new replicas (a drain): that epoch, whose manifest holds it
    replicated: int | None = None

    @property
    def is_local(self) -> bool:
        """Whether every replica is on node-local storage: lost with the node."""
        return all(r.node is not None for r in self.replicas)

    @property
    def nblocks(self) -> int:
        return _decoded_size(self.checksums) // DIGEST.itemsize

    def digests(self, first: int = 0, stop: int | None = None) -> np.ndarray:
        """The digests of blocks first..stop-1, decoding only their part of the text."""
        stop = self.nblocks if stop is None else min(stop, self.nblocks)
        if first >= stop:
            return np.empty(0, dtype=DIGEST)
        # 3 digests (24 bytes) are 32 characters of base64
        low, high = first // 3, -(-stop // 3)
        raw = binascii.a2b_base64(self.checksums[32 * low : 32 * high], strict_mode=True)
        return np.frombuffer(raw, dtype=DIGEST)[first - 3 * low : stop - 3 * low]

    def mismatched_blocks(self, payload: np.ndarray | bytes) -> list[int]:
        """The blocks of ``payload`` (the fragment's bytes, whole) that do not match
        its checksums; all of them if it is not of the fragment's size."""
        if len(memoryview(payload).cast("B")) != self.nbytes:
            return list(range(self.nblocks))
        digests = block_checksums(payload, self.block_size)
        return [int(b) for b in np.nonzero(digests != self.digests())[0]]

    @property
    def stop(self) -> tuple[int, ...]:
        return tuple(o + c for o, c in zip(self.offset, self.count, strict=True))

    def to_json(self) -> dict[str, Any]:
        # Written out rather than dataclasses.asdict, which deep-copies every
        # field: a commit encodes every fragment of the epoch.
        return {
            "id": self.id,
            "dataset": self.dataset,
            "epoch": self.epoch,
            "rank": self.rank,
            "seq": self.seq,
            "offset": self.offset,
            "count": self.count,
            "serialisation": self.serialisation,
            "codec": self.codec,
            "nbytes": self.nbytes,
            "block_size": self.block_size,
            "checksums": self.checksums,
            "replicas": [r.to_json() for r in self.replicas],
            "minimum": self.minimum,
            "maximum": self.maximum,
            **({} if self.replicated is None else {"replicated": self.replicated}),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Fragment:
        return cls(
            id=record["id"],
            dataset=record["dataset"],
            epoch=record["epoch"],
            rank=record["rank"],
            seq=record["seq"],
            offset=tuple(record["offset"]),
            count=tuple(record["count"]),
            # a name no writer writes makes the record malformed, not a C-order read
            serialisation=serialisation.get(record["serialisation"]).name,
            codec=record["codec"],
            nbytes=record["nbytes"],
            block_size=record["block_size"],
            checksums=_digests_from_json(record["checksums"]),
            replicas=tuple(Replica.from_json(r) for r in record["replicas"]),
            minimum=record["minimum"],
            maximum=record["maximum"],
            replicated=_replicated(record.get("replicated")),
        )


def _replicated(value: Any) -> int | None:
    if value is not None and type(value) is not int:
        raise ValueError(f"replicated {value!r} is not an epoch")
    return value
