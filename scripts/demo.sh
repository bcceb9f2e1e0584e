#!/bin/sh
# Boot the gateway image in QEMU (TCG) with its serial console on this
# terminal. root logs in automatically. Leave QEMU with Ctrl-a x.
# Changes made inside the guest are discarded (snapshot=on).
set -eu
kabi=$1
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cat <<MSG
gridmeter gateway image: booting Debian's $kabi kernel under QEMU (TCG, about 25 s).
  login:      root, automatic on the serial console
  try:        busctl list | grep gridmeter ; iio_info ; gpiodetect ; systemctl status
  leave QEMU: Ctrl-a x
MSG
exec qemu-system-x86_64 -M q35 -cpu max -accel tcg -m 1024 -smp 2 \
	-kernel "build/cache/x86_64/root/boot/vmlinuz-$kabi-amd64" \
	-initrd build/x86_64/boot-initramfs.cpio.gz \
	-append "console=ttyS0 loglevel=4 tsc=reliable gm.mode=boot gm.root=/dev/vda" \
	-drive file=build/gateway/gateway-x86_64.img,format=raw,if=virtio,snapshot=on \
	-nic user,model=virtio-net-pci -nographic
