"""Build the Cython bindings of the C kernels.

Each low-level module ``esdm_hpc/kernels/_<name>.pyx`` is compiled together
with its C implementation ``csrc/<name>.c`` when that file exists, so adding a
kernel needs no change here.
"""

import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).parent
CSRC = ROOT / "csrc"

# System libraries a kernel links against (Debian package in deps/apt-packages.txt).
LIBRARIES = {"checksum": ["xxhash"]}


def kernel_extension(pyx: Path) -> Extension:
    name = pyx.stem.removeprefix("_")
    sources = [str(pyx.relative_to(ROOT))]
    c_impl = CSRC / f"{name}.c"
    if c_impl.exists():
        sources.append(str(c_impl.relative_to(ROOT)))
    return Extension(
        f"esdm_hpc.kernels.{pyx.stem}",
        sources,
        include_dirs=[str(CSRC), numpy.get_include()],
        libraries=LIBRARIES.get(name, []),
        depends=[str(h.relative_to(ROOT)) for h in CSRC.glob("*.h")],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wno-unused-function"],
    )


def selected(pyx: Path) -> bool:
    # ESDM_KERNELS=hilbert,region rebuilds only those (handy while working on one kernel).
    wanted = os.environ.get("ESDM_KERNELS")
    return not wanted or pyx.stem.removeprefix("_") in wanted.split(",")


extensions = [
    kernel_extension(p) for p in sorted((ROOT / "esdm_hpc/kernels").glob("_*.pyx")) if selected(p)
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    ),
)
