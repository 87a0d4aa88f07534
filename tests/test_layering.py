"""The layering of esdm_hpc (docs/architecture.md §1): every module imports only
from its own layer or the layers below, and no module uses another module's
private names.

The modules are read with `ast`, not imported: a test of the source, seconds
to run, independent of the compiled kernels.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "esdm_hpc"

# Bottom first, as the table in docs/architecture.md §1.1 (keep the two alike).
# "pkg.*" is the package and every module below it, the ones to come included
# (a new backend, a new piece of the VOL connector's Python side).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernels", ("esdm_hpc.kernels.*",)),
    (
        "records",
        (
            "esdm_hpc.errors",
            "esdm_hpc.faults",
            "esdm_hpc.config",
            "esdm_hpc.uri",
            "esdm_hpc.comm",
            "esdm_hpc.selection",
            "esdm_hpc.empty",
            "esdm_hpc.strings",
            "esdm_hpc.encoding",
            "esdm_hpc.serialisation",
            "esdm_hpc.codecs",
            "esdm_hpc.namespace",
            "esdm_hpc.fragment",
        ),
    ),
    ("backends", ("esdm_hpc.backends.*",)),
    ("placement", ("esdm_hpc.placement", "esdm_hpc.measured")),
    ("store", ("esdm_hpc.epochs.manifest", "esdm_hpc.epochs.store")),
    (
        "paths",
        (
            "esdm_hpc.epochs.writer",
            "esdm_hpc.fragmentview",
            "esdm_hpc.readplan",
            "esdm_hpc.reader",
            "esdm_hpc.external",
        ),
    ),
    (
        "epochs",
        (
            "esdm_hpc.epochs",
            "esdm_hpc.epochs.lease",
            "esdm_hpc.epochs.opening",
            "esdm_hpc.epochs.catalogue",
            "esdm_hpc.epochs.open_epoch",
            "esdm_hpc.epochs.pending",
            "esdm_hpc.epochs.commit",
            "esdm_hpc.epochs.history",
            "esdm_hpc.epochs.chaincheck",
            "esdm_hpc.epochs.events",
            "esdm_hpc.epochs.stageout",
            "esdm_hpc.epochs.oncommit",
        ),
    ),
    (
        "api",
        (
            "esdm_hpc",
            "esdm_hpc.container",
            "esdm_hpc.node",
            "esdm_hpc.group",
            "esdm_hpc.dataset",
            "esdm_hpc.attributes",
            "esdm_hpc.copying",
            "esdm_hpc.creation",
            "esdm_hpc.hooks.*",
        ),
    ),
    (
        "tools",
        (
            "esdm_hpc.cli",
            "esdm_hpc.demo",
            "esdm_hpc.tiers_demo",
            "esdm_hpc.drain",
            "esdm_hpc.gc",
            "esdm_hpc.repair",
            "esdm_hpc.verify",
            "esdm_hpc.testing.*",
            "esdm_hpc.vol.*",
        ),
    ),
)

# Uses of another module's private names that stay, as (file, expression) ->
# why. At most MAX_ALLOWED; each one is a debt with its reason written down.
ALLOWED: dict[tuple[str, str], str] = {}
MAX_ALLOWED = 10

# Receivers whose private attributes are the class's own.
OWN = {"self", "cls"}


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # esdm_hpc.epochs.commit
    file: str  # esdm_hpc/epochs/commit.py, relative to the repository
    tree: ast.Module

    @property
    def package(self) -> str:
        """The package the module is in (a package's __init__ is in itself)."""
        return self.name if self.file.endswith("__init__.py") else self.name.rpartition(".")[0]


@dataclass(frozen=True, slots=True)
class Import:
    line: int
    target: str  # the module imported (or imported from)
    names: tuple[str, ...]  # for "from target import names"; () for "import target"
    type_only: bool  # under "if TYPE_CHECKING:"
    statement: str  # as written, for messages


def modules() -> list[Module]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        file = path.relative_to(REPO).as_posix()
        found.append(Module(name, file, ast.parse(path.read_text(encoding="utf-8"), file)))
    return found


def layer_of(module: str) -> int | None:
    """The index of the layer ``module`` is in (0: the bottom), None if in none."""
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            package = member.removesuffix(".*")
            if module == member or (
                member.endswith(".*") and (module == package or module.startswith(package + "."))
            ):
                return index
    return None


def is_module(name: str) -> bool:
    """Whether ``name`` (esdm_hpc.x.y) is a module or package of the source tree,
    a Cython binding (``_name.pyx``) included."""
    path = REPO.joinpath(*name.split("."))
    return path.is_dir() or any(path.with_suffix(s).is_file() for s in (".py", ".pyx"))


def type_checking_nodes(tree: ast.Module) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` (their else branches excluded)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for statement in node.body:
                inside.update(id(n) for n in ast.walk(statement))
    return inside


def imports(module: Module) -> Iterator[Import]:
    """The module's imports of esdm_hpc modules, at any depth (a function's too)."""
    type_only = type_checking_nodes(module.tree)
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "esdm_hpc":
                    yield Import(
                        node.lineno, alias.name, (), id(node) in type_only, ast.unparse(node)
                    )
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package up
                up = module.package.split(".")[: len(module.package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] != "esdm_hpc":
                continue
            names = tuple(alias.name for alias in node.names)
            yield Import(node.lineno, base, names, id(node) in type_only, ast.unparse(node))


def imported_modules(imported: Import) -> Iterator[str]:
    """What an import depends on: ``from p import m`` the module p.m where m is
    one, else p itself."""
    if not imported.names:
        yield imported.target
        return
    for name in imported.names:
        submodule = f"{imported.target}.{name}"
        yield submodule if is_module(submodule) else imported.target


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(module: Module) -> Iterator[tuple[int, str]]:
    """(line, expression) for each use of a private name that is not the module's own:
    ``x._name`` with ``x`` not self/cls (also by getattr and kin), and imports of
    ``_name`` from, or of, other esdm_hpc modules. A package's private modules
    (the kernels' Cython bindings ``_name.pyx``) are for the package's own modules:
    `kernels/checksum.py` imports `_checksum`, the binding it wraps."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            if not (isinstance(node.value, ast.Name) and node.value.id in OWN):
                yield node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
            and not (isinstance(node.args[0], ast.Name) and node.args[0].id in OWN)
        ):
            yield node.lineno, ast.unparse(node)
    for imported in imports(module):
        if any(
            not (is_module(private) and module.package == private.rpartition(".")[0])
            for private in private_modules_or_names(imported)
        ):
            yield imported.line, imported.statement


def private_modules_or_names(imported: Import) -> Iterator[str]:
    """The private modules an import reaches into, and the private names it takes."""
    parts = imported.target.split(".")
    for depth, part in enumerate(parts):
        if is_private(part):
            yield ".".join(parts[: depth + 1])
    for name in imported.names:
        if is_private(name):
            yield f"{imported.target}.{name}"


def test_every_module_is_in_one_layer() -> None:
    found = modules()
    unplaced = [m.file for m in found if layer_of(m.name) is None]
    assert not unplaced, (
        "modules in no layer (add each to LAYERS here and to the table in "
        f"docs/architecture.md §1.1): {unplaced}"
    )
    names = {m.name for m in found}
    stale = [
        member
        for _, members in LAYERS
        for member in members
        if not member.endswith(".*") and member not in names
    ]
    assert not stale, f"LAYERS names modules that do not exist (remove them): {stale}"


def upward_imports(module: Module) -> Iterator[str]:
    """file:line and what for each run-time import of a module of a higher layer.
    Imports under ``if TYPE_CHECKING:`` may go up: they exist only for the type
    checker (a Dataset's annotations name its Container), never at run time."""
    own = layer_of(module.name)
    assert own is not None, f"{module.name} is in no layer"
    for imported in imports(module):
        if imported.type_only:
            continue
        for target in imported_modules(imported):
            layer = layer_of(target)
            if layer is not None and layer > own:
                yield (
                    f"{module.file}:{imported.line}: {module.name} ({LAYERS[own][0]}) "
                    f"imports {target} ({LAYERS[layer][0]})"
                )


def test_modules_import_only_their_layer_or_below() -> None:
    upward = [problem for module in modules() for problem in upward_imports(module)]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_module_uses_private_names_of_another() -> None:
    assert len(ALLOWED) <= MAX_ALLOWED, f"more than {MAX_ALLOWED} allowed private uses"
    offending, seen = [], set()
    for module in modules():
        for line, expression in private_uses(module):
            if (module.file, expression) in ALLOWED:
                seen.add((module.file, expression))
            else:
                offending.append(f"{module.file}:{line}: {expression}")
    assert not offending, (
        f"{len(offending)} uses of another module's private names (make the name "
        "public where it is defined, or add it to ALLOWED with the reason):\n"
        + "\n".join(offending)
    )
    unused = sorted(set(ALLOWED) - seen)
    assert not unused, f"ALLOWED lists uses that are gone (remove them): {unused}"


def synthetic(name: str, source: str) -> Module:
    return Module(name, name.replace(".", "/") + ".py", ast.parse(source))


def test_the_checks_find_what_they_look_for() -> None:
    """The checks run on a made-up module of the epochs layer: what they must find
    they find, what they must let be they let be."""
    commit = synthetic(
        "esdm_hpc.epochs.commit",
        """
from typing import TYPE_CHECKING
from esdm_hpc.epochs import manifest
from esdm_hpc.epochs.manifest import Head, _dumps
from esdm_hpc.kernels import _checksum
from esdm_hpc.kernels._region import MAX_NDIM
if TYPE_CHECKING:
    from esdm_hpc.container import Container
def publish(container, self):
    from esdm_hpc import container as api
    getattr(container, "_store")
    getattr(container, "__class__")
    return container._head, container.store._walk, self._lease, manifest.PACK_EPOCHS
""",
    )
    assert list(upward_imports(commit)) == [
        "esdm_hpc/epochs/commit.py:10: esdm_hpc.epochs.commit (epochs) imports "
        "esdm_hpc.container (api)"
    ]
    assert sorted(private_uses(commit)) == [
        (4, "from esdm_hpc.epochs.manifest import Head, _dumps"),
        (5, "from esdm_hpc.kernels import _checksum"),
        (6, "from esdm_hpc.kernels._region import MAX_NDIM"),
        (11, "getattr(container, '_store')"),
        (13, "container._head"),
        (13, "container.store._walk"),
    ]
    # a wrapper importing the binding it wraps, and its package's other bindings
    wrapper = synthetic(
        "esdm_hpc.kernels.checksum",
        "from esdm_hpc.kernels import _checksum\nfrom esdm_hpc.kernels._region import MAX_NDIM\n",
    )
    assert list(private_uses(wrapper)) == []
    assert list(upward_imports(wrapper)) == []
