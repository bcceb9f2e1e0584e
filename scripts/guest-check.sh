#!/bin/sh
# Build everything for ARCH, pack the test initramfs, boot it in QEMU and
# judge the console log. Usage: guest-check.sh ARCH [KERNEL_ARGS...]
# GM_KERNEL=6.12 boots Debian's 6.12 (bookworm-backports, build/cache/k612)
# with the modules built for it instead of Debian 12's 6.1.
# Logs: build/ARCH/guest.log (6.12: build/ARCH-6.12/guest.log).
# Timeout: GM_GUEST_TIMEOUT (default 900 s).
set -eu
arch=$1
shift
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kernel=${GM_KERNEL:-6.1}
user=build/$arch
mkdir -p "$user"
# GM_NO_BUILD=1: boot the initramfs an earlier run built (runs at once)
[ -n "${GM_NO_BUILD:-}" ] ||
make -s --no-print-directory ARCH="$arch" guest-tests userspace >"$user.build.log" 2>&1 || {
	cat "$user.build.log"; echo "guest-$arch: build failed" >&2; exit 1; }
if [ "$kernel" = 6.12 ]; then
	out=build/$arch-6.12
	make -s --no-print-directory ARCH="$arch" KERNEL=6.12 modules >"$out.build.log" 2>&1 || {
		cat "$out.build.log"; echo "guest-$arch-6.12: build failed" >&2; exit 1; }
	kabi=$(cat build/cache/k612/kabi)
	kroot=build/cache/k612/root
	label=guest-$arch-6.12
else
	out=$user
	[ -n "${GM_NO_BUILD:-}" ] ||
	make -s --no-print-directory ARCH="$arch" modules >"$out.kbuild.log" 2>&1 || {
		cat "$out.kbuild.log"; echo "guest-$arch: build failed" >&2; exit 1; }
	kabi=$(scripts/kver.sh)
	kroot=build/cache/$arch/root
	[ "$arch" = x86_64 ] && [ ! -f "build/cache/x86_64/.stamp-$kabi" ] &&
		scripts/kernel-cache.sh build/cache/x86_64 "$kabi"
	label=guest-$arch
fi
[ -n "${GM_NO_BUILD:-}" ] && [ -s "$out/initramfs.cpio.gz" ] ||
	GM_KROOT=$kroot GM_USERSPACE=$user scripts/mk-initramfs.sh "$arch" "$kabi" "$out" >/dev/null
log=$out/${GM_LOG_NAME:-guest}.log

# QEMU's TCG can lose a race with the kernel patching its own code: a
# static key flipped on one vCPU (e.g. __sched_clock_stable at late init)
# while the other runs that code gives "Oops: int3" in early boot, before
# any module of ours is loaded or any test has started (seen on 6.12
# x86_64 guests about once in ten boots, in sched_clock_cpu). Such a boot
# tells nothing about gridmeter: it is booted again, at most twice, and
# said so; the dead boot's log is kept beside the new one. A crash with
# any module loaded, or once the tests started, is judged as always.
tcg_patch_race() { # LOG
	grep -q 'Oops: int3' "$1" && grep -Eq 'Modules linked in:[[:space:]]*$' "$1" &&
		! grep -q '^TAP version' "$1"
}
boot=1
while :; do
	rc=0
	GM_KROOT=$kroot scripts/guest-run.sh "$arch" "$kabi" "$out/initramfs.cpio.gz" "$log" \
		"${GM_GUEST_TIMEOUT:-900}" "$@" || rc=$?
	[ $boot -le 2 ] && tcg_patch_race "$log" || break
	mv "$log" "$log.early-$boot"
	echo "$label: boot $boot died in early boot (Oops: int3, no module loaded, no test" \
		"started: the TCG code-patching race), kept in $log.early-$boot; booting again"
	boot=$((boot + 1))
done
[ $rc -eq 124 ] && echo "$label: QEMU killed after ${GM_GUEST_TIMEOUT:-900} s" >&2
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ -s "$log.qemu" ] && cat "$log.qemu" >&2
scripts/ktap-check.py "$log" "$label"
