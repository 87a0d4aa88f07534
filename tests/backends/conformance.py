"""The behaviour every storage backend must have: the conformance suite `BackendTests`.

The core reaches storage only through `esdm_hpc.backends.base.Backend`, so what
it relies on is written down here once, as tests, and every backend runs them:
data logs (offsets of appends, reads of any range, `readinto_ranges` and
`readinto_objects` with their errors, short reads, missing objects, a log
created twice, closed and discarded logs, concurrent appends) and objects
(list/size/delete, `write_atomic` replacing whole content that readers never
see half-written, `create_exclusive` with exactly one winner, the lock
`locked` that excludes every other holder and times out with an error naming
the object, names that cannot escape the target or alias another name).

How a new backend (burst buffer, S3) adopts the suite:

1. In ``tests/backends/test_<type>.py``, subclass `BackendTests` in a class
   whose name starts with ``Test`` (pytest collects it; importing it fails if
   it lacks `make_backend`, where pytest would skip it silently) and implement
   `make_backend`::

       class TestS3Backend(BackendTests):
           def make_backend(self, tmp_path: Path) -> Backend:
               bucket = f"test-{uuid.uuid4().hex}"
               return open_backend(backend_config("s3", bucket, options=...))

   It must return a backend on a target of its own, empty, for every test:
   tests assert exactly what `Backend.list` holds. Start what the backend
   talks to (a SeaweedFS server) once, in a session-scoped fixture the
   subclass depends on, and stop it afterwards; never mock it.
2. `reopen` gives a second backend object on the same target, as another part
   of the process or another rank gets it; the default opens the same
   configuration again. Override it if that needs more (a shared client).
3. A backend that reads `readinto_objects` in batches overrides the
   `several_batches` fixture so the five objects of that test take several.
4. Tests of what only that backend does (posix: Lustre striping, page
   placement; S3: the conditional-write probe, retries) stay in the same file,
   beside the subclass.

A subclass never overrides a test to weaken it: a backend that fails one does
not conform, and the core would misbehave on it.
"""

from __future__ import annotations

import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esdm_hpc.backends import Backend, BackendError, ObjectNotFoundError, open_backend
from esdm_hpc.config import BackendConfig, load_config

LOG = "containers/demo/data/e000000001/r000003.log"

# Hypothesis tests get one backend per test, not per example, so they write
# under fresh names. Every subclass runs the same inherited test, which
# Hypothesis reports as "differing executors"; none defines `execute_example`,
# so the examples run alike, and one backend's failing examples replayed on
# another are just more examples.
ONE_BACKEND_PER_TEST = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


def backend_config(kind: str, target: str, **changes: object) -> BackendConfig:
    raw = {"id": f"test-{kind}", "type": kind, "target": target, **changes}
    backends = [raw]
    if kind == "burstbuffer":  # it needs a global backend to drain to
        raw.setdefault("drain_to", "global")
        backends.append({"id": "global", "type": "memory", "target": "drained"})
    return load_config({"backends": backends}).backends[0]


def lock_elsewhere(other: Backend, name: str, timeout: float) -> BackendError | None:
    """Try the lock ``name`` through ``other`` from another thread, as another holder
    would; the error if it was refused."""
    failed: list[BackendError] = []

    def wait() -> None:
        try:
            with other.locked(name, timeout=timeout):
                pass
        except BackendError as error:
            failed.append(error)

    thread = threading.Thread(target=wait)
    thread.start()
    thread.join()
    return failed[0] if failed else None


class BackendTests(ABC):
    """The conformance tests; subclass it once per backend (see the module docstring)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        # pytest skips an abstract class without a word: a backend's test class
        # that forgot `make_backend` would pass while running nothing
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("Test") and getattr(
            cls.make_backend, "__isabstractmethod__", False
        ):
            raise TypeError(f"{cls.__name__} must implement make_backend(self, tmp_path)")

    @abstractmethod
    def make_backend(self, tmp_path: Path) -> Backend:
        """A new backend on an empty target that no other test uses."""

    def reopen(self, backend: Backend) -> Backend:
        """A second backend object on the same target, as another part of the process would get."""
        return open_backend(backend.config)

    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        with self.make_backend(tmp_path) as opened:
            yield opened

    @pytest.fixture  # noqa: B027 (a no-op by design: only a backend that batches overrides it)
    def several_batches(self) -> None:
        """Makes `readinto_objects` of five objects take several batches, where the
        backend reads in batches; nothing to do for one that does not."""

    # --- data logs -----------------------------------------------------------------------

    def test_append_returns_offsets_and_reads_back(self, backend: Backend) -> None:
        with backend.create_log(LOG) as log:
            assert log.name == LOG
            assert log.append(b"earth") == 0
            assert log.append(bytearray(b" system")) == 5
            assert log.append(memoryview(b" data")) == 12
            assert log.append(b"") == 17
            assert log.nbytes == 17
            log.sync()
        other = self.reopen(backend)
        assert other.size(LOG) == 17
        assert other.read(LOG, 0, 17) == b"earth system data"
        assert other.read(LOG, 6, 6) == b"system"
        assert other.read(LOG, 17, 0) == b""
        buffer = bytearray(4)
        other.readinto(LOG, 13, memoryview(buffer))
        assert buffer == b"data"
        other.readinto(LOG, 17, bytearray())

    def test_readinto_objects_reads_every_object_and_names_the_failures(
        self, backend: Backend, several_batches: None
    ) -> None:
        names = [f"containers/demo/data/e000000001/r{i:06d}.log" for i in range(5)]
        for i, name in enumerate(names):
            with backend.create_log(name) as log:
                log.append(bytes([i]) * 100)
        missing = "containers/demo/data/e000000001/gone.log"
        reads: dict[str, list[tuple[int, bytearray]]] = {
            name: [(10, bytearray(5)), (90, bytearray(10))] for name in names
        }
        reads[missing] = [(0, bytearray(1))]
        reads[names[3]].append((95, bytearray(10)))  # past the end
        errors = backend.readinto_objects(reads)
        assert sorted(errors) == sorted([missing, names[3]])
        assert isinstance(errors[missing], ObjectNotFoundError)
        assert "short read of bytes [95, 105)" in str(errors[names[3]])
        for i, name in enumerate(names):
            if name != names[3]:
                assert [bytes(b) for _, b in reads[name]] == [bytes([i]) * 5, bytes([i]) * 10]

    @ONE_BACKEND_PER_TEST
    @given(
        whole=st.binary(min_size=1, max_size=500),
        spans=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), max_size=6),
    )
    def test_readinto_ranges_fills_every_range_in_any_order(
        self, backend: Backend, whole: bytes, spans: list[tuple[float, float]]
    ) -> None:
        name = f"logs/{uuid.uuid4().hex}.log"
        with backend.create_log(name) as log:
            log.append(whole)
        # ranges anywhere in the log, overlapping and unordered as a read plan may ask
        ranges = []
        for start, extent in spans:
            offset = int(start * len(whole))
            ranges.append((offset, bytearray(int(extent * (len(whole) - offset)))))
        backend.readinto_ranges(name, ranges)
        assert [bytes(b) for _, b in ranges] == [whole[o : o + len(b)] for o, b in ranges]
        with pytest.raises(BackendError, match=rf"{name}: short read of bytes \[0, "):
            backend.readinto_ranges(name, [*ranges, (0, bytearray(len(whole) + 1))])
        with pytest.raises(ObjectNotFoundError, match=r"logs/gone\.log"):
            backend.readinto_ranges("logs/gone.log", [(0, bytearray(1))])

    def test_numpy_arrays_round_trip(self, backend: Backend) -> None:
        field = np.arange(24, dtype="<f8").reshape(4, 6)
        with backend.create_log(LOG) as log:
            log.append(b"header")
            start = log.append(field)
            log.append(np.empty((0, 3)))  # zero extent arrays are fine too
        out = np.empty_like(field)
        backend.readinto(LOG, start, out)
        np.testing.assert_array_equal(out, field)
        assert backend.read(LOG, start, field.nbytes) == field.tobytes()

    def test_non_contiguous_and_read_only_buffers_are_refused(self, backend: Backend) -> None:
        field = np.arange(24, dtype="<i4").reshape(4, 6)
        with backend.create_log(LOG) as log:
            with pytest.raises(ValueError, match="C-contiguous"):
                log.append(field[:, ::2])
            log.append(field)
        with pytest.raises(ValueError, match="read-only"):
            backend.readinto(LOG, 0, memoryview(bytes(8)))

    def test_short_read_names_backend_object_and_range(self, backend: Backend) -> None:
        with backend.create_log(LOG) as log:
            log.append(bytes(100))
        message = rf"backend '{backend.id}': {LOG}: short read of bytes \[90, 110\): only 10 of 20"
        with pytest.raises(BackendError, match=message):
            backend.read(LOG, 90, 20)
        with pytest.raises(BackendError, match=r"\[200, 201\): only 0 of 1"):
            backend.readinto(LOG, 200, bytearray(1))
        with pytest.raises(ValueError, match="offset >= 0"):
            backend.read(LOG, -1, 5)

    def test_missing_objects(self, backend: Backend) -> None:
        for call in (
            lambda: backend.read("nope.log", 0, 1),
            lambda: backend.readinto("nope.log", 0, bytearray(1)),
            lambda: backend.size("nope.log"),
            lambda: backend.read_small("a/nope"),
        ):
            with pytest.raises(ObjectNotFoundError, match=f"backend '{backend.id}': .*nope"):
                call()
        assert issubclass(ObjectNotFoundError, FileNotFoundError)
        assert not backend.exists("nope.log")

    def test_create_log_twice_is_an_error(self, backend: Backend) -> None:
        backend.create_log(LOG).close()
        with pytest.raises(BackendError, match=f"{LOG}: cannot create log: it exists already"):
            backend.create_log(LOG)

    def test_closed_log(self, backend: Backend) -> None:
        log = backend.create_log(LOG)
        log.append(b"x")
        log.close()
        log.close()  # harmless
        with pytest.raises(ValueError, match="closed"):
            log.append(b"y")
        assert backend.read(LOG, 0, 1) == b"x"

    def test_a_discarded_log_is_released_without_sync(self, backend: Backend) -> None:
        log = backend.create_log(LOG)
        log.append(b"x" * 10)
        log.discard()
        log.discard()
        with pytest.raises(ValueError, match="closed log"):
            log.append(b"more")

    def test_concurrent_appends_get_distinct_offsets(self, backend: Backend) -> None:
        log = backend.create_log(LOG)
        offsets: dict[int, list[int]] = {}

        def writer(tag: int) -> None:
            offsets[tag] = [log.append(bytes([tag]) * 64) for _ in range(50)]

        threads = [threading.Thread(target=writer, args=(tag,)) for tag in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        log.close()
        assert backend.size(LOG) == 4 * 50 * 64
        for tag, starts in offsets.items():
            for start in starts:
                assert backend.read(LOG, start, 64) == bytes([tag]) * 64

    @ONE_BACKEND_PER_TEST
    @given(chunks=st.lists(st.binary(max_size=300), max_size=8), data=st.data())
    def test_any_range_reads_what_was_appended(
        self, backend: Backend, chunks: list[bytes], data: st.DataObject
    ) -> None:
        name = f"logs/{uuid.uuid4().hex}.log"
        with backend.create_log(name) as log:
            starts = [log.append(chunk) for chunk in chunks]
        whole = b"".join(chunks)
        assert starts == [sum(map(len, chunks[:i])) for i in range(len(chunks))]
        offset = data.draw(st.integers(0, len(whole)))
        length = data.draw(st.integers(0, len(whole) - offset))
        assert backend.read(name, offset, length) == whole[offset : offset + length]

    # --- objects -------------------------------------------------------------------------

    def test_list_size_delete(self, backend: Backend) -> None:
        names = [
            "containers/a/data/e1/r0.log",
            "containers/a/data/e1/r1.log",
            "containers/a/HEAD",
            "containers/ab/HEAD",
            "top",
        ]
        for i, name in enumerate(names):
            backend.write_atomic(name, bytes(i))
        assert sorted(backend.list()) == sorted(names)
        assert sorted(backend.list("containers/a/")) == sorted(names[:3])
        assert sorted(backend.list("containers/a")) == sorted(names[:4])
        assert sorted(backend.list("containers/a/data/e1/r1")) == names[1:2]
        assert list(backend.list("elsewhere/")) == []
        assert [backend.size(n) for n in names] == [0, 1, 2, 3, 4]
        backend.delete(names[0])
        backend.delete(names[0])  # idempotent
        assert not backend.exists(names[0])
        assert sorted(backend.list("containers/a/data/")) == names[1:2]

    def test_write_atomic_replaces_whole_content(self, backend: Backend) -> None:
        backend.write_atomic("containers/c/HEAD", b"epoch 1")
        backend.write_atomic("containers/c/HEAD", b"epoch 2, longer")
        assert backend.read_small("containers/c/HEAD") == b"epoch 2, longer"
        assert list(backend.list()) == ["containers/c/HEAD"]

    def test_readers_never_see_a_partial_replacement(self, backend: Backend) -> None:
        old, new = b"o" * 100_000, b"n" * 50_000
        backend.write_atomic("HEAD", old)
        seen: set[bytes] = set()
        done = threading.Event()

        def reader() -> None:
            while not done.is_set():
                seen.add(backend.read_small("HEAD"))

        thread = threading.Thread(target=reader)
        thread.start()
        for i in range(20):
            backend.write_atomic("HEAD", new if i % 2 == 0 else old)
        done.set()
        thread.join()
        assert seen <= {old, new}

    def test_create_exclusive(self, backend: Backend) -> None:
        assert backend.create_exclusive("containers/c/lease", b"rank 0 on node1")
        assert not backend.create_exclusive("containers/c/lease", b"rank 0 on node2")
        assert backend.read_small("containers/c/lease") == b"rank 0 on node1"
        assert list(backend.list()) == ["containers/c/lease"]
        backend.delete("containers/c/lease")
        assert backend.create_exclusive("containers/c/lease", b"node2")

    def test_create_exclusive_has_one_winner(self, backend: Backend) -> None:
        wins: list[int] = []
        threads = [
            threading.Thread(
                target=lambda i=i: backend.create_exclusive("lease", b"%d" % i) and wins.append(i)
            )
            for i in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1
        assert backend.read_small("lease") == b"%d" % wins[0]

    def test_a_lock_excludes_every_other_holder(self, backend: Backend) -> None:
        inside: list[int] = []
        overlaps: list[int] = []

        def hold(i: int) -> None:
            with backend.locked("containers/c/LOCK"):
                inside.append(i)
                if len(inside) > 1:
                    overlaps.append(i)
                time.sleep(0.005)
                inside.remove(i)

        threads = [threading.Thread(target=hold, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert overlaps == []

    def test_a_lock_held_too_long_is_an_error_naming_it(self, backend: Backend) -> None:
        with backend.locked("c/LOCK"):
            failed = lock_elsewhere(self.reopen(backend), "c/LOCK", timeout=0.05)
        assert failed is not None and "c/LOCK: cannot lock" in str(failed)
        with backend.locked("c/LOCK", timeout=0.05):  # free again
            pass

    @pytest.mark.parametrize(
        "name",
        ["../escape", "/etc/passwd", "a/../../escape", "a//b", "./a", "a/.", "", "a\0b"],
    )
    def test_names_cannot_escape_or_alias(self, backend: Backend, name: str) -> None:
        for call in (
            lambda: backend.create_log(name),
            lambda: backend.read(name, 0, 1),
            lambda: backend.readinto(name, 0, bytearray(1)),
            lambda: backend.size(name),
            lambda: backend.exists(name),
            lambda: backend.delete(name),
            lambda: backend.write_atomic(name, b"x"),
            lambda: backend.read_small(name),
            lambda: backend.create_exclusive(name, b"x"),
        ):
            with pytest.raises(ValueError, match="name"):
                call()
        with pytest.raises(ValueError):
            list(backend.list("../"))
