"""A writer for the crash tests: deterministic epochs, one line per commit.

    python crash_writer.py ROOT NAME EPOCHS [PACK_EPOCHS]

Epoch e writes WRITES_PER_EPOCH slabs of /x whose content depends only on
(e, i), so the test can rebuild the expected state of any epoch.
"""

import sys

import numpy as np

import esdm_hpc
from esdm_hpc.epochs import commit

SHAPE = (48, 40)
WRITES_PER_EPOCH = 4


def writes(epoch: int) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    rng = np.random.default_rng(epoch)
    out = []
    for i in range(WRITES_PER_EPOCH):
        r0, c0 = int(rng.integers(0, 40)), int(rng.integers(0, 30))
        region = (slice(r0, r0 + 8), slice(c0, c0 + 10))
        out.append((region, np.full((8, 10), epoch * 100 + i, dtype=np.int32)))
    return out


def expected(epoch: int) -> np.ndarray:
    state = np.full(SHAPE, -1, dtype=np.int32)
    for e in range(2, epoch + 1):  # epoch 1 only creates the dataset
        for region, values in writes(e):
            state[region] = values
    return state


def config(root: str) -> dict:
    # small fragments and checksum blocks: many appends, many crash points
    return {
        "backends": [
            {"id": "disk", "type": "posix", "target": root,
             "limits": {"max_fragment_bytes": 128}}
        ],
        "block_size": 64,
    }  # fmt: skip


def main() -> None:
    root, name, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:  # pack every few epochs (64 by default): packs are crashed in too
        commit.PACK_EPOCHS = int(sys.argv[4])
    with esdm_hpc.open(f"esdm://{name}", "w", config=config(root)) as c:
        x = c.create_dataset("x", shape=SHAPE, dtype="i4", fillvalue=-1)
        c.commit()
        print("committed 1", flush=True)
        for epoch in range(2, epochs + 1):
            for region, values in writes(epoch):
                x[region] = values
            c.commit()
            print(f"committed {epoch}", flush=True)


if __name__ == "__main__":
    main()
