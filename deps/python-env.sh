#!/usr/bin/env bash
# The project's virtual environment, in two phases so that the slow source
# builds overlap (`make` runs `base` next to the HDF5 build):
#
#   python-env.sh base VENV          venv, requirements, mpi4py built from
#                                    source against the system OpenMPI
#   python-env.sh hdf5 VENV PREFIX   h5py built from source (HDF5_MPI=ON)
#                                    against the HDF5 in PREFIX, the package
#                                    installed editable
#
# Both builds are kept as wheels under the cache, keyed by versions, so a
# fresh clone installs them in seconds; a stamp per phase makes a repeat a no-op.
set -euo pipefail

MPI4PY_VERSION=4.1.2
H5PY_VERSION=3.16.0
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
phase=$1 venv=$2
cache=${ESDM_CACHE:-$HOME/.cache/esdm-hpc}
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)

key() { echo "$*" | sha256sum | cut -c1-10; }
ompi_version=$(mpicc --showme:version 2>&1 | tr -cd '0-9.' | head -c 16)
python_version=$("${PYTHON:-python3}" -V 2>&1)
mpi4py_wheels="$cache/wheels-mpi4py$MPI4PY_VERSION-$(key "$ompi_version $python_version")"

# Build one wheel from source into the cache (once), then install it; extra
# arguments go to `pip wheel`. Not from pip's own wheel cache: it keys a build
# by the source alone, and would hand back a wheel linked to another HDF5.
cached_wheel() {
    local dir=$1 package=$2
    shift 2
    if ! ls "$dir"/*.whl >/dev/null 2>&1; then
        echo "== building $package from source (a few minutes)"
        local tmp
        tmp=$(mktemp -d "$cache/wheel-build.XXXXXX")
        "${pip[@]}" wheel --no-cache-dir --no-deps --no-binary "${package%%=*}" -w "$tmp" "$@" "$package" \
            || { rm -rf "$tmp"; exit 1; }
        rm -rf "$dir"
        mv "$tmp" "$dir"
    fi
    "${pip[@]}" install --force-reinstall --no-deps "$dir"/*.whl
}

phase_base() {
    local stamp
    stamp="$venv/.esdm-base-$(cat "$0" "$here/requirements.txt" | sha256sum | cut -c1-12)"
    [ -e "$stamp" ] && return 0
    echo "== Python environment in $venv"
    mkdir -p "$cache"
    [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
    "${pip[@]}" install --upgrade pip
    "${pip[@]}" install -r "$here/requirements.txt"
    cached_wheel "$mpi4py_wheels" "mpi4py==$MPI4PY_VERSION"
    rm -f "$venv"/.esdm-base-*
    touch "$stamp"
}

phase_hdf5() {
    local hdf5 h5py_wheels stamp
    hdf5=$(readlink -f "$1")
    h5py_wheels="$cache/wheels-h5py$H5PY_VERSION-$(key "$hdf5 $MPI4PY_VERSION $ompi_version $python_version")"
    stamp="$venv/.esdm-hdf5-$(cat "$0" "$root/pyproject.toml" | sha256sum | cut -c1-12)-$(key "$hdf5")"
    if [ -e "$stamp" ] && "$venv/bin/python" -c "import h5py, mpi4py.MPI" 2>/dev/null; then
        return 0
    fi
    # h5py compiles against the mpi4py just installed, so no build isolation
    # (which would fetch and build another mpi4py); the rpath makes it find
    # our libhdf5 without LD_LIBRARY_PATH.
    CC=mpicc HDF5_MPI=ON HDF5_DIR="$hdf5" LDFLAGS="-Wl,-rpath,$hdf5/lib" \
        cached_wheel "$h5py_wheels" "h5py==$H5PY_VERSION" --no-build-isolation
    "${pip[@]}" install --no-build-isolation --no-deps -e "$root"
    rm -f "$venv"/.esdm-hdf5-*
    touch "$stamp"
}

case $phase in
    base) phase_base ;;
    hdf5) phase_hdf5 "$3" ;;
    *) echo "usage: $0 base VENV | hdf5 VENV HDF5_PREFIX" >&2; exit 2 ;;
esac
