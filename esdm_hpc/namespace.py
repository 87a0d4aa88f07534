"""The namespace of a container: groups, datasets, named datatypes, their
attributes, and the links that name them.

It is small (no data), copied whole into every manifest, and changed only by
collective calls, so every rank holds an identical copy.

Identity and names. Every object is created at a path, its *home*, and that
path is its identity for good: fragments, attributes and tokens are keyed by
it. Further names are links (``links``): a hard link is another name for an
identity, a soft link holds a path resolved each time it is followed, an
external link a path in another container (followed by whoever can open
it: a lookup here stops at it with `ExternalLinkFound`), a user-defined link
an opaque value of an HDF5 link class, kept and never followed.
Deleting a name never moves data: deleting the home name of an object that a
hard link still reaches only hides the home (``unlinked``), and an object is
dropped, with what only it reached, once no name reaches it. A hidden home is
no longer listed nor a link, but as the object's identity it still resolves
(open handles hold identities) and cannot be reused while the object lives.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np

from esdm_hpc.encoding import array_from_json, array_to_json, dtype_from_json, dtype_to_json

UNLIMITED = None
# soft links followed in one lookup before it is taken for a loop (HDF5's H5L_NUM_LINKS)
MAX_SOFT_LINKS = 16

LinkKind = Literal["hard", "soft", "external", "user"]
LINK_KINDS = get_args(LinkKind)


@dataclass(frozen=True, slots=True)
class Link:
    """A name other than an object's home: ``target`` is the identity a hard link
    names, the path a soft link holds (relative to the link's group unless
    absolute), the absolute path in the container ``file`` an external link
    names, or a user-defined link's value in hex (its HDF5 link class in
    ``user_class``)."""

    kind: LinkKind
    target: str
    file: str = ""
    user_class: int = 0

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"kind": self.kind, "target": self.target}
        if self.kind == "external":
            record["file"] = self.file
        elif self.kind == "user":
            record["user_class"] = self.user_class
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Link:
        if record["kind"] not in LINK_KINDS:
            raise ValueError(f"unknown link kind {record['kind']!r}")
        return cls(
            record["kind"], record["target"], record.get("file", ""), record.get("user_class", 0)
        )


class ExternalLinkFound(KeyError):
    """A lookup reached an external link: the rest of the way is in another container."""

    def __init__(self, file: str, path: str):
        super().__init__(f"{path!r} is in another container, {file!r} (an external link)")
        self.file = file
        self.path = path  # absolute, in that container


@dataclass(frozen=True, slots=True)
class Shrink:
    """A resize that made a dataset smaller: what was written before it, outside
    ``shape``, is gone, so growing the dataset again shows the fill value there
    (as HDF5). Fragments are immutable; readers clip the older ones instead.

    Before it means: in an older epoch, or in ``epoch`` with a lower write
    sequence number than ``marks[rank]`` (each rank's count of fragments
    written in that epoch when the resize ran).
    """

    shape: tuple[int, ...]
    epoch: int
    marks: tuple[int, ...]

    def covers(self, epochs: np.ndarray, ranks: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """Which of the fragments (given by their epoch, rank and seq) came before it."""
        marks = np.asarray(self.marks, dtype=np.int64)
        known = ranks < len(marks)
        mark = np.where(known, marks[np.minimum(ranks, len(marks) - 1)], 0)
        return (epochs < self.epoch) | ((epochs == self.epoch) & known & (seqs < mark))

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "epoch": self.epoch, "marks": list(self.marks)}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Shrink:
        return cls(tuple(record["shape"]), record["epoch"], tuple(record["marks"]))


@dataclass(frozen=True, slots=True)
class DatasetMeta:
    path: str
    shape: tuple[int, ...]
    maxshape: tuple[int | None, ...]
    dtype: np.dtype
    fillvalue: np.ndarray  # 0-d array of ``dtype``
    dims: tuple[str, ...]
    # the epoch committed when the dataset was created: its own fragments are
    # all newer; older ones of the same path belong to a dataset it replaced
    created_epoch: int = 0
    hints: dict[str, Any] = field(default_factory=dict)
    shrinks: tuple[Shrink, ...] = ()  # oldest first
    # HDF5's null dataspace (h5py's Empty): a type and no elements, kept as shape (0,)
    null: bool = False

    def resized(self, shape: tuple[int, ...], shrink: Shrink | None = None) -> DatasetMeta:
        """The dataset with a new shape; ``shrink`` records that it got smaller."""
        if shrink is None:
            return replace(self, shape=shape)
        # an older shrink to a shape no smaller on any axis clips nothing more
        kept = tuple(
            old
            for old in self.shrinks
            if not all(a >= b for a, b in zip(old.shape, shrink.shape, strict=True))
        )
        return replace(self, shape=shape, shrinks=(*kept, shrink))

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "maxshape": list(self.maxshape),
            "dtype": dtype_to_json(self.dtype),
            "fillvalue": array_to_json(self.fillvalue),
            "dims": list(self.dims),
            "created_epoch": self.created_epoch,
            "hints": self.hints,
            **({"shrinks": [s.to_json() for s in self.shrinks]} if self.shrinks else {}),
            **({"null": True} if self.null else {}),
        }

    @classmethod
    def from_json(cls, path: str, record: dict[str, Any]) -> DatasetMeta:
        return cls(
            path=path,
            shape=tuple(record["shape"]),
            maxshape=tuple(record["maxshape"]),
            dtype=dtype_from_json(record["dtype"]),
            fillvalue=array_from_json(record["fillvalue"]),
            dims=tuple(record["dims"]),
            created_epoch=record["created_epoch"],
            hints=record["hints"],
            shrinks=tuple(Shrink.from_json(s) for s in record.get("shrinks", ())),
            null=record.get("null", False),
        )


@dataclass(slots=True)
class Namespace:
    groups: set[str] = field(default_factory=lambda: {"/"})
    datasets: dict[str, DatasetMeta] = field(default_factory=dict)
    attributes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # named (committed) datatypes: identity -> the type as the VOL bridge spells it
    # (a JSON value: esdm_hpc.vol.dtypes)
    datatypes: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    unlinked: set[str] = field(default_factory=set)
    # creation order of every name in its group, and each group's next one
    # (as HDF5's max_corder: it goes back to 0 only when the group empties); it is kept for every
    # group, ``ordered`` are those whose creator asked for it (HDF5 lists them
    # in creation order by default)
    order: dict[str, int] = field(default_factory=dict)
    next_order: dict[str, int] = field(default_factory=dict)
    ordered: set[str] = field(default_factory=set)
    # ordered groups whose creator asked for no index of the order (HDF5's
    # H5P_CRT_ORDER_TRACKED alone): only reported back, as it was asked
    unindexed: set[str] = field(default_factory=set)

    def dataset(self, path: str, where: str) -> DatasetMeta:
        """The dataset ``path``; KeyError naming it (in ``where``) if there is none."""
        try:
            return self.datasets[path]
        except KeyError:
            raise KeyError(f"{where}: no dataset {path!r}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "groups": sorted(self.groups),
            "datasets": {p: d.to_json() for p, d in sorted(self.datasets.items())},
            "attributes": {
                p: {k: array_to_json(v) for k, v in attrs.items()}
                for p, attrs in sorted(self.attributes.items())
                if attrs
            },
            "datatypes": dict(sorted(self.datatypes.items())),
            "links": {n: link.to_json() for n, link in sorted(self.links.items())},
            "unlinked": sorted(self.unlinked),
            "order": dict(sorted(self.order.items())),
            "next_order": dict(sorted(self.next_order.items())),
            "ordered": sorted(self.ordered),
            **({"unindexed": sorted(self.unindexed)} if self.unindexed else {}),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Namespace:
        # manifests written before links existed lack the later keys
        return cls(
            groups=set(record["groups"]),
            datasets={p: DatasetMeta.from_json(p, d) for p, d in record["datasets"].items()},
            attributes={
                p: {k: array_from_json(v) for k, v in attrs.items()}
                for p, attrs in record["attributes"].items()
            },
            datatypes=dict(record.get("datatypes", {})),
            links={n: Link.from_json(r) for n, r in record.get("links", {}).items()},
            unlinked=set(record.get("unlinked", ())),
            order=dict(record.get("order", {})),
            next_order=dict(record.get("next_order", {})),
            ordered=set(record.get("ordered", ())),
            unindexed=set(record.get("unindexed", ())),
        )

    # --- lookups ------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """Whether ``path`` (absolute, normalised) leads to an object, following links."""
        try:
            self.resolve(path)
        except KeyError:
            return False
        return True

    def resolve(self, path: str) -> str:
        """The identity of the object ``path`` leads to, following links; KeyError if none."""
        return self._walk(path, follow_last=True, create=False, hops=0)

    def locate(self, path: str) -> str:
        """The name ``path`` stands for: its groups followed through links, its last
        component not (that is the link itself); components past the first missing
        one are kept as they are, for creating them."""
        return self._walk(path, follow_last=False, create=True, hops=0)

    def taken(self, name: str) -> bool:
        """Whether a new object or link may not be called ``name`` (a located name)."""
        return name in self.links or self.is_object(name)

    def is_object(self, identity: str) -> bool:
        return identity in self.groups or identity in self.datasets or identity in self.datatypes

    def link(self, name: str) -> Link:
        """How the located ``name`` names its object: its link, or a hard link to
        itself for a home name; KeyError if nothing has that name."""
        if name in self.links:
            return self.links[name]
        if self._alive(name):
            return Link("hard", name)
        raise KeyError(f"no link {name!r}")

    def children(self, group: str) -> list[str]:
        """The names in the group with identity ``group``, in name order."""
        return sorted(self._names_in(group))

    def children_by_order(self, group: str) -> list[str]:
        """The names in the group with identity ``group``, in creation order."""
        return sorted(self._names_in(group), key=lambda n: self.order.get(_join(group, n), -1))

    def hard_links_to(self, identity: str) -> int:
        """How many names reach ``identity`` (HDF5's reference count)."""
        own = 0 if identity in self.unlinked else 1
        return own + sum(
            1 for k in self.links.values() if k.kind == "hard" and k.target == identity
        )

    # --- changes (the container checks they are collective) ------------------------

    def name(self, name: str) -> None:
        """Record the creation order of the new name ``name``."""
        group = posixpath.dirname(name)
        self.order[name] = self.next_order.get(group, 0)
        self.next_order[group] = self.order[name] + 1

    def add_link(self, name: str, link: Link) -> None:
        self.links[name] = link
        self.name(name)

    def remove(self, name: str) -> None:
        """Delete the located ``name``; its object goes once no name reaches it."""
        link = self.links.pop(name, None)
        if link is None and not self._alive(name):
            raise KeyError(f"no link {name!r}")
        self.order.pop(name, None)
        if link is None:
            self.unlinked.add(name)
            self.collect(name)
        elif link.kind == "hard":
            self.collect(link.target)
        group = posixpath.dirname(name)
        if not self._names_in(group):
            self.next_order.pop(group, None)  # an emptied group counts from 0 again, as in HDF5

    def rename(self, old: str, new: str) -> None:
        """Give the object ``old`` and what lies below it the identity ``new``: for an
        anonymous object named by its first link, before anything refers to it."""
        self.unlinked.discard(old)
        if old not in self.groups:  # nothing lies below it, nothing links to it yet
            if old in self.datasets:
                self.datasets[new] = replace(self.datasets.pop(old), path=new)
            if old in self.datatypes:
                self.datatypes[new] = self.datatypes.pop(old)
            if old in self.attributes:
                self.attributes[new] = self.attributes.pop(old)
            return

        def moved(path: str) -> str:
            return renamed(path, old, new)

        self.groups = {moved(p) for p in self.groups}
        self.datasets = {moved(p): replace(d, path=moved(p)) for p, d in self.datasets.items()}
        self.datatypes = {moved(p): t for p, t in self.datatypes.items()}
        self.attributes = {moved(p): a for p, a in self.attributes.items()}
        self.links = {
            moved(n): replace(k, target=moved(k.target)) if k.kind == "hard" else k
            for n, k in self.links.items()
        }
        self.unlinked = {moved(p) for p in self.unlinked}
        self.order = {moved(p): o for p, o in self.order.items()}
        self.next_order = {moved(p): o for p, o in self.next_order.items()}
        self.ordered = {moved(p) for p in self.ordered}
        self.unindexed = {moved(p) for p in self.unindexed}

    # --- internals ------------------------------------------------------------------

    def _alive(self, identity: str) -> bool:
        return self.is_object(identity) and identity not in self.unlinked

    def _names_in(self, group: str) -> list[str]:
        homes = (
            p
            for p in (*self.groups, *self.datasets, *self.datatypes)
            if p != "/" and posixpath.dirname(p) == group and p not in self.unlinked
        )
        links = (n for n in self.links if posixpath.dirname(n) == group)
        return [posixpath.basename(n) for n in (*homes, *links)]

    def _walk(self, path: str, follow_last: bool, create: bool, hops: int) -> str:
        parts = [p for p in path.split("/") if p]
        current = "/"
        for depth, part in enumerate(parts):
            name = _join(current, part)
            last = depth == len(parts) - 1
            link = self.links.get(name)
            if link is not None and (follow_last or not last):
                current = self._follow(link, current, hops, parts[depth + 1 :])
            elif link is not None or self.is_object(name):
                current = name
            elif create:
                return "/".join([name, *parts[depth + 1 :]])
            else:
                raise KeyError(f"no object {path!r}")
        return current

    def _follow(self, link: Link, group: str, hops: int, rest: list[str]) -> str:
        if link.kind == "hard":
            return link.target
        if link.kind == "external":
            raise ExternalLinkFound(link.file, posixpath.join(link.target, *rest))
        if link.kind == "user":
            raise KeyError(f"a user-defined link (class {link.user_class}) cannot be followed")
        if hops >= MAX_SOFT_LINKS:
            raise KeyError(f"more than {MAX_SOFT_LINKS} soft links in a row (a loop?)")
        target = link.target if link.target.startswith("/") else _join(group, link.target)
        try:
            found = self._walk(posixpath.normpath(target), True, False, hops + 1)
        except ExternalLinkFound as external:
            raise ExternalLinkFound(external.file, posixpath.join(external.path, *rest)) from None
        except KeyError:
            raise KeyError(f"soft link to {link.target!r} dangles") from None
        return found

    def collect(self, identity: str) -> None:
        """Drop ``identity`` if no name reaches it any more, with what only it reached."""
        if identity not in self.unlinked or self.hard_links_to(identity):
            return
        self.unlinked.discard(identity)
        self.groups.discard(identity)
        self.ordered.discard(identity)
        self.unindexed.discard(identity)
        self.datasets.pop(identity, None)
        self.datatypes.pop(identity, None)
        self.attributes.pop(identity, None)
        self.next_order.pop(identity, None)
        for member in self._names_in(identity):
            self.remove(_join(identity, member))


def renamed(path: str, old: str, new: str) -> str:
    """``path`` after the object ``old`` became ``new`` (itself or below it; else as it is)."""
    return new + path[len(old) :] if path == old or path.startswith(f"{old}/") else path


def _join(group: str, name: str) -> str:
    return group.rstrip("/") + "/" + name
