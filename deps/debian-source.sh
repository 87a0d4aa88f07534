#!/usr/bin/env bash
# Fetch, unpack and patch the upstream source of a package from a newer Debian
# suite than the one installed.
#
#   debian-source.sh PACKAGE SUITE DESTDIR [PATCH...]
#
# The mirror is the one this machine's apt already uses; the package lists go
# into a private apt state directory under DESTDIR, so nothing system-wide
# changes. Prints the path of the unpacked upstream tree, to which each PATCH
# has been applied (patch -p1). A tree this script finished in DESTDIR before
# is reused as it is, so a failed build resumes; a tree a patch fails on is
# removed, so no build ever sees one half-patched.
set -euo pipefail

package=$1 suite=$2 dest=$3
shift 3
done_marker="$dest/.source-tree"
if [ -e "$done_marker" ] && [ -d "$(cat "$done_marker")" ]; then
    cat "$done_marker"
    exit 0
fi

# The first Debian URI configured for the installed suite (deb822 or one-line form).
mirror() {
    local codename
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    {
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -e "$f" ] || continue
            awk -v c="$codename" '
                /^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i==c) s=1}
                /^$/ {if (s && u) print u; u=""; s=0}
                END {if (s && u) print u}' "$f"
        done
        if [ -e /etc/apt/sources.list ]; then
            awk -v c="$codename" '$1=="deb" && $0 ~ " "c" " {for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' /etc/apt/sources.list
        fi
    } | grep -v security | head -n1
}

url=$(mirror)
[ -n "$url" ] || { echo "debian-source: no Debian mirror found in the apt configuration" >&2; exit 1; }

state="$dest/apt-state"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc/parts"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $url $suite main" \
    > "$state/etc/sources.list"
apt_opts=(
    -o "Dir::State=$state" -o "Dir::State::Lists=$state/lists"
    -o "Dir::State::status=/dev/null" -o "Dir::Cache=$state/cache"
    -o "Dir::Etc::SourceList=$state/etc/sources.list"
    -o "Dir::Etc::SourceParts=$state/etc/parts" -o "APT::Sandbox::User=root"
    -qq
)
apt-get "${apt_opts[@]}" update >&2
if ! (cd "$dest" && apt-get "${apt_opts[@]}" source --download-only "$package" >&2); then
    # The mirror may lack the Debian packaging (.dsc, .debian.tar) of a version
    # its index still lists. Only the upstream tarball is used, and apt keeps a
    # download only if it matches the checksum of the (signed) index.
    echo "debian-source: apt-get source failed; going on with the verified upstream tarball" >&2
fi
tarball=$(find "$dest" -maxdepth 1 -name "${package}_*.orig.tar.*" | head -n1)
[ -n "$tarball" ] || { echo "debian-source: no upstream tarball of $package arrived" >&2; exit 1; }

top=$({ tar -tf "$tarball" || true; } | head -n1 | cut -d/ -f1)
tar -xf "$tarball" -C "$dest"
src="$dest/$top"
for p in "$@"; do
    patch -d "$src" -p1 --quiet < "$p" \
        || { echo "debian-source: $p does not apply to $src" >&2; rm -rf "$src"; exit 1; }
done
echo "$src" > "$done_marker"
echo "$src"
