#!/bin/sh
# Boot a QEMU guest (TCG) and capture its serial console to a log file.
#   guest-run.sh ARCH KABI INITRAMFS LOG TIMEOUT_S [KERNEL_ARGS...]
# Environment: GM_QEMU_EXTRA adds QEMU options (disks, serial chardevs);
# GM_KROOT is the unpacked kernel to boot (default: the ARCH's cache).
# Exits 0 when QEMU exited by itself, 124 when it was killed on the timeout.
set -eu
arch=$1 kabi=$2 initrd=$3 log=$4 tmo=$5
shift 5
top=$(cd "$(dirname "$0")/.." && pwd)
case "$arch" in
x86_64)
	kernel=${GM_KROOT:-$top/build/cache/x86_64/root}/boot/vmlinuz-$kabi-amd64
	# tsc=reliable: under TCG the clocksource watchdog may find the TSC
	# "unstable" on a loaded host, and the sched_clock static key it then
	# flips is patched with int3 while the other vCPU runs through it: an
	# "Oops: int3" in sched_clock_cpu (seen on 6.12). The guest's TSC is
	# QEMU's virtual clock on every vCPU, so nothing is lost.
	set -- qemu-system-x86_64 -M q35 -cpu max -accel tcg \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyS0 loglevel=5 panic=-1 oops=panic tsc=reliable $*" ;;
arm64)
	kernel=${GM_KROOT:-$top/build/cache/arm64/root}/boot/vmlinuz-$kabi-arm64
	# Device-tree nodes for the guest (e.g. the CT sensor bound to the
	# simulated ADC): QEMU's own virt DTB, dumped with the options of this
	# very run, plus every overlay in tests/guest/dt/*.dtso.
	dtb=""
	if ls "$top"/tests/guest/dt/*.dtso >/dev/null 2>&1; then
		dtdir=$(dirname "$log")/dt
		mkdir -p "$dtdir"
		qemu-system-aarch64 -M "virt,dumpdtb=$dtdir/virt.dtb" -cpu cortex-a72 \
			-m "${GM_QEMU_MEM:-1024}" -smp 2 -nographic >/dev/null 2>&1
		for o in "$top"/tests/guest/dt/*.dtso; do
			dtc -q -@ -I dts -O dtb -o "$dtdir/$(basename "$o" .dtso).dtbo" "$o"
		done
		fdtoverlay -i "$dtdir/virt.dtb" -o "$dtdir/guest.dtb" "$dtdir"/*.dtbo
		dtb=$dtdir/guest.dtb
	fi
	set -- qemu-system-aarch64 -M virt -cpu cortex-a72 -accel tcg \
		${dtb:+-dtb "$dtb"} \
		-kernel "$kernel" -initrd "$initrd" \
		-append "console=ttyAMA0 loglevel=5 panic=-1 oops=panic $*" ;;
esac
# shellcheck disable=SC2086
timeout --kill-after=5 "$tmo" "$@" -m "${GM_QEMU_MEM:-1024}" -smp 2 -nographic -no-reboot \
	-nic none -monitor none -serial "file:$log" -display none ${GM_QEMU_EXTRA:-} </dev/null >/dev/null 2>"$log.qemu"
