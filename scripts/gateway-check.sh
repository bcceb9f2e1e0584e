#!/bin/sh
# Build the gateway image, boot it in QEMU with gridmeter.itest on the
# kernel command line (the disk is opened with snapshot=on, so the image is
# not changed) and judge the integration tests it prints.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
kabi=$(scripts/kver.sh)
scripts/mk-gateway-image.sh "$kabi" x86_64
log=build/gateway/itest.log
rc=0
GM_QEMU_EXTRA="-drive file=build/gateway/gateway-x86_64.img,format=raw,if=virtio,snapshot=on" \
GM_QEMU_MEM=1024 \
	scripts/guest-run.sh x86_64 "$kabi" build/x86_64/boot-initramfs.cpio.gz "$log" \
	"${GM_GUEST_TIMEOUT:-420}" gm.mode=boot gm.root=/dev/vda gridmeter.itest \
	systemd.show_status=false || rc=$?
[ $rc -eq 124 ] && echo "gateway: QEMU killed on timeout" >&2
grep -E 'multi-user.target reached' "$log" | sed 's/^ *# */gateway: /' || true
scripts/ktap-check.py "$log" gateway
