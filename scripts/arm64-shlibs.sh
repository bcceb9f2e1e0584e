#!/bin/sh
# The arm64 library packages that arm64 programs link against, unpacked
# with their control files, for dpkg-shlibdeps in a cross build:
#   arm64-shlibs.sh CACHE DIR...
# Reads the NEEDED entries of every ELF file under the DIRs (the package
# trees debian/PKG), finds the Debian package of each library (the host's
# amd64 package of the same soname, e.g. libsodium.so.23 -> libsodium23;
# the dynamic loader -> libc6), fetches its arm64 .deb with apt-get download
# into CACHE/debs (once: kept while the version is current) and unpacks it
# with dpkg-deb -R into CACHE/trees/PKG (files and DEBIAN/symbols, shlibs).
# Prints one -SCACHE/trees/PKG per package: dpkg-shlibdeps looks for a
# library in those trees first and takes the dependency from the tree's
# own symbols or shlibs file, as it would from an installed package.
# Called by debian/rules (override_dh_shlibdeps) when DEB_HOST_ARCH=arm64.
# Nothing is installed: arm64 packages are never installed on the host.
set -eu
cache=$1
shift
mkdir -p "$cache/debs" "$cache/trees"
cache=$(cd "$cache" && pwd)

sonames=$(find "$@" -type f 2>/dev/null | while read -r f; do
	head -c 4 "$f" 2>/dev/null | grep -q 'ELF' || continue
	readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
done | sort -u)

pkgs=""
for so in $sonames; do
	case "$so" in
	ld-linux-*) p=libc6 ;;
	*)
		# the package of the library itself (/lib or /usr/lib), not of
		# a file named after it (libc6-dev's gdb script of libc.so.6)
		p=$(dpkg-query -S "x86_64-linux-gnu/$so" 2>/dev/null | awk -F': ' -v so="$so" '
			substr($2, length($2) - length(so)) == "/" so &&
			$2 ~ /^(\/usr)?\/lib\/x86_64-linux-gnu\// { sub(/:amd64.*/, "", $1); print $1; exit }')
		[ -n "$p" ] || { echo "arm64-shlibs: no Debian package has $so (amd64)" >&2; exit 1; }
		;;
	esac
	pkgs="$pkgs $p"
done
pkgs=$(printf '%s\n' $pkgs | sort -u)

for p in $pkgs; do
	v=$(apt-cache policy "$p:arm64" | sed -n 's/^ *Candidate: //p')
	[ -n "$v" ] && [ "$v" != "(none)" ] ||
		{ echo "arm64-shlibs: apt knows no $p:arm64 (dpkg --add-architecture arm64; apt-get update)" >&2; exit 1; }
	deb="$cache/debs/${p}_$(echo "$v" | sed 's/:/%3a/g')_arm64.deb"
	if [ ! -f "$deb" ]; then
		rm -f "$cache/debs/${p}_"*_arm64.deb
		(cd "$cache/debs" && apt-get download -q "$p:arm64=$v" 2>&1 |
			grep -v '^W: Download is performed unsandboxed' >&2 || true)
		[ -f "$deb" ] || { echo "arm64-shlibs: apt-get download $p:arm64=$v gave no $deb" >&2; exit 1; }
	fi
	t="$cache/trees/$p"
	if [ ! -f "$t/.from" ] || [ "$(cat "$t/.from")" != "${deb##*/}" ]; then
		rm -rf "$t"
		dpkg-deb -R "$deb" "$t"
		echo "${deb##*/}" >"$t/.from"
	fi
	printf -- '-S%s\n' "$t"
done
