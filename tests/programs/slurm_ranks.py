"""Rank-aware smoke program for the Slurm test cluster (see slurm/README.md).

Each rank builds a deterministic buffer seeded by its rank, computes its block
checksums with :func:`esdm_hpc.kernels.checksum.block_checksums`, and rank 0
gathers the results and prints one line per rank, in rank order::

    rank=0 size=4 host=vm nblocks=4 sum=1f2e... sums=1f2e...,77a0...,...

``sum`` is the first block's digest and ``sums`` all of them, as 16-digit hex.
tests/test_slurm.py recomputes the digests with :func:`rank_buffer` and compares.

Run:  srun --mpi=pmix -n 4 .venv/bin/python tests/programs/slurm_ranks.py [--mib N]
"""

from __future__ import annotations

import argparse
import socket
import sys

import numpy as np

BLOCK_SIZE = 1 << 20
DEFAULT_MIB = 3


def rank_buffer(rank: int, mib: int = DEFAULT_MIB) -> np.ndarray:
    """The bytes rank ``rank`` checksums: ``mib`` MiB plus a short tail block.

    Deterministic for a given rank (no MPI needed), so a checker can rebuild it.
    """
    rng = np.random.default_rng(rank)
    nbytes = mib * BLOCK_SIZE + 4096 + rank  # a short last block, rank-specific length
    return rng.integers(0, 256, size=nbytes, dtype=np.uint8)


def format_line(rank: int, size: int, host: str, digests: np.ndarray) -> str:
    hexes = [f"{int(d):016x}" for d in digests]
    return (
        f"rank={rank} size={size} host={host} nblocks={len(hexes)} "
        f"sum={hexes[0]} sums={','.join(hexes)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=DEFAULT_MIB, help="MiB per rank")
    args = parser.parse_args(argv)

    # Imported here, not at module level, so that a checker can import
    # rank_buffer without initialising MPI in its own process.
    from mpi4py import MPI

    from esdm_hpc.kernels.checksum import block_checksums

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    digests = block_checksums(rank_buffer(rank, args.mib), BLOCK_SIZE)
    line = format_line(rank, size, socket.gethostname(), digests)

    lines = comm.gather(line, root=0)
    if rank == 0:
        assert lines is not None
        for each in lines:
            print(each)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
