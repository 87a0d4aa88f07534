#!/usr/bin/env bash
# Build parallel HDF5 from Debian's newer source package into a cached prefix.
#
#   build-hdf5.sh PREFIX_LINK
#
# The install lives under ${ESDM_CACHE:-~/.cache/esdm-hpc}/hdf5-<version>-<key>,
# keyed by this script's contents and the patches it applies (deps/patches,
# each one says why) so a change of options or patches rebuilds; PREFIX_LINK
# (the project's .deps/hdf5) is made a symlink to it. A finished install is
# reused as it is.
set -euo pipefail
shopt -s nullglob

HDF5_VERSION=1.14.5
SUITE=trixie
here=$(cd "$(dirname "$0")" && pwd)
link=$1
cache=${ESDM_CACHE:-$HOME/.cache/esdm-hpc}
patches=("$here"/patches/hdf5-"$HDF5_VERSION"-*.patch)
key=$(cat "$0" "$here/debian-source.sh" "${patches[@]}" | sha256sum | cut -c1-10)
prefix="$cache/hdf5-$HDF5_VERSION-$key"

if [ ! -e "$prefix/.complete" ]; then
    echo "== building parallel HDF5 $HDF5_VERSION into $prefix (about 10 minutes on 2 cores)"
    # A failed build keeps its directory so the next attempt resumes it.
    work="$prefix.build"
    mkdir -p "$work"
    src=$("$here/debian-source.sh" hdf5 "$SUITE" "$work" "${patches[@]}")
    rm -rf "$prefix"
    # Only the library, tools and the VOL API test programs with the extra
    # tests they install (testhdf5, and testphdf5 and friends for the parallel
    # ones): the rest of the test suite would double the build time.
    CC=mpicc /usr/bin/cmake -S "$src" -B "$work/build" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DCMAKE_INSTALL_RPATH="$prefix/lib" \
        -DBUILD_SHARED_LIBS=ON -DBUILD_STATIC_LIBS=OFF \
        -DHDF5_ENABLE_PARALLEL=ON \
        -DHDF5_BUILD_HL_LIB=ON -DHDF5_BUILD_TOOLS=ON \
        -DHDF5_BUILD_CPP_LIB=OFF -DHDF5_BUILD_FORTRAN=OFF -DHDF5_BUILD_JAVA=OFF \
        -DHDF5_BUILD_EXAMPLES=OFF -DHDF5_BUILD_DOC=OFF \
        -DHDF5_ENABLE_Z_LIB_SUPPORT=ON -DHDF5_ENABLE_SZIP_SUPPORT=OFF \
        -DBUILD_TESTING=ON -DHDF5_TEST_API=ON -DHDF5_TEST_API_INSTALL=ON \
        -DHDF5_TEST_SERIAL=OFF -DHDF5_TEST_PARALLEL=OFF -DHDF5_TEST_TOOLS=OFF \
        -DHDF5_TEST_EXAMPLES=OFF -DHDF5_TEST_SWMR=OFF -DHDF5_TEST_CPP=OFF \
        -DHDF5_TEST_FORTRAN=OFF -DHDF5_TEST_JAVA=OFF \
        > "$work/configure.log" 2>&1 || { tail -40 "$work/configure.log"; exit 1; }
    /usr/bin/cmake --build "$work/build" -j "$(nproc)" --target \
        src/all hl/all tools/lib/all tools/src/all utils/all \
        test/API/all testhdf5 testpar/API/all testphdf5 t_bigio t_pshutdown t_shapesame \
        > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
    /usr/bin/cmake --install "$work/build" > "$work/install.log" 2>&1 \
        || { tail -40 "$work/install.log"; exit 1; }
    touch "$prefix/.complete"
    rm -rf "$work"
fi
mkdir -p "$(dirname "$link")"
ln -sfn "$prefix" "$link"
echo "== parallel HDF5 $HDF5_VERSION: $link -> $prefix"
