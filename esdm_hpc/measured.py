"""Measured performance of the backends (docs/architecture.md §4.3): what writes
really cost, against what the configuration says they cost.

Every writer times its appends and syncs per backend (`Timing`, kept by
`EpochWriter`), and every manifest records the epoch's timings beside the
time the cost model predicted for them. After a commit, rank 0 folds them into
the site's measured model (`Measured`): per backend an exponentially weighted
average (weight `ALPHA` for the newest) of the write latency, from epochs of
small appends, and of the write bandwidth, from epochs of large ones, kept
as one small object per backend under ``performance/`` on the site's metadata
backend, so every container of the site teaches it. ``esdm backends`` shows
it; placement uses it instead of the configured figures where the site
configuration says ``performance_model = "learned"`` (`learned_site`), once
a backend has `MIN_SAMPLES` samples.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from esdm_hpc.backends import Backend, ObjectNotFoundError
from esdm_hpc.config import BackendConfig, PerformanceModel, SiteConfig

logger = logging.getLogger(__name__)

ALPHA = 0.2  # the weight of the newest epoch in the averages
MIN_SAMPLES = 3  # samples before placement trusts an average over the configuration
SMALL_APPEND = 64 << 10  # an epoch whose appends average less is a latency sample
LARGE_APPEND = 1 << 20  # one whose appends average more is a bandwidth sample
PREFIX = "performance/"
STORE_SECONDS = 5.0  # a process stores the models it learns at most this often


@dataclass(slots=True)
class Timing:
    """One rank's (or, summed, one epoch's) writes to one backend."""

    appends: int = 0
    bytes: int = 0
    seconds: float = 0.0  # spent in appends and syncs
    predicted_s: float = 0.0  # what the cost model expected of them

    def add(self, other: Timing) -> None:
        self.appends += other.appends
        self.bytes += other.bytes
        self.seconds += other.seconds
        self.predicted_s += other.predicted_s

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def summed(per_rank: Iterable[Mapping[str, Timing]]) -> dict[str, Timing]:
    """The epoch's timings per backend: every rank's added up."""
    total: dict[str, Timing] = {}
    for timings in per_rank:
        for backend, timing in timings.items():
            total.setdefault(backend, Timing()).add(timing)
    return total


@dataclass(frozen=True, slots=True)
class Measured:
    """A backend's measured write latency and bandwidth, and how many epochs taught each."""

    latency_s: float | None = None
    latency_samples: int = 0
    write_bandwidth: float | None = None
    bandwidth_samples: int = 0

    def learn(self, timing: Timing) -> Measured:
        """These averages with one more epoch's ``timing`` folded in."""
        if timing.appends == 0 or timing.seconds <= 0:
            return self
        mean = timing.bytes / timing.appends
        if mean < SMALL_APPEND:
            latency = _average(self.latency_s, timing.seconds / timing.appends)
            return dataclasses.replace(
                self, latency_s=latency, latency_samples=self.latency_samples + 1
            )
        if mean >= LARGE_APPEND:
            bandwidth = _average(self.write_bandwidth, timing.bytes / timing.seconds)
            return dataclasses.replace(
                self, write_bandwidth=bandwidth, bandwidth_samples=self.bandwidth_samples + 1
            )
        return self

    def applied(self, model: PerformanceModel) -> PerformanceModel:
        """``model`` with the averages that have enough samples in place of its figures."""
        changes: dict[str, float] = {}
        if self.latency_s is not None and self.latency_samples >= MIN_SAMPLES:
            changes["latency_s"] = self.latency_s
        if self.write_bandwidth is not None and self.bandwidth_samples >= MIN_SAMPLES:
            changes["write_bandwidth"] = self.write_bandwidth
        return dataclasses.replace(model, **changes)


def _average(old: float | None, new: float) -> float:
    return new if old is None else (1 - ALPHA) * old + ALPHA * new


def load(meta: Backend, backend_id: str) -> Measured:
    """The measured model of ``backend_id`` kept on ``meta`` (empty if none or unreadable)."""
    try:
        record = json.loads(meta.read_small(f"{PREFIX}{backend_id}.json"))
        return Measured(**record)
    except ObjectNotFoundError:
        return Measured()
    except (OSError, ValueError, TypeError) as error:  # an estimate: never fail over it
        logger.warning("measured performance of %r unreadable, starting afresh: %s",
                       backend_id, error)  # fmt: skip
        return Measured()


@dataclass(slots=True)
class _Kept:
    """A process's models of one site, where they are kept, and when it last stored them."""

    meta: Backend
    models: dict[str, Measured]
    stored_at: float = -math.inf

    def store(self) -> None:
        self.stored_at = time.monotonic()
        for backend_id, model in self.models.items():
            data = json.dumps(dataclasses.asdict(model)).encode()
            self.meta.write_atomic(f"{PREFIX}{backend_id}.json", data)


_kept: dict[tuple[str, str], _Kept] = {}  # by the metadata backend's id and target
_kept_lock = threading.Lock()


def flush(meta: Backend) -> None:
    """Store what this process learned of the site kept on ``meta`` and has not stored
    yet (a writer calls it at its close, not the process at its exit, when the site
    may be gone; best effort: an estimate never fails the program)."""
    with _kept_lock:
        kept = _kept.pop((meta.id, meta.config.target), None)
    if kept is not None:
        try:
            kept.store()
        except Exception as error:
            logger.warning("measured performance not recorded on %r: %s", meta.id, error)


def record(meta: Backend, timings: Mapping[str, Timing]) -> None:
    """Fold one epoch's ``timings`` into the site's models (rank 0, after a commit).

    Stored at most every `STORE_SECONDS` per process (a commit every step must not
    pay a durable write per backend for an estimate; at most that much is lost
    when the process ends). Never raises: the epoch is published already."""
    try:
        with _kept_lock:
            kept = _kept.setdefault((meta.id, meta.config.target), _Kept(meta, {}))
            for backend_id, timing in timings.items():
                if backend_id not in kept.models:
                    kept.models[backend_id] = load(meta, backend_id)
                kept.models[backend_id] = kept.models[backend_id].learn(timing)
            if time.monotonic() - kept.stored_at >= STORE_SECONDS:
                kept.store()
    except Exception as error:
        logger.warning("measured performance not recorded on %r: %s", meta.id, error)


def learned_site(site: SiteConfig, meta: Backend) -> SiteConfig:
    """``site`` with its backends' measured figures (kept on ``meta``) in place of the
    configured ones: for a site with ``performance_model = "learned"``."""
    backends = tuple(_learned(b, meta) for b in site.backends)
    return dataclasses.replace(site, backends=backends)


def _learned(backend: BackendConfig, meta: Backend) -> BackendConfig:
    performance = load(meta, backend.id).applied(backend.performance)
    return dataclasses.replace(backend, performance=performance)
