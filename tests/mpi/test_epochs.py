"""Collective epochs on 2 and 4 ranks: writes, commits, overlaps, mismatches."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import esdm_hpc
from esdm_hpc.epochs import commit
from esdm_hpc.errors import CollectiveMismatchError, OverlappingWritesError
from esdm_hpc.kernels.decomposition import decompose

SHAPE = (24, 20, 6)


def shared_config() -> dict:
    """A configuration under a fresh directory every rank agrees on."""
    comm = MPI.COMM_WORLD
    root = tempfile.mkdtemp(prefix="esdm-mpi-") if comm.rank == 0 else None
    root = Path(comm.bcast(root))
    return {"backends": [{"id": "disk", "type": "posix", "target": str(root)}]}


def random_subslab(rng: np.random.Generator, offset: np.ndarray, count: np.ndarray) -> tuple:
    """A random non-empty hyperslab inside the block (offset, count)."""
    lo = np.array([rng.integers(0, c) for c in count])
    hi = np.array([rng.integers(low + 1, c + 1) for low, c in zip(lo, count, strict=True)])
    return tuple(slice(int(o + a), int(o + b)) for o, a, b in zip(offset, lo, hi, strict=True))


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("pack_epochs", [commit.PACK_EPOCHS, 2])
def test_random_hyperslabs_over_epochs_match_a_numpy_model(
    pack_epochs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "PACK_EPOCHS", pack_epochs)  # 2: packs every other commit
    comm = MPI.COMM_WORLD
    config = shared_config()
    offsets, counts = decompose(SHAPE, comm.size)
    model = np.full(SHAPE, -1.0)
    with esdm_hpc.open("esdm://model", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="f8", fillvalue=-1.0)
        for epoch in range(1, 6):
            # every rank draws every rank's writes, so each can update the model
            for rank in range(comm.size):
                rng = np.random.default_rng(1000 * epoch + rank)
                for _ in range(3):
                    region = random_subslab(rng, offsets[rank], counts[rank])
                    values = rng.random(tuple(s.stop - s.start for s in region))
                    model[region] = values
                    if rank == comm.rank:
                        x[region] = values
            assert c.commit() == epoch
            np.testing.assert_array_equal(x[...], model)
    with esdm_hpc.open("esdm://model", comm=comm, config=config) as c:
        np.testing.assert_array_equal(c["x"][...], model)
        np.testing.assert_array_equal(c["x"][:, 3, 2], model[:, 3, 2])
    with esdm_hpc.open("esdm://model", "a", comm=comm, config=config) as c:
        if comm.rank == 0:  # a second writer goes on from the packs
            c["x"][0, 0, 0] = 7.0
        model[0, 0, 0] = 7.0
    with esdm_hpc.open("esdm://model", comm=comm, config=config) as c:
        assert c.epoch == 6
        np.testing.assert_array_equal(c["x"][...], model)


@pytest.mark.mpi(min_size=2)
def test_overlapping_writes_of_two_ranks_fail_on_every_rank() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    with esdm_hpc.open("esdm://overlap", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=(10, 10), dtype="i4")
        x[comm.rank : comm.rank + 1, :] = comm.rank
        c.commit()
        x[0:2, 0 : 3 + comm.rank] = 9 + comm.rank  # every rank writes rows 0-1, its own values
        with pytest.raises(
            OverlappingWritesError,
            match=r"ranks 0 and 1 both wrote /x\[0:2, 0:3\] with different values",
        ):
            c.commit()
        np.testing.assert_array_equal(x[0:2, 0], [0, 1])  # epoch 1 intact
        assert c.epoch == 1


@pytest.mark.mpi(min_size=2)
def test_ranks_writing_the_same_values_to_one_place_commit() -> None:
    """As netCDF programs and models do for scalars and coordinate variables."""
    comm = MPI.COMM_WORLD
    config = shared_config()
    latitudes = np.linspace(-90, 90, 181)
    with esdm_hpc.open("esdm://same", "w", comm=comm, config=config) as c:
        scalar = c.create_dataset("TheIrishRover", shape=(), dtype="i4")
        lat = c.create_dataset("lat", shape=(181,), dtype="f8")
        names = c.create_dataset("names", shape=(2,), dtype=str)
        scalar[()] = 42
        lat[: 100 + comm.rank] = latitudes[: 100 + comm.rank]  # overlapping extents
        names[...] = ["tas", "pr"]
        assert c.commit() == 1
    with esdm_hpc.open("esdm://same", comm=comm, config=config) as c:
        assert c["TheIrishRover"][()] == 42
        n = 100 + comm.size - 1
        np.testing.assert_array_equal(c["lat"][:n], latitudes[:n])
        assert c["names"][...].tolist() == ["tas", "pr"]


@pytest.mark.mpi(min_size=2)
def test_one_byte_differing_on_one_rank_is_still_refused() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    odd = comm.size - 1
    with esdm_hpc.open("esdm://one-byte", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=(64,), dtype="u1")
        values = np.arange(64, dtype="u1")
        if comm.rank == odd:
            values[37] ^= 1
        x[...] = values
        with pytest.raises(OverlappingWritesError, match=rf"ranks \d+ and {odd} both wrote /x"):
            c.commit()
        assert c.epoch == 0


@pytest.mark.mpi(min_size=2)
def test_collective_calls_with_different_arguments_fail_on_every_rank() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    with esdm_hpc.open("esdm://mismatch", "w", comm=comm, config=config) as c:
        with pytest.raises(
            CollectiveMismatchError, match=r"create_dataset is collective: ranks \["
        ):
            c.create_dataset("x", shape=(10 + comm.rank,), dtype="i4")
        assert "x" not in c
        c.create_dataset("y", shape=(4,), dtype="i4")
    with esdm_hpc.open("esdm://mismatch", comm=comm, config=config) as c:
        assert c.keys() == ["y"]


@pytest.mark.mpi(min_size=2)
def test_a_write_failing_on_one_rank_fails_the_commit_on_every_rank() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    with esdm_hpc.open("esdm://failing", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=(comm.size, 4), dtype="i4")
        c.commit()
        if comm.rank == 1:
            c.open_epoch.writer.write = _failing_write  # this rank's storage fails
        x.write_async(comm.rank, comm.rank)
        with pytest.raises(OSError, match="disk on fire"):
            c.commit()  # raised everywhere, no rank left waiting
        assert c.epoch == 1
        x[comm.rank] = comm.rank  # a fresh writer for the next epoch
        assert c.commit() == 2
        np.testing.assert_array_equal(x[:, 0], np.arange(comm.size))


def _failing_write(*args: object) -> None:
    raise OSError("disk on fire")


@pytest.mark.mpi(min_size=2)
def test_a_shrink_after_a_held_write_failed_on_one_rank_is_done_alike_everywhere() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    with esdm_hpc.open("esdm://held", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=(comm.size, 8), maxshape=(None, 8), dtype="f8")
        c.commit()
        writer = c.open_epoch.writer
        if comm.rank == 1:
            x[1] = 1.0  # small: held in memory until stored
            writer._write_cut = _failing_write  # type: ignore[method-assign]  # storage fails
        x.resize((1, 8))  # stores what is held: fails on rank 1, not the shrink
        assert comm.allgather(x.shape) == [(1, 8)] * comm.size
        with pytest.raises(OSError, match="disk on fire"):
            c.commit()  # raised everywhere, no rank left waiting
        assert c.epoch == 1 and x.shape == (comm.size, 8)


@pytest.mark.mpi(min_size=2)
def test_a_shrink_drops_every_ranks_earlier_writes_beyond_it() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    rows = 4 * comm.size
    mine = slice(4 * comm.rank, 4 * comm.rank + 4)
    with esdm_hpc.open("esdm://shrink", "w", comm=comm, config=config) as c:
        x = c.create_dataset("x", shape=(rows, 3), maxshape=(None, 3), dtype="i4", fillvalue=-1)
        x[mine] = 1
        c.commit()
        x[mine] = 2  # this epoch, before the shrink
        x.resize((2, 3))
        x.resize((rows, 3))
        x[4 * comm.rank + 3] = 3  # after it: kept
    expected = np.full((rows, 3), -1)
    expected[:2] = 2
    expected[3::4] = 3
    with esdm_hpc.open("esdm://shrink", comm=comm, config=config) as c:
        np.testing.assert_array_equal(c["x"][...], expected)


@pytest.mark.mpi(min_size=2)
def test_every_rank_writes_strings_of_its_own() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    with esdm_hpc.open("esdm://strings", "w", comm=comm, config=config) as c:
        x = c.create_dataset("station", shape=(comm.size, 2), dtype=str)
        x[comm.rank] = [f"rank {comm.rank}", "é" * comm.rank]
    with esdm_hpc.open("esdm://strings", comm=comm, config=config) as c:
        assert c["station"][...].tolist() == [[f"rank {r}", "é" * r] for r in range(comm.size)]


@pytest.mark.mpi(min_size=2)
def test_a_copy_made_after_a_shrink_reads_the_same_and_is_recorded_alike_on_every_rank() -> None:
    comm = MPI.COMM_WORLD
    config = shared_config()
    with esdm_hpc.open("esdm://copyshrink", "w", comm=comm, config=config) as c:
        x = c.create_dataset(
            "x", shape=(comm.size, 2), maxshape=(None, 2), dtype="i4", fillvalue=-1
        )
        x[comm.rank] = comm.rank
        c.commit()
        x.resize((1, 2))
        c.copy("x", "y")
        records = comm.allgather(c.namespace.datasets["/y"].shrinks)
        assert all(r == records[0] for r in records)
        c["y"].resize((comm.size, 2))
    with esdm_hpc.open("esdm://copyshrink", comm=comm, config=config) as c:
        expected = [[0, 0]] + [[-1, -1]] * (comm.size - 1)
        assert c["y"][...].tolist() == expected
