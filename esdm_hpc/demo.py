"""The demo `make demo` runs: a small MPI model writing through ESDM.

A 2-D heat-diffusion model is decomposed over the ranks (domain decomposition
kernel), exchanges halos with its neighbours every step, and writes its block
of the temperature field to the container at every step, committing an epoch
per step. Afterwards rank 0 reads the time series of one region back and
prints it with the container summary of `esdm info`.

    mpirun -n 4 python -m esdm_hpc.demo [--shape 256 192] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.kernels import decomposition


def initial_block(
    offset: tuple[int, int], count: tuple[int, int], shape: tuple[int, int]
) -> np.ndarray:
    """A hot spot off the centre of a cold plate, evaluated on one rank's block."""
    y = np.arange(offset[0], offset[0] + count[0])[:, None] / shape[0]
    x = np.arange(offset[1], offset[1] + count[1])[None, :] / shape[1]
    return (100.0 * np.exp(-((y - 0.4) ** 2 + (x - 0.6) ** 2) / 0.01)).astype(np.float32)


class Block:
    """One rank's block with a one-cell halo, on a periodic-free Cartesian grid."""

    def __init__(self, cart, interior: np.ndarray):
        self.cart = cart
        self.u = np.zeros((interior.shape[0] + 2, interior.shape[1] + 2), dtype=np.float32)
        self.u[1:-1, 1:-1] = interior

    @property
    def interior(self) -> np.ndarray:
        return self.u[1:-1, 1:-1]

    def exchange_halos(self) -> None:
        u = self.u
        for axis in (0, 1):
            low, high = self.cart.Shift(axis, 1)
            first, last = [slice(1, -1)] * 2, [slice(1, -1)] * 2
            below, above = [slice(1, -1)] * 2, [slice(1, -1)] * 2
            first[axis], last[axis] = 1, -2
            below[axis], above[axis] = 0, -1
            recv = np.empty_like(u[tuple(below)])
            self.cart.Sendrecv(np.ascontiguousarray(u[tuple(last)]), dest=high,
                               recvbuf=recv, source=low)  # fmt: skip
            if low >= 0:
                u[tuple(below)] = recv
            self.cart.Sendrecv(np.ascontiguousarray(u[tuple(first)]), dest=low,
                               recvbuf=recv, source=high)  # fmt: skip
            if high >= 0:
                u[tuple(above)] = recv

    def step(self, alpha: float = 0.2) -> None:
        self.exchange_halos()
        u = self.u
        laplacian = u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4 * u[1:-1, 1:-1]
        u[1:-1, 1:-1] += alpha * laplacian


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[256, 192], metavar=("NY", "NX"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--uri", default="esdm://demo/heat")
    args = parser.parse_args(argv)

    from mpi4py import MPI  # here, so --help works without an MPI launcher

    world = MPI.COMM_WORLD
    shape = tuple(args.shape)
    grid = decomposition.process_grid(shape, world.size)
    cart = world.Create_cart(grid, periods=[False, False], reorder=False)
    offset, count = decomposition.block(shape, grid, cart.rank)
    block = Block(cart, initial_block(offset, count, shape))
    region = tuple(slice(o, o + c) for o, c in zip(offset, count, strict=True))

    start = time.perf_counter()
    with esdm_hpc.open(args.uri, "w", comm=cart, overwrite=True) as container:
        container.attrs["model"] = "2-D heat diffusion, explicit Euler"
        temperature = container.create_dataset(
            "temperature", shape=(0, *shape), maxshape=(None, *shape), dtype="f4",
            dims=("time", "y", "x"),
        )  # fmt: skip
        temperature.attrs["units"] = "K"
        for step in range(args.steps):
            block.step()
            temperature.resize(step + 1, axis=0)
            temperature[(step, *region)] = block.interior
            container.commit()
    elapsed = time.perf_counter() - start

    if cart.rank == 0:
        nbytes = args.steps * shape[0] * shape[1] * 4
        print(f"{world.size} ranks on a {grid[0]}x{grid[1]} process grid wrote {args.steps} steps "
              f"of a {shape[0]}x{shape[1]} field ({nbytes / 2**20:.1f} MiB) in {elapsed:.2f} s, "
              f"one epoch per step")  # fmt: skip
        with esdm_hpc.open(args.uri) as container:
            y, x = int(0.4 * shape[0]), int(0.6 * shape[1])
            series = container["temperature"][:, y - 2 : y + 2, x - 2 : x + 2].mean(axis=(1, 2))
        print(f"mean temperature around the hot spot ({y}, {x}) per step:")
        print("  " + " ".join(f"{v:.1f}" for v in series))
        print()
        cli.main(["info", args.uri])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
