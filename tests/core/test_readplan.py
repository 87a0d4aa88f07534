"""Planning reads: BlockPlan against a plain model (the blocks each part touches, the
values gathered), and the fragment view planning from records."""

import numpy as np
import pytest

from esdm_hpc.errors import CorruptMetadataError
from esdm_hpc.fragment import Fragment, encode_digests
from esdm_hpc.fragmentview import FragmentView
from esdm_hpc.kernels import checksum
from esdm_hpc.readplan import BlockPlan, PartRead, contiguous_run


def fragment(shape: tuple[int, ...], itemsize: int, block: int, name: str) -> Fragment:
    nbytes = int(np.prod(shape)) * itemsize
    digests = checksum.block_checksums(np.zeros(nbytes, np.uint8), block)
    return Fragment(
        id=name, dataset="/x", epoch=1, rank=0, seq=0, offset=(0,) * len(shape), count=shape,
        serialisation="C", codec="raw", nbytes=nbytes, block_size=block,
        checksums=encode_digests(digests), replicas=(),
    )  # fmt: skip


def touched_blocks(f: Fragment, part: PartRead, itemsize: int) -> list[int]:
    """Every block holding an element of the part, by enumerating the elements."""
    index = np.indices(part.count).reshape(len(part.count), -1).T + np.array(part.rel)
    elements = np.ravel_multi_index(index.T, f.count)
    first = elements * itemsize // f.block_size
    last = ((elements + 1) * itemsize - 1) // f.block_size
    return sorted({b for a, z in zip(first, last, strict=True) for b in range(a, z + 1)})


@pytest.mark.parametrize("seed", range(40))
def test_plan_reads_the_blocks_parts_touch_and_gathers_their_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(rng.choice(["u1", "<i2", "<f4", "<f8", "V12"]))
    ndim = int(rng.integers(1, 4))
    shapes = [tuple(int(n) for n in rng.integers(1, 7, ndim)) for _ in range(2)]
    block = int(rng.choice([1, 4, 7, 16, 64, 1 << 14]))
    fragments = [fragment(s, dtype.itemsize, block, f"f{i}") for i, s in enumerate(shapes)]
    contents = {
        f.id: rng.integers(0, 256, f.nbytes, dtype=np.uint8).view(dtype).reshape(f.count)
        for f in fragments
    }
    parts = []
    for _ in range(int(rng.integers(1, 9))):
        f = fragments[int(rng.integers(len(fragments)))]
        rel = tuple(int(rng.integers(0, n)) for n in f.count)
        count = tuple(int(rng.integers(1, n - r + 1)) for n, r in zip(f.count, rel, strict=True))
        parts.append(PartRead(f, rel, count))

    plan = BlockPlan(parts, dtype)

    for i, part in enumerate(parts):
        rows = plan.part == i
        blocks = [b for a, z in zip(plan.first[rows], plan.stop[rows], strict=True)
                  for b in range(a, z)]  # fmt: skip
        assert blocks == touched_blocks(part.fragment, part, dtype.itemsize)  # merged, in order
        assert (plan.first[rows][1:] > plan.stop[rows][:-1]).all()  # adjacent ones merged
        assert (plan.start[rows] == plan.first[rows] * block).all()
    assert (plan.nbytes > 0).all() and plan.size == plan.nbytes.sum()
    buffer = np.empty(plan.size, np.uint8)
    for p, start, nbytes, packed in zip(plan.part, plan.start, plan.nbytes, plan.packed,
                                        strict=True):  # fmt: skip
        stored = contents[parts[p].fragment.id].reshape(-1).view(np.uint8)
        buffer[packed : packed + nbytes] = stored[start : start + nbytes]
    gathered = dict(plan.gather(buffer))
    assert sorted(gathered) == list(range(len(parts)))
    for i, part in enumerate(parts):
        region = tuple(slice(r, r + c) for r, c in zip(part.rel, part.count, strict=True))
        np.testing.assert_array_equal(gathered[i], contents[part.fragment.id][region])


def test_an_empty_plan_reads_nothing() -> None:
    plan = BlockPlan([], np.dtype("f4"))
    assert plan.size == 0 and len(plan.part) == 0
    assert list(plan.gather(np.empty(0, np.uint8))) == []


def test_a_view_decodes_only_the_fragments_a_read_needs_and_names_bad_records() -> None:
    records = [fragment((4, 6), 8, 16, f"f{i}").to_json() for i in range(3)]
    for i, record in enumerate(records):
        record.update(offset=[4 * i, 0], epoch=i + 1)
    view = FragmentView(records, 2, where="esdm://c /x")
    _, _, sources = view.plan((4, 0), (4, 6))
    assert sources.tolist() == [1] and len(view._decoded) == 0  # planned from the records
    assert view.fragment(1).id == "f1" and list(view._decoded) == [1]
    assert view.newest().id == "f2"
    del records[0]["count"]
    with pytest.raises(CorruptMetadataError, match=r"esdm://c /x: malformed fragment record"):
        FragmentView(records, 2, where="esdm://c /x").plan((0, 0), (12, 6))


@pytest.mark.parametrize("seed", range(200))
def test_contiguous_run_matches_the_elements_of_the_box(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 5, int(rng.integers(0, 4))))
    rel = tuple(int(rng.integers(0, n)) for n in shape)
    count = tuple(int(rng.integers(1, n - r + 1)) for n, r in zip(shape, rel, strict=True))
    elements = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    inside = elements[tuple(slice(r, r + c) for r, c in zip(rel, count, strict=True))].ravel()
    run = contiguous_run(shape, rel, count)
    contiguous = bool((np.diff(inside) == 1).all())
    assert (run is not None) == contiguous
    if run is not None:
        assert run == (int(inside[0]), inside.size)
