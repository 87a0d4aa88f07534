"""``esdm vol-env``: the environment that routes HDF5 programs through ESDM.

    eval "$(esdm vol-env)"          # sh, bash, zsh
    eval `esdm vol-env --shell csh` # csh, tcsh
    mpirun -n 4 ./my_hdf5_program   # now writes containers, not files

HDF5 loads the connector named by ``HDF5_VOL_CONNECTOR`` from the
directories in ``HDF5_PLUGIN_PATH``. In C and Fortran programs the connector
starts Python itself, with the interpreter ``ESDM_VOL_PYTHON`` names (a
virtual environment's ``bin/python`` brings that environment's packages)
and ``ESDM_VOL_PYTHONPATH`` for a source tree that is not installed there.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

CONNECTOR = "esdm"
LIBRARY = "libesdm_vol.so"
_TREE = Path(__file__).resolve().parents[2]  # the directory holding esdm_hpc/


def plugin_dir() -> Path:
    """Where ``make -C vol_plugin`` puts the connector of this source tree."""
    return _TREE / "vol_plugin" / "build"


def environment() -> dict[str, str]:
    """The variables to export, in the order they are printed."""
    plugins = str(plugin_dir())
    inherited = os.environ.get("HDF5_PLUGIN_PATH", "")
    if inherited and plugins not in inherited.split(os.pathsep):
        plugins = os.pathsep.join([plugins, inherited])
    return {
        "HDF5_PLUGIN_PATH": plugins,
        "HDF5_VOL_CONNECTOR": CONNECTOR,
        "ESDM_VOL_PYTHON": sys.executable,
        "ESDM_VOL_PYTHONPATH": str(_TREE),
    }


def render(variables: dict[str, str], shell: str = "sh") -> str:
    if shell == "csh":
        lines = [f"setenv {name} {shlex.quote(value)};" for name, value in variables.items()]
    else:
        lines = [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shell", choices=("sh", "csh"), default="sh", help="syntax of the exports (default: sh)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the exports; warn (on stderr) if the connector is not built yet."""
    print(render(environment(), args.shell))
    if not (plugin_dir() / LIBRARY).exists():
        print(
            f"esdm vol-env: {plugin_dir() / LIBRARY} does not exist yet: run `make vol`",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":  # usable before the `esdm` command learns the subcommand
    _parser = argparse.ArgumentParser(prog="esdm vol-env", description=__doc__.split("\n\n")[0])
    add_arguments(_parser)
    raise SystemExit(run(_parser.parse_args()))
