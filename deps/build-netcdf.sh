#!/usr/bin/env bash
# Build parallel netCDF-C from Debian's newer source package against the
# project's parallel HDF5, into a cached prefix.
#
#   build-netcdf.sh PREFIX_LINK HDF5_PREFIX
#
# The install lives under ${ESDM_CACHE:-~/.cache/esdm-hpc}/netcdf-<version>-<key>,
# keyed by this script's contents, the patches it applies (deps/patches, each
# one says why) and the HDF5 install it links against (the resolved path,
# which changes whenever HDF5 is rebuilt), so any of them changing rebuilds;
# PREFIX_LINK (the project's .deps/netcdf) is made a symlink to it. A finished
# install is reused as it is.
set -euo pipefail
shopt -s nullglob

NETCDF_VERSION=4.9.3
SUITE=trixie
here=$(cd "$(dirname "$0")" && pwd)
link=$1
hdf5=$(readlink -f "$2")
[ -e "$hdf5/include/hdf5.h" ] || { echo "build-netcdf: no HDF5 in $2: build it first" >&2; exit 1; }
cache=${ESDM_CACHE:-$HOME/.cache/esdm-hpc}
patches=("$here"/patches/netcdf-"$NETCDF_VERSION"-*.patch)
key=$({ cat "$0" "$here/debian-source.sh" "${patches[@]}"; echo "$hdf5"; } | sha256sum | cut -c1-10)
prefix="$cache/netcdf-$NETCDF_VERSION-$key"

if [ ! -e "$prefix/.complete" ]; then
    echo "== building parallel netCDF-C $NETCDF_VERSION into $prefix (about 2 minutes on 2 cores)"
    # A failed build keeps its directory so the next attempt resumes it.
    work="$prefix.build"
    mkdir -p "$work"
    src=$("$here/debian-source.sh" netcdf "$SUITE" "$work" "${patches[@]}")
    rm -rf "$prefix"
    # The library (parallel netCDF-4 over HDF5, classic formats) and its
    # utilities ncdump, ncgen. Remote access (DAP, byte ranges, S3), NCZarr,
    # filter plugins and optional compressors are left out: none of them
    # concerns files on the connector, and each would pull in more libraries.
    CC=mpicc /usr/bin/cmake -S "$src" -B "$work/build" -G Ninja \
        -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DCMAKE_INSTALL_RPATH="$prefix/lib;$hdf5/lib" \
        -DCMAKE_PREFIX_PATH="$hdf5" -DHDF5_ROOT="$hdf5" \
        -DBUILD_SHARED_LIBS=ON \
        -DNETCDF_ENABLE_HDF5=ON -DNETCDF_ENABLE_PARALLEL4=ON \
        -DNETCDF_BUILD_UTILITIES=ON \
        -DNETCDF_ENABLE_REMOTE_FUNCTIONALITY=OFF -DNETCDF_ENABLE_DAP=OFF \
        -DNETCDF_ENABLE_BYTERANGE=OFF -DNETCDF_ENABLE_NCZARR=OFF \
        -DNETCDF_ENABLE_PLUGINS=OFF -DNETCDF_ENABLE_LIBXML2=OFF \
        -DNETCDF_ENABLE_FILTER_SZIP=OFF -DNETCDF_ENABLE_FILTER_BZ2=OFF \
        -DNETCDF_ENABLE_FILTER_BLOSC=OFF -DNETCDF_ENABLE_FILTER_ZSTD=OFF \
        -DNETCDF_ENABLE_DOXYGEN=OFF -DNETCDF_ENABLE_EXAMPLES=OFF \
        -DNETCDF_ENABLE_TESTS=OFF -DNETCDF_ENABLE_PARALLEL_TESTS=OFF \
        -DNETCDF_ENABLE_FILTER_TESTING=OFF \
        > "$work/configure.log" 2>&1 || { tail -40 "$work/configure.log"; exit 1; }
    /usr/bin/cmake --build "$work/build" -j 2 > "$work/build.log" 2>&1 \
        || { tail -40 "$work/build.log"; exit 1; }
    /usr/bin/cmake --install "$work/build" > "$work/install.log" 2>&1 \
        || { tail -40 "$work/install.log"; exit 1; }
    touch "$prefix/.complete"
    rm -rf "$work"
fi
mkdir -p "$(dirname "$link")"
ln -sfn "$prefix" "$link"
echo "== parallel netCDF-C $NETCDF_VERSION: $link -> $prefix"
