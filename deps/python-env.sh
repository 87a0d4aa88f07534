#!/usr/bin/env bash
# Create the project's virtual environment with mpi4py and h5py built from
# source (against the system OpenMPI and the parallel HDF5 in HDF5_PREFIX),
# and the package installed editable.
#
#   python-env.sh VENV HDF5_PREFIX
#
# The two source builds are kept as wheels under the cache, keyed by versions,
# so a fresh clone installs them in seconds. A stamp in the venv makes a
# second run a no-op.
set -euo pipefail

MPI4PY_VERSION=4.1.2
H5PY_VERSION=3.16.0
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv=$1
hdf5=$(readlink -f "$2")
cache=${ESDM_CACHE:-$HOME/.cache/esdm-hpc}

ompi_version=$(mpicc --showme:version 2>&1 | tr -cd '0-9.' | head -c 16)
wheel_key=$(echo "$MPI4PY_VERSION $H5PY_VERSION $hdf5 $ompi_version $(${PYTHON:-python3} -V)" \
    | sha256sum | cut -c1-10)
wheels="$cache/wheels-mpi4py$MPI4PY_VERSION-h5py$H5PY_VERSION-$wheel_key"
stamp_key=$(cat "$0" "$here/requirements.txt" "$root/pyproject.toml" | sha256sum | cut -c1-16)
stamp="$venv/.esdm-setup-$stamp_key-$wheel_key"

if [ -e "$stamp" ] && "$venv/bin/python" -c "import h5py, mpi4py.MPI" 2>/dev/null; then
    exit 0
fi

echo "== Python environment in $venv"
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip
"${pip[@]}" install -r "$here/requirements.txt"

if ! ls "$wheels"/h5py-*.whl >/dev/null 2>&1; then
    echo "== building mpi4py $MPI4PY_VERSION and h5py $H5PY_VERSION (MPI) from source (about 5 minutes)"
    tmp=$(mktemp -d "$cache/wheels-build.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    "${pip[@]}" wheel --no-deps --no-binary mpi4py -w "$tmp" "mpi4py==$MPI4PY_VERSION"
    "${pip[@]}" install "$tmp"/mpi4py-*.whl
    # h5py compiles against the mpi4py just installed; the rpath makes it find
    # our libhdf5 without LD_LIBRARY_PATH.
    CC=mpicc HDF5_MPI=ON HDF5_DIR="$hdf5" LDFLAGS="-Wl,-rpath,$hdf5/lib" \
        "${pip[@]}" wheel --no-deps --no-binary h5py --no-build-isolation -w "$tmp" \
        "h5py==$H5PY_VERSION"
    rm -rf "$wheels"
    mv "$tmp" "$wheels"
    trap - EXIT
fi
"${pip[@]}" install --force-reinstall --no-deps "$wheels"/mpi4py-*.whl "$wheels"/h5py-*.whl
"${pip[@]}" install --no-build-isolation --no-deps -e "$root"

rm -f "$venv"/.esdm-setup-*
touch "$stamp"
