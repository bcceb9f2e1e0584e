#!/bin/sh
# Unpack Debian's x86_64 kernel (the same ABI as linux-headers-amd64) into
# build/cache/x86_64/root for the QEMU guests. arm64 comes with arm64-cache.sh.
set -eu
dest=$1
kabi=$2
mkdir -p "$dest/debs" "$dest/root"
cd "$dest/debs"
apt-get download -q "linux-image-$kabi-amd64-unsigned" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
for deb in ./*.deb; do dpkg-deb -x "$deb" ../root; done
cd ..
rm -rf debs
depmod -b root "$kabi-amd64"
touch ".stamp-$kabi"
