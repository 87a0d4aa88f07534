"""Why the posix backend places large payloads half a page into its logs.

    python benchmarks/page_alignment.py [--mib 64] [--dir DIR] [--json PATH]

Reads the same cached file range with ``preadv`` into one buffer at several
distances d = (buffer address - file offset) mod 4096 and prints the copy
bandwidth for each. On CPUs whose kernel copies with ``rep movsb`` (FSRM; AMD
Zen here) a distance of 1-31 bytes runs at a fraction of the speed of any
other, and malloc'd buffers (numpy's, HDF5's) start 16 bytes past a page
boundary: a payload at page offset 0 is read at d = 16. ESDM's logs put
payloads of 64 KiB and more at page offset 2048 (d = 16 - 2048), as HDF5's
raw data happens to be (``esdm_hpc/backends/posix.py``, PAYLOAD_PAGE_OFFSET).
With --json, the figures go there and their chart next to it (the same path, .png).
The peer of each distance is the others: no ESDM code runs here.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from plotting import Panel, chart_path, write_chart

PAGE = 4096
DISTANCES = (0, 1, 16, 32, 33, 64, 512, 2048 + 16, 4080)


def best_mib_s(fd: int, view: memoryview, offset: int, repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        os.preadv(fd, [view], offset)
        best = min(best, time.perf_counter() - start)
    return view.nbytes / (1 << 20) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="bytes read per call, MiB")
    parser.add_argument("--dir", type=Path, default=None, help="where the file goes")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    nbytes = args.mib << 20
    with tempfile.NamedTemporaryFile(dir=args.dir) as file:
        file.write(np.random.default_rng(0).bytes(nbytes + PAGE))
        file.flush()
        fd = file.fileno()
        raw = np.ones(nbytes + 2 * PAGE, np.uint8)  # touched: no page faults in the timing
        base = raw.ctypes.data
        print(f"preadv of {args.mib} MiB from the page cache, file offset 0 (page-aligned)")
        print("distance (buffer - file) mod 4096   MiB/s")
        rates = {}
        for distance in DISTANCES:
            skip = (distance - base) % PAGE
            view = memoryview(raw)[skip : skip + nbytes]
            rates[distance] = best_mib_s(fd, view, 0)
            print(f"{distance:>35}   {rates[distance]:6.0f}")
    if args.json:
        save(args.json, args.mib, rates)
    return 0


def save(path: Path, mib: int, rates: dict[int, float]) -> None:
    """The bandwidths as JSON at ``path`` and their chart beside it."""
    path.write_text(json.dumps({"mib": mib, "mib_s_by_distance": rates}, indent=1) + "\n")
    panel = Panel(
        "best of 7; bytes 1-31 past the source's page offset run slowest on FSRM CPUs",
        "MiB/s",
        [f"d = {distance}" for distance in rates],
        {"preadv": list(rates.values())},
    )
    title = f"preadv of {mib} MiB from the page cache by distance (buffer - file offset) mod 4096"
    write_chart(chart_path(path), title, [panel])


if __name__ == "__main__":
    raise SystemExit(main())
