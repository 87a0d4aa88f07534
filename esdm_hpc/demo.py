"""The demo `make demo` runs: a small MPI model writing through ESDM, analysed as it runs.

A 2-D heat-diffusion model is decomposed over the ranks (domain decomposition
kernel), exchanges halos with its neighbours every step, and writes its block
of the temperature field to the container at every step, committing an epoch
per step. What a plain HDF5 file does not give, the demo shows:

- *in-situ analysis*: a Numba-compiled on_write hook computes each block's part
  of the mean around the hot spot while the block is in cache; an on_commit
  hook reduces the parts over the ranks and writes the mean into the derived
  series /insitu/hotspot_mean, committed in the same epoch as the step's field
  (both or neither, whatever crashes);
- *a subscriber*: a thread on rank 0 iterates `esdm_hpc.watch`, woken by
  file-system notifications as each epoch is published;
- *epochs and time travel*: afterwards an early epoch is opened as it was;
- *the event log*: every commit, every hook's run and a user event.

Rank 0 then reads the hot spot's time series back, compares it with the in-situ
one, prints the container summary of `esdm info` and writes a PNG of the last
field and of the series.

    mpirun -n 4 python -m esdm_hpc.demo [--shape 256 192] [--steps 20] [--png PATH]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import esdm_hpc
from esdm_hpc import cli
from esdm_hpc.config import load_config
from esdm_hpc.epochs.events import EventLog
from esdm_hpc.hooks import CommitContext
from esdm_hpc.kernels import decomposition

SERIES = "/insitu/hotspot_mean"
HALF = 2  # the hot spot's box: 2 * HALF points a side around its centre
TRAVEL_TO = 5  # the epoch the demo travels back to
LINE = 140  # characters of an event shown


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


# --- the in-situ analysis ----------------------------------------------------------------


def box_part_hook() -> Callable[..., tuple[float, int]]:
    """The on_write hook: a block's sum and count inside the box [lo, hi) of the last two
    axes, compiled by Numba (here, once per rank, before the model starts)."""
    import numba

    @numba.njit(nogil=True, cache=False)
    def box_part(block, offset, lo, hi):  # type: ignore[no-untyped-def]
        i0, i1 = max(lo[0] - offset[1], 0), min(hi[0] - offset[1], block.shape[1])
        j0, j1 = max(lo[1] - offset[2], 0), min(hi[1] - offset[2], block.shape[2])
        total, count = 0.0, 0
        for t in range(block.shape[0]):
            for i in range(i0, i1):
                for j in range(j0, j1):
                    total += block[t, i, j]
                    count += 1
        return total, count

    sample = np.zeros((1, 1, 1), dtype=np.float32)
    sample.flags.writeable = False  # hooks get read-only views: compile for those
    box_part(sample, (0, 0, 0), (0, 0), (1, 1))
    return box_part


def _sums(a: tuple[float, int, int], b: tuple[float, int, int]) -> tuple[float, int, int]:
    return a[0] + b[0], a[1] + b[1], max(a[2], b[2])


def hotspot_mean(context: CommitContext, steps: int) -> None:
    """The on_commit hook: the mean of the box over all ranks' parts, as element ``step``
    of the derived series (rank 0 writes it; committed with the step's field)."""
    local = (sum(r.value[0] for r in context.results), sum(r.value[1] for r in context.results),
             max((r.offset[0] for r in context.results), default=-1))  # fmt: skip
    total, count, step = context.comm.allreduce(local, op=_sums)
    if context.rank == 0 and count:
        context.write_part(SERIES, [total / count], (step,), (steps,))


class Watcher:
    """A subscriber in a thread: `esdm_hpc.watch` yields each epoch as it is published."""

    def __init__(self, uri: str, last: int):
        self.uri, self.last = uri, last
        self.seen: list[int] = []
        self._thread = threading.Thread(target=self._run, name="esdm-demo-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # after epoch 0 (the container's creation): the first commit may come before
        # the watcher's first look
        for epoch in esdm_hpc.watch(self.uri, timeout=120, after_epoch=0):
            self.seen.append(epoch)
            if epoch >= self.last:
                return

    def join(self) -> list[int]:
        self._thread.join(timeout=30)
        return self.seen


# --- the report --------------------------------------------------------------------------------


def default_png(uri: str) -> Path:
    """Next to the container's data when it is on a local disk, else here."""
    site = load_config(None)
    backend = site.backend(site.metadata_backend)
    directory = Path(backend.target) if backend.type == "posix" else Path.cwd()
    return directory / f"{uri.removeprefix('esdm://').replace('/', '-')}.png"


def draw(path: Path, field: np.ndarray, box: tuple[slice, slice], series: dict[str, Any]) -> None:
    """The last field with the hot spot's box, and the series beside it (Agg: no display)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1.1, 1])
    image = left.imshow(field, origin="lower", cmap="inferno")
    figure.colorbar(image, ax=left, label="temperature (K)")
    rows, cols = box
    left.add_patch(Rectangle((cols.start - 0.5, rows.start - 0.5), cols.stop - cols.start,
                             rows.stop - rows.start, fill=False, color="cyan", lw=1.5))  # fmt: skip
    left.set_title(f"temperature, last step (epoch {series['epoch']})")
    left.set_xlabel("x")
    left.set_ylabel("y")
    steps = np.arange(1, len(series["in-situ"]) + 1)
    right.plot(steps, series["read back"], "-", color="C0", lw=3, alpha=0.4,
               label="read back from the committed field")  # fmt: skip
    right.plot(steps, series["in-situ"], "o", color="C1", ms=4,
               label=f"in-situ ({SERIES}, committed with each step)")  # fmt: skip
    right.set_title("mean temperature in the box (cyan)")
    right.set_xlabel("step (= epoch)")
    right.set_ylabel("K")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    figure.savefig(path, format="png", dpi=100)


def report(args: argparse.Namespace, shape: Sequence[int], box: tuple[slice, slice],
           seen: list[int], elapsed: float, ranks: str) -> None:  # fmt: skip
    """Rank 0's summary: the series both ways, time travel, the watcher, the event log."""
    steps = args.steps
    nbytes = steps * shape[0] * shape[1] * 4
    print(f"{ranks} wrote {steps} steps of a {shape[0]}x{shape[1]} field "
          f"({nbytes / 2**20:.1f} MiB) in {elapsed:.2f} s, one epoch per step")  # fmt: skip
    with esdm_hpc.open(args.uri) as container:
        read_back = container["temperature"][:, box[0], box[1]].mean(axis=(1, 2), dtype="f8")
        in_situ = container[SERIES][...]
        last = container["temperature"][steps - 1]
        head = container.epoch
        log = EventLog(container.store).read()
    (y, x) = (box[0].start + HALF, box[1].start + HALF)
    print(f"mean temperature around the hot spot ({y}, {x}) per step:")
    print("  " + " ".join(f"{v:.1f}" for v in read_back))
    difference = float(np.max(np.abs(in_situ - read_back)))
    print(f"the same, computed in-situ (a Numba hook on every rank as it wrote, reduced at each "
          f"commit into {SERIES}, committed in the same epoch as the step's field): "
          f"largest difference to the read-back {difference:.1e}")  # fmt: skip
    with esdm_hpc.open(args.uri, epoch=TRAVEL_TO) as then:
        old_steps = then["temperature"].shape[0]
        old_series = int(np.count_nonzero(then[SERIES][...]))
        old_peak = float(then["temperature"][old_steps - 1].max())
    print(f"time travel: epoch {TRAVEL_TO} of {head} still shows the run as it was then: "
          f"{old_steps} steps of temperature (peak {old_peak:.1f} K, now "
          f"{float(last.max()):.1f} K) and {old_series} values of the in-situ series")  # fmt: skip
    missed = sorted(set(range(1, steps + 1)) - set(seen))
    print(f"a subscriber (esdm_hpc.watch in a thread, woken by file-system notifications) saw "
          f"{len(seen)} epochs as they were published, missed {missed or 'none'}")  # fmt: skip
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(Counter(e.kind for e in log).items()))
    print(f"the event log (esdm events {args.uri}): {kinds}; the last:")
    for event in log[-3:]:
        line = event.line()
        print("  " + (line if len(line) <= LINE else line[: LINE - 3] + "..."))
    png = args.png or default_png(args.uri)
    series = {"read back": read_back, "in-situ": in_situ, "epoch": head}
    draw(png, last, box, series)
    print(f"the last field and the in-situ series: {png}")
    print()
    cli.main(["info", args.uri])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[256, 192], metavar=("NY", "NX"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--uri", default="esdm://demo/heat")
    parser.add_argument("--png", type=Path, default=None, help="default: next to the data")
    args = parser.parse_args(argv)
    if args.steps < TRAVEL_TO:
        parser.error(f"--steps must be at least {TRAVEL_TO} (the demo travels back to it)")

    from mpi4py import MPI  # here, so --help works without an MPI launcher

    world = MPI.COMM_WORLD
    shape = tuple(args.shape)
    grid = decomposition.process_grid(shape, world.size)
    cart = world.Create_cart(grid, periods=[False, False], reorder=False)
    offset, count = decomposition.block(shape, grid, cart.rank)
    block = Block(cart, initial_block(offset, count, shape))
    region = tuple(slice(o, o + c) for o, c in zip(offset, count, strict=True))
    centre = (int(0.4 * shape[0]), int(0.6 * shape[1]))
    box = (slice(centre[0] - HALF, centre[0] + HALF), slice(centre[1] - HALF, centre[1] + HALF))
    box_part = box_part_hook()

    start = time.perf_counter()
    with esdm_hpc.open(args.uri, "w", comm=cart, overwrite=True) as container:
        container.attrs["model"] = "2-D heat diffusion, explicit Euler"
        temperature = container.create_dataset(
            "temperature", shape=(0, *shape), maxshape=(None, *shape), dtype="f4",
            dims=("time", "y", "x"),
        )  # fmt: skip
        temperature.attrs["units"] = "K"
        corners = {"lo": (box[0].start, box[1].start), "hi": (box[0].stop, box[1].stop)}
        temperature.on_write(box_part, args=corners, name="hotspot-part")
        temperature.on_commit(hotspot_mean, args={"steps": args.steps}, blocks=False,
                              name="hotspot-mean")  # fmt: skip
        watcher = Watcher(args.uri, args.steps) if cart.rank == 0 else None
        for step in range(args.steps):
            block.step()
            temperature.resize(step + 1, axis=0)
            temperature[(step, *region)] = block.interior
            container.commit()
        container.log_event("note", message="the demo's model ended", steps=args.steps)
    elapsed = time.perf_counter() - start

    if cart.rank == 0:
        assert watcher is not None
        ranks = f"{world.size} ranks on a {grid[0]}x{grid[1]} process grid"
        report(args, shape, box, watcher.join(), elapsed, ranks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
