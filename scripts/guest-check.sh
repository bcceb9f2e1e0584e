#!/bin/sh
# Build everything for ARCH, pack the test initramfs, boot it in QEMU and
# judge the console log. Usage: guest-check.sh ARCH [KERNEL_ARGS...]
# Logs: build/ARCH/guest.log. Timeout: GM_GUEST_TIMEOUT (default 900 s).
set -eu
arch=$1
shift
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kabi=$(scripts/kver.sh)
out=build/$arch
mkdir -p "$out"
make -s --no-print-directory ARCH="$arch" modules guest-tests userspace >"$out.build.log" 2>&1 || {
	cat "$out.build.log"; echo "guest-$arch: build failed" >&2; exit 1; }
[ "$arch" = x86_64 ] && [ ! -f "build/cache/x86_64/.stamp-$kabi" ] &&
	scripts/kernel-cache.sh build/cache/x86_64 "$kabi"
scripts/mk-initramfs.sh "$arch" "$kabi" "$out" >/dev/null
log=$out/${GM_LOG_NAME:-guest}.log
rc=0
scripts/guest-run.sh "$arch" "$kabi" "$out/initramfs.cpio.gz" "$log" \
	"${GM_GUEST_TIMEOUT:-900}" "$@" || rc=$?
[ $rc -eq 124 ] && echo "guest-$arch: QEMU killed after ${GM_GUEST_TIMEOUT:-900} s" >&2
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ -s "$log.qemu" ] && cat "$log.qemu" >&2
scripts/ktap-check.py "$log" "guest-$arch"
