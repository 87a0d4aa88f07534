"""Fragment records: one hyperslab of one dataset, written by one rank in one epoch.

A fragment's bytes are a range of an append-only data log on a backend
(``Replica``); it may have several replicas. Checksums are per block of the
serialised bytes so a partial read verifies only what it touches; a fragment
whose codec is not `codecs.RAW` stores each block coded on its own, and its
checksums are of the blocks as stored (docs/architecture.md §4.7).
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from esdm_hpc import codecs, serialisation
from esdm_hpc.kernels.checksum import block_checksums, checksum


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


def encode_ends(bounds: np.ndarray) -> str:
    """Where a coded fragment's stored blocks end (``bounds``: where each starts and
    the last ends, `codecs.Pipeline.encode`) as its record keeps them: like the digests."""
    return encode_digests(bounds[1:])


def stored_checksums(stored: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The digest of each block of ``stored``, block k at bounds[k]:bounds[k + 1]."""
    pairs = itertools.pairwise(bounds.tolist())
    return np.array([checksum(stored[a:b]) for a, b in pairs], dtype=DIGEST)


def _digests_from_json(value: str | list[int]) -> str:
    if not isinstance(value, str):  # manifests before base64 digests hold integers
        return encode_digests(np.array(value, dtype=np.uint64))
    return _words_checked(value, "checksums", "digests")


def _words_checked(value: Any, what: str, words: str) -> str:
    """``value`` if it is base64 text of whole uint64 ``words``, else ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"{what} {value!r} is not base64 text")
    if len(value) % 4 or _decoded_size(value) % DIGEST.itemsize:
        raise ValueError(f"{what} of {len(value)} base64 characters, not whole {words}")
    return value


def _words(text: str, first: int, stop: int) -> np.ndarray:
    """Words first..stop-1 of base64 ``text`` of little-endian uint64, decoding only
    their part of it: 3 words (24 bytes) are 32 characters."""
    low, high = first // 3, -(-stop // 3)
    raw = binascii.a2b_base64(text[32 * low : 32 * high], strict_mode=True)
    return np.frombuffer(raw, dtype=DIGEST)[first - 3 * low : stop - 3 * low]


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
    # a coded fragment's: where each stored block ends, as the checksums are kept
    # (nbytes is of the serialised bytes, a replica's length of the stored ones)
    stored_ends: str = ""

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
        return _words(self.checksums, first, stop)

    def stored_bounds(self, first: int, stop: int) -> np.ndarray:
        """Where blocks first..stop-1 of a coded fragment start in its stored bytes,
        and where the last ends (stop - first + 1 offsets, int64)."""
        ends = _words(self.stored_ends, max(first - 1, 0), stop).astype(np.int64)
        return np.concatenate(([0], ends)) if first == 0 else ends

    @property
    def stored_size(self) -> int:
        """The bytes a replica holds."""
        if self.codec == codecs.RAW:
            return self.nbytes
        return int(self.stored_bounds(self.nblocks, self.nblocks)[-1])

    def mismatched(self, data: np.ndarray, first: int, bounds: np.ndarray | None) -> np.ndarray:
        """Which of the blocks from ``first`` on whose stored bytes ``data`` holds do
        not match their checksums, counted from ``first``: blocks of block_size
        bytes, or of a coded fragment those at ``bounds`` (`stored_bounds`)."""
        if bounds is None:
            digests = block_checksums(data, self.block_size)
        else:
            digests = stored_checksums(data, bounds - bounds[0])
        return np.nonzero(digests != self.digests(first, first + len(digests)))[0]

    def mismatched_blocks(self, payload: np.ndarray | bytes) -> list[int]:
        """The blocks of ``payload`` (the fragment's stored bytes, whole) that do not
        match its checksums; all of them if it is not of the fragment's stored size."""
        data = np.frombuffer(payload, dtype=np.uint8)
        if len(data) != self.stored_size:
            return list(range(self.nblocks))
        bounds = None if self.codec == codecs.RAW else self.stored_bounds(0, self.nblocks)
        return self.mismatched(data, 0, bounds).tolist()

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
            **({"stored_ends": self.stored_ends} if self.stored_ends else {}),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Fragment:
        return _coded_consistently(
            cls(
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
                stored_ends=_words_checked(record.get("stored_ends", ""), "stored_ends", "offsets"),
            )
        )


def _coded_consistently(fragment: Fragment) -> Fragment:
    """``fragment``, if its codec is one a writer writes and it has the block ends
    a coded fragment has (and only then); else ValueError: the record is malformed."""
    if fragment.codec == codecs.RAW:
        if fragment.stored_ends:
            raise ValueError("stored_ends in a fragment stored as serialised (codec 'raw')")
        return fragment
    codecs.get(fragment.codec)
    ends = _decoded_size(fragment.stored_ends) // DIGEST.itemsize
    if ends != fragment.nblocks:
        raise ValueError(f"stored_ends of {ends} blocks, checksums of {fragment.nblocks}")
    return fragment


def _replicated(value: Any) -> int | None:
    if value is not None and type(value) is not int:
        raise ValueError(f"replicated {value!r} is not an epoch")
    return value
