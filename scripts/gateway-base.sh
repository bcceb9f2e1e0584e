#!/bin/sh
# The gateway image's Debian base (mmdebstrap, minbase and
# tests/gateway/packages.list), kept as a tarball in build/cache: made when
# missing or older than a week, else left alone. Prints its path.
#   gateway-base.sh [ARCH]
# scripts/mk-gateway-image.sh unpacks it; make check starts this in the
# background beside the build stages (about 77 s of mmdebstrap, mostly
# downloads and unpacking), so that the gateway stage finds it made.
# The name carries a hash of what makes it (the package list, the mirrors,
# BASE_FORMAT): a change to any of them makes a new one.
set -eu
arch=${1:-x86_64}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BASE_FORMAT="minbase, no man/doc/locale, bookworm, v1"
# The same package mirrors as the host (the only ones reachable here).
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
pkgs=$(grep -v '^#' tests/gateway/packages.list | tr '\n' ',' | sed 's/,,*/,/g; s/,$//')
key=$( (cat tests/gateway/packages.list "$sources"; echo "$BASE_FORMAT") | sha256sum | cut -c1-16)
base=build/cache/gateway-base-$arch-$key.tar
mkdir -p build/cache
find build/cache -maxdepth 1 -name "gateway-base-$arch-*.tar" \( ! -name "${base##*/}" -o \
	-mtime +7 \) -delete
if [ ! -f "$base" ]; then
	rm -f "$base.tmp.tar"
	mmdebstrap --quiet --variant=minbase --format=tar --include="$pkgs" \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		bookworm "$base.tmp.tar" "$sources" >&2
	mv "$base.tmp.tar" "$base"
fi
echo "$base"
