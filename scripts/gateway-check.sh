#!/bin/sh
# Build the gateway image of ARCH from the Debian packages and boot it in
# QEMU with gridmeter.itest on the kernel command line; judge the
# integration tests (tests/gateway/itest) it prints on its console.
#   gateway-check.sh [ARCH]          ARCH x86_64 (default) or arm64
# Environment: GM_GATEWAY_BUILT=1 boots the image already built (make check
# builds the images in the background, scripts/mk-gateway-image.sh);
# GM_GATEWAY_DEBS as for mk-gateway-image.sh; GM_GUEST_TIMEOUT (s);
# GM_ITEST_ONLY="t-boot t-modules" runs only those tests.
# The image boots its own kernel and initramfs (the files in its /boot,
# QEMU -kernel/-initrd) with root=LABEL=gmroot; the disk is opened with
# snapshot=on, so the image is not changed. arm64 is QEMU's virt machine,
# Cortex-A72, TCG, with the CT sensor bound to the simulated ADC by device
# tree (scripts/guest-run.sh applies tests/guest/dt/*.dtso to QEMU's DTB).
set -eu
arch=${1:-x86_64}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kabi=$(scripts/kver.sh)
case "$arch" in
x86_64) krel=$kabi-amd64 tmo=420 ;;
arm64) krel=$kabi-arm64 tmo=900 ;;
*) echo "gateway-check: ARCH must be x86_64 or arm64, not $arch" >&2; exit 1 ;;
esac
[ "${GM_GATEWAY_BUILT:-}" = 1 ] || scripts/mk-gateway-image.sh "$kabi" "$arch"
root=build/gateway/rootfs-$arch
img=build/gateway/gateway-$arch.img
[ -f "$img" ] && [ -f "$root/boot/initrd.img-$krel" ] ||
	{ echo "gateway-check: no $img with its $root/boot (scripts/mk-gateway-image.sh)" >&2; exit 1; }
log=build/gateway/itest-$arch.log
only=
[ -z "${GM_ITEST_ONLY:-}" ] || only="gridmeter.itest_only=$(echo "$GM_ITEST_ONLY" | tr ' ' ,)"
rc=0
s0=$(date +%s)
GM_KROOT=$root \
GM_QEMU_EXTRA="-drive file=$img,format=raw,if=virtio,snapshot=on" \
GM_QEMU_MEM=1024 \
	scripts/guest-run.sh "$arch" "$kabi" "$root/boot/initrd.img-$krel" "$log" \
	"${GM_GUEST_TIMEOUT:-$tmo}" root=LABEL=gmroot gridmeter.itest $only \
	systemd.show_status=false || rc=$?
[ $rc -eq 124 ] && echo "gateway: QEMU killed on timeout" >&2
echo "gateway-$arch: QEMU ran $(($(date +%s) - s0)) s (boot, tests, power-off)"
grep -E 'multi-user.target reached' "$log" | sed "s/^ *# */gateway-$arch: /" || true
scripts/ktap-check.py "$log" "gateway-$arch"
