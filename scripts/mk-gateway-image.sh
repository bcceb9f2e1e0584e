#!/bin/sh
# Build the gateway image: a Debian 12 rootfs (mmdebstrap: systemd, dbus,
# udev, kmod, libiio, libgpiod) with Debian's kernel modules, the project's
# modules, programs, systemd units and D-Bus/polkit files, as a raw ext4 disk.
#   mk-gateway-image.sh KABI [ARCH]   -> build/gateway/gateway-ARCH.img
# The kernel boots it with the small initramfs of mk-initramfs.sh --boot.
# Only x86_64 is built for QEMU today; arm64 uses the same steps with
# qemu-user (see Documentation/install-pi.md).
set -eu
kabi=$1 arch=${2:-x86_64}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ "$arch" = x86_64 ] || { echo "gateway image: only x86_64 for now" >&2; exit 1; }
krel=$kabi-amd64
out=build/gateway
root=$out/rootfs
img=$out/gateway-$arch.img
mkdir -p "$out"
t0=$(date +%s)

[ -f "build/cache/x86_64/.stamp-$kabi" ] || scripts/kernel-cache.sh build/cache/x86_64 "$kabi"
make -s --no-print-directory ARCH="$arch" modules userspace >"$out/build.log" 2>&1 ||
	{ cat "$out/build.log"; exit 1; }
scripts/mk-initramfs.sh "$arch" "$kabi" "build/$arch" --boot >/dev/null

# The Debian base, made or reused by gateway-base.sh (a tarball in
# build/cache; a warm run unpacks it in about 2 s instead of 77 s).
base=$(scripts/gateway-base.sh "$arch")
rm -rf "$root"
mkdir -p "$root"
tar -C "$root" --xattrs --xattrs-include='*' --numeric-owner -xpf "$base"

# Kernel modules: Debian's (without hardware a gateway never has) and ours.
kmods=build/cache/x86_64/root/lib/modules/$krel
mkdir -p "$root/lib/modules"
cp -a "$kmods" "$root/lib/modules/"
for d in gpu media net/wireless net/ethernet infiniband staging isdn bluetooth scsi/qla2xxx \
		scsi/lpfc net/can/usb; do
	rm -rf "$root/lib/modules/$krel/kernel/drivers/$d"
done
rm -rf "$root/lib/modules/$krel/kernel/sound"
mkdir -p "$root/lib/modules/$krel/extra"
find "build/$arch/kmod" -name '*.ko' ! -name 'gm_selfcheck_*' \
	-exec cp {} "$root/lib/modules/$krel/extra/" \;
depmod -b "$root" "$krel"

# The project's programs and their files (later issues add units here).
for p in "build/$arch/bin"/*; do
	[ -x "$p" ] || continue
	case "$p" in *.d) continue ;; esac
	install -m 755 "$p" "$root/usr/bin/"
done
[ -x scripts/install-gateway-files.sh ] && scripts/install-gateway-files.sh "$root"

# A console a technician can use: root logs in on the serial line (the QEMU
# image is for testing; a real gateway is provisioned with keys instead).
echo gridmeter >"$root/etc/hostname"
printf '127.0.1.1\tgridmeter\n' >>"$root/etc/hosts"
printf 'LABEL=gmroot / ext4 defaults,noatime 0 1\n' >"$root/etc/fstab"
chroot "$root" passwd -dq root
# The home network: DHCP on the wired interface (systemd-networkd), as a
# gateway on a home router gets its address; the dashboard (meterweb) is
# served there. Not systemd-networkd-wait-online: nothing here needs the
# network to be up, and a gateway without a cable must still boot cleanly.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nType=ether\n\n[Network]\nDHCP=yes\n' >"$root/etc/systemd/network/20-wired.network"
systemctl --root="$root" --quiet enable systemd-networkd.service
systemctl --root="$root" --quiet disable systemd-networkd-wait-online.service
mkdir -p "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'UNIT'
[Unit]
# The integration tests own the console while they run.
ConditionKernelCommandLine=!gridmeter.itest

[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
UNIT

# The dashboard of this demo image: listening on port 8080 of every address
# (the home network; QEMU's user network forwards a host port to it), the
# household password GM_DEMO_PASSWORD (default below, printed by make demo
# and read by the image's own test), hashed here with meterweb's own
# `meterweb passwd` (Argon2id). A real gateway's password is the installer's.
demo_pw=${GM_DEMO_PASSWORD:-sunny-meter-42}
if [ -x "$root/usr/sbin/meterweb" ]; then
	mkdir -p "$root/etc/gridmeter"
	cat >"$root/etc/gridmeter/meterweb.conf" <<CONF
# meterweb on the QEMU demo image (scripts/mk-gateway-image.sh): see
# /usr/share/doc/gridmeter/dashboard.md for every key.
# DEMO IMAGE: the household password is "$demo_pw" (make demo prints it).
[web]
listen = :8080
password_file = /etc/gridmeter/meterweb.passwd
CONF
	# meterweb passwd writes the hash to the file the configuration names:
	# a copy of the configuration naming the file inside the image root
	sed "s|^password_file = /|password_file = $(realpath "$root")/|" \
		"$root/etc/gridmeter/meterweb.conf" >"$out/meterweb-build.conf"
	rm -f "$root/etc/gridmeter/meterweb.passwd"
	printf '%s\n%s\n' "$demo_pw" "$demo_pw" |
		"build/$arch/bin/meterweb" -c "$out/meterweb-build.conf" passwd >"$out/meterweb-passwd.log" 2>&1 ||
		{ cat "$out/meterweb-passwd.log"; exit 1; }
	[ -s "$root/etc/gridmeter/meterweb.passwd" ] ||
		{ echo "meterweb passwd wrote no $root/etc/gridmeter/meterweb.passwd" >&2; exit 1; }
	chroot "$root" chown root:gridmeter-web /etc/gridmeter/meterweb.passwd
	chmod 640 "$root/etc/gridmeter/meterweb.passwd"
fi

# make demo hands this run's meterd.conf and uplink key to the image through
# QEMU's fw_cfg; used only when the kernel command line has gridmeter.demo.
install -D -m 755 tests/gateway/demo/provision "$root/usr/lib/gridmeter/demo/provision"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
cp tests/gateway/demo/gridmeter-demo.service "$root/etc/systemd/system/"
ln -sf ../gridmeter-demo.service "$root/etc/systemd/system/multi-user.target.wants/gridmeter-demo.service"

# Integration tests, run only when the kernel command line asks for them.
mkdir -p "$root/usr/lib/gridmeter/itest"
cp tests/gateway/itest/* "$root/usr/lib/gridmeter/itest/"
[ -f tests/dbus/meterd-smoke.sh ] && cp tests/dbus/meterd-smoke.sh "$root/usr/lib/gridmeter/itest/"
chmod 755 "$root/usr/lib/gridmeter/itest/"*
printf '%s\n' "$demo_pw" >"$root/usr/lib/gridmeter/itest/meterweb.password"
cp tests/gateway/ctl-agent.sh "$root/usr/lib/gridmeter/itest/"
for u in gridmeter-itest gridmeter-ctl; do
	cp tests/gateway/$u.service "$root/etc/systemd/system/"
	ln -sf ../$u.service "$root/etc/systemd/system/multi-user.target.wants/$u.service"
done

rm -rf "$root/var/cache/apt/"*.bin "$root/var/lib/apt/lists/"*
size=$(( $(du -sm "$root" | cut -f1) * 3 / 2 + 256 ))
rm -f "$img"
mke2fs -q -t ext4 -L gmroot -d "$root" "$img" "${size}M"
echo "  IMAGE   $img (${size} MiB, built in $(($(date +%s) - t0)) s)"
