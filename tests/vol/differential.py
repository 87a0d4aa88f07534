"""A random h5py program whose output must not depend on the connector.

    python differential.py FILE SEED OPERATIONS

Creates datasets of several types (numbers of both byte orders, compounds,
fixed and variable-length strings; fixed or extendible, with and without
fill values), then writes, reads, resizes (shrinking too), flushes, writes
point selections, reads compound fields, sets attributes and reopens the
file, in an order drawn from SEED. Prints a JSON list of what it did and a
digest of everything it read; tests/vol/test_differential.py runs it with
native HDF5 and through the connector and compares the two lists.
"""

import hashlib
import json
import sys

import h5py
import numpy as np

DTYPES = [
    np.dtype("<f8"),
    np.dtype("<i4"),
    np.dtype(">u2"),
    np.dtype("i1"),
    np.dtype([("a", "<i4"), ("b", "<f8")]),
    h5py.string_dtype(),
    np.dtype("S5"),
]


class Program:
    def __init__(self, name: str, seed: int):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.log: list = []
        self.file = h5py.File(name, "w")
        self.datasets: list = []

    def values(self, dtype: np.dtype, shape: tuple) -> np.ndarray:
        rng, n = self.rng, int(np.prod(shape))
        if dtype.kind == "O":
            words = [f"w{rng.integers(0, 1000)}" * int(rng.integers(0, 3)) for _ in range(n)]
            return np.array(words, dtype=object).reshape(shape)
        if dtype.kind == "S":
            return np.array([b"s%d" % rng.integers(0, 999) for _ in range(n)], dtype).reshape(shape)
        if dtype.names:
            array = np.zeros(shape, dtype)
            array["a"], array["b"] = rng.integers(-100, 100, shape), rng.random(shape)
            return array
        if dtype.kind == "f":
            return rng.random(shape).astype(dtype)
        info = np.iinfo(dtype)
        native = dtype.newbyteorder("=")
        return rng.integers(info.min, info.max, shape, dtype=native, endpoint=True).astype(dtype)

    def selection(self, shape: tuple) -> tuple:
        rng, chosen = self.rng, []
        for n in shape:
            start = int(rng.integers(0, n)) if n else 0
            kind = rng.integers(0, 3)
            if n == 0:
                chosen.append(slice(0, 0))
            elif kind == 0:
                chosen.append(slice(start, int(rng.integers(start + 1, n + 1))))
            elif kind == 1:
                chosen.append(start)
            else:
                chosen.append(slice(start, n, int(rng.integers(1, 4))))
        return tuple(chosen)

    def any_dataset(self):
        return self.datasets[int(self.rng.integers(0, len(self.datasets)))]

    def create(self) -> None:
        rng = self.rng
        dtype = DTYPES[rng.integers(0, len(DTYPES))]
        shape = tuple(int(rng.integers(1, 7)) for _ in range(int(rng.integers(1, 4))))
        maxshape = tuple(None if rng.random() < 0.5 else s for s in shape)
        chunks = shape if None in maxshape else None
        fill = dtype.type(7) if dtype.kind in "fi" and rng.random() < 0.5 else None
        name = f"d{len(self.datasets)}"
        dataset = self.file.create_dataset(
            name, shape, dtype=dtype, maxshape=maxshape, chunks=chunks, fillvalue=fill
        )
        self.datasets.append(dataset)
        self.log.append(("create", name, str(dtype), shape))

    def resize(self, dataset) -> None:
        shape = tuple(
            int(self.rng.integers(0, 8)) if m is None else s
            for s, m in zip(dataset.shape, dataset.maxshape, strict=True)
        )
        dataset.resize(shape)
        self.log.append(("resize", dataset.name, shape))

    def write(self, dataset) -> None:
        chosen = self.selection(dataset.shape)
        shape = np.empty(dataset.shape, dtype=np.int8)[chosen].shape
        if 0 not in shape:
            dataset[chosen] = self.values(dataset.dtype, shape)
            self.log.append(("write", dataset.name, str(chosen)))

    def read(self, dataset) -> None:
        chosen = self.selection(dataset.shape)
        self.log.append(("read", dataset.name, str(chosen), digest(dataset[chosen])))

    def points(self, dataset) -> None:
        if dataset.dtype.names:
            self.log.append(("field", dataset.name, digest(dataset.fields(["b"])[()])))
        elif dataset.ndim == 1 and dataset.shape[0] and dataset.dtype.kind in "fiu":
            mask = self.rng.random(dataset.shape[0]) < 0.5
            if mask.any():
                dataset[mask] = self.values(dataset.dtype, (int(mask.sum()),))
                self.log.append(("points", dataset.name, digest(dataset[mask])))

    def attribute(self) -> None:
        rng = self.rng
        owner = self.file if rng.random() < 0.3 else self.any_dataset()
        key = f"a{int(rng.integers(0, 5))}"
        choices = [np.float32(rng.random()), f"text {rng.integers(0, 99)}", np.arange(3)]
        owner.attrs[key] = choices[int(rng.integers(0, 3))]
        self.log.append(("attr", owner.name, key, sorted(owner.attrs), str(owner.attrs[key])))

    def reopen(self) -> None:
        names = [d.name for d in self.datasets]
        self.file.close()
        self.file = h5py.File(self.name, "a")
        self.datasets = [self.file[n] for n in names]
        self.log.append(("reopen",))

    def step(self) -> None:
        r = self.rng.random()
        if not self.datasets or r < 0.1:
            self.create()
        elif r < 0.25 and None in (dataset := self.any_dataset()).maxshape:
            self.resize(dataset)
        elif r < 0.6:
            self.write(self.any_dataset())
        elif r < 0.65:
            self.file.flush()
        elif r < 0.85:
            self.read(self.any_dataset())
        elif r < 0.9:
            self.points(self.any_dataset())
        elif r < 0.97:
            self.attribute()
        else:
            self.reopen()

    def finish(self) -> None:
        self.file.close()
        with h5py.File(self.name, "r") as f:
            for name in sorted(f):
                self.log.append(("closed", name, digest(f[name][()]), sorted(f[name].attrs)))


def digest(values) -> str:
    array = np.asarray(values)
    if array.dtype.kind == "O":
        text = [v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel()]
        data = json.dumps(text).encode()
    else:
        data = np.ascontiguousarray(array).tobytes()
    return f"{hashlib.md5(data).hexdigest()} {array.shape}"


def main() -> None:
    name, seed, operations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    program = Program(name, seed)
    for _ in range(operations):
        program.step()
    program.finish()
    print(json.dumps(program.log))


if __name__ == "__main__":
    main()
