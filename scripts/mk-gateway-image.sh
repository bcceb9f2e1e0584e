#!/bin/sh
# Build the gateway image of one architecture from the project's Debian
# packages, as a raw ext4 disk (label gmroot) that boots with its own kernel:
#   mk-gateway-image.sh KABI [ARCH]      ARCH x86_64 (default) or arm64
#   -> build/gateway/gateway-ARCH.img          the disk
#      build/gateway/rootfs-ARCH/              its root file system (kept:
#                                              QEMU boots the kernel and the
#                                              initramfs in its /boot)
#      build/gateway/gateway-ARCH.vmlinuz, .initrd   links to those two
#      build/gateway/times-ARCH.txt            seconds of each step
# Environment: GM_GATEWAY_DEBS=DIR installs the packages already in DIR
# (make check builds them in a stage of their own) instead of building them
# with scripts/mk-debs.sh ARCH into build/deb/ARCH; GM_NO_BUILD=1 takes the
# simulated ADC module make modules built before (make check: its kernel
# tree is not built again beside the stages that use it); GM_DEMO_PASSWORD.
#
# Four parts, kept apart (Documentation/gateway-image.md):
#   1. the Debian base: scripts/gateway-base.sh (minbase, systemd, Debian's
#      kernel linux-image-KABI-ARCH with its headers, DKMS, initramfs-tools);
#   2. what the packages install: dpkg -i of gridmeter-dkms, -meterd, -web
#      and -mqtt in a chroot of the image root, as an installer does on a
#      gateway: gridmeter-dkms's postinst has DKMS build gridmeter_ct and
#      gm_link against the image's kernel headers (under qemu-user for
#      arm64);
#   3. the gateway system: host name, fstab, the wired network;
#   4. what the test adds, never in a package: the simulated ADC module
#      (gm_sim_adc, built by make ARCH=... modules for the same kernel ABI)
#      and its modules-load.d file, the test meterd.conf written over the
#      packaged one as an installer edits it, the serial console's autologin,
#      the demo's password and provisioning, the integration tests and units.
set -eu
kabi=$1 arch=${2:-x86_64}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. scripts/image-chroot.sh
case "$arch" in
x86_64) debarch=amd64 ;;
arm64) debarch=arm64 ;;
*) echo "mk-gateway-image: ARCH must be x86_64 or arm64, not $arch" >&2; exit 1 ;;
esac
krel=$kabi-$debarch
out=build/gateway
root=$out/rootfs-$arch
img=$out/gateway-$arch.img
times=$out/times-$arch.txt
mkdir -p "$out"
: >"$times"
t0=$(date +%s)
ts=$t0
step() { # step NAME: the seconds since the previous step, into times-ARCH.txt
	now=$(date +%s)
	echo "$1 $((now - ts))" >>"$times"
	ts=$now
}
trap chroot_leave EXIT
trap 'exit 130' INT TERM
[ "$arch" = x86_64 ] || scripts/binfmt-arm64.sh

# ---- inputs: the base, our packages, the test fixtures' module --------------
base=$(scripts/gateway-base.sh "$arch")
step base
if [ -n "${GM_GATEWAY_DEBS:-}" ]; then
	debs=$GM_GATEWAY_DEBS
else
	debs=build/deb/$arch
	scripts/mk-debs.sh "$arch" >"$out/debs-$arch.log" 2>&1 ||
		{ tail -n 40 "$out/debs-$arch.log"; exit 1; }
	step debs
fi
gw_pkgs=
for p in gridmeter-dkms gridmeter-meterd gridmeter-web gridmeter-mqtt; do
	f=$(ls "$debs/${p}_"*"_all.deb" "$debs/${p}_"*"_$debarch.deb" 2>/dev/null | sort -V | tail -n1)
	[ -n "$f" ] || { echo "mk-gateway-image: no $p package for $debarch in $debs" >&2; exit 1; }
	gw_pkgs="$gw_pkgs $f"
done
[ -n "${GM_NO_BUILD:-}" ] ||
	make -s --no-print-directory ARCH="$arch" modules >"$out/modules-$arch.log" 2>&1 ||
	{ cat "$out/modules-$arch.log"; exit 1; }
sim_ko=$(find "build/$arch/kmod" -name gm_sim_adc.ko | head -n1)
[ -n "$sim_ko" ] || { echo "mk-gateway-image: make modules built no gm_sim_adc.ko" >&2; exit 1; }
step fixtures

# ---- 1. the Debian base --------------------------------------------------------
clear_root "$root"
mkdir -p "$root"
tar -C "$root" --xattrs --xattrs-include='*' --numeric-owner -xpf "$base"
[ -f "$root/boot/vmlinuz-$krel" ] && [ -d "$root/usr/src/linux-headers-$krel" ] ||
	{ echo "mk-gateway-image: the base $base has no kernel $krel and its headers" >&2; exit 1; }
step unpack

# ---- 2. what the packages install ---------------------------------------------
chroot_enter "$root"
mkdir -p "$root/tmp/gridmeter-debs"
# shellcheck disable=SC2086
cp $gw_pkgs "$root/tmp/gridmeter-debs/"
# gridmeter-dkms first, alone: its postinst (dh_dkms) adds the source to
# DKMS and builds and installs the modules. In a chroot `uname -r` is the
# host's kernel, which is not installed here: on a first installation the
# postinst then builds for every kernel in /lib/modules (here $krel).
in_root sh -c 'dpkg -i /tmp/gridmeter-debs/gridmeter-dkms_*.deb' >"$out/dpkg-$arch.log" 2>&1 ||
	{ cat "$out/dpkg-$arch.log"; cat "$root"/var/lib/dkms/gridmeter/*/build/make.log 2>/dev/null; exit 1; }
step dkms
in_root sh -c 'dpkg -i $(ls /tmp/gridmeter-debs/*.deb | grep -v /gridmeter-dkms_)' \
	>>"$out/dpkg-$arch.log" 2>&1 || { cat "$out/dpkg-$arch.log"; exit 1; }
rm -rf "$root/tmp/gridmeter-debs"
step install
# DKMS built and installed both modules for the image's kernel.
in_root dkms status >"$out/dkms-status-$arch.txt"
grep -q "^gridmeter/.*, $krel, .*: installed" "$out/dkms-status-$arch.txt" ||
	{ echo "mk-gateway-image: DKMS did not install gridmeter for $krel:" >&2
	  cat "$out/dkms-status-$arch.txt" "$out/dpkg-$arch.log" >&2; exit 1; }
for m in gridmeter_ct gm_link; do
	ko=$(find "$root/lib/modules/$krel/updates" -name "$m.ko*" | head -n1)
	[ -n "$ko" ] || { echo "mk-gateway-image: no $m.ko from DKMS for $krel" >&2; exit 1; }
	vm=$(modinfo -F vermagic "$ko" | cut -d' ' -f1)
	[ "$vm" = "$krel" ] || { echo "mk-gateway-image: $m.ko is for $vm, not $krel" >&2; exit 1; }
done

# ---- 3. the gateway system -----------------------------------------------------
echo gridmeter >"$root/etc/hostname"
printf '127.0.1.1\tgridmeter\n' >>"$root/etc/hosts"
printf 'LABEL=gmroot / ext4 defaults,noatime 0 1\n' >"$root/etc/fstab"
# The home network: DHCP on the wired interface (systemd-networkd), as a
# gateway on a home router gets its address; the dashboard (meterweb) is
# served there. Not systemd-networkd-wait-online: nothing here needs the
# network to be up, and a gateway without a cable must still boot cleanly.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nType=ether\n\n[Network]\nDHCP=yes\n' >"$root/etc/systemd/network/20-wired.network"
systemctl --root="$root" --quiet enable systemd-networkd.service
systemctl --root="$root" --quiet disable systemd-networkd-wait-online.service

# ---- 4. what the test adds -----------------------------------------------------
# The QEMU image has no real sensor: the simulated ADC and GPIO chip
# (tests/kmod/gm_sim_adc) stand in for the MCP3008 and the relay header.
# On x86_64 it makes the CT sensor device itself (a software node) and
# modules-load.d loads the three modules; on arm64 the device tree binds
# both as on a Pi (tests/guest/dt, scripts/guest-run.sh) and udev loads
# the modules from their OF aliases, so only gm_link's own modules-load.d
# file (gridmeter-meterd) is there.
install -D -m 644 "$sim_ko" "$root/lib/modules/$krel/extra/gm_sim_adc.ko"
depmod -b "$root" "$krel"
[ "$arch" = arm64 ] ||
	install -D -m 644 tests/gateway/modules-load.conf "$root/etc/modules-load.d/gridmeter-sim.conf"
# The simulated GPIO chip for meterd's group, as /dev/gm-sim-gpio (its
# number differs between the machines).
install -D -m 644 tests/gateway/91-gridmeter-sim.rules "$root/etc/udev/rules.d/91-gridmeter-sim.rules"
# meterd's configuration for the simulated lines, written over the
# packaged conffile as an installer edits it (its owner and mode stay).
cat tests/gateway/meterd.conf >"$root/etc/gridmeter/meterd.conf"

# A console a technician can use: root logs in on the serial line (the QEMU
# image is for testing; a real gateway is provisioned with keys instead).
in_root passwd -dq root
mkdir -p "$root/etc/systemd/system/serial-getty@.service.d"
cat >"$root/etc/systemd/system/serial-getty@.service.d/autologin.conf" <<'UNIT'
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
# and read by the image's own test), hashed by the packaged meterweb's own
# `meterweb passwd` (Argon2id) inside the image. A real gateway's password
# is the installer's (gridmeter-setup).
demo_pw=${GM_DEMO_PASSWORD:-sunny-meter-42}
cat >"$root/etc/gridmeter/meterweb.conf" <<CONF
# meterweb on the QEMU demo image (scripts/mk-gateway-image.sh): see
# /usr/share/doc/gridmeter/dashboard.md for every key.
# DEMO IMAGE: the household password is "$demo_pw" (make demo prints it).
[web]
listen = :8080
password_file = /etc/gridmeter/meterweb.passwd
CONF
rm -f "$root/etc/gridmeter/meterweb.passwd"
printf '%s\n%s\n' "$demo_pw" "$demo_pw" |
	in_root meterweb -c /etc/gridmeter/meterweb.conf passwd >"$out/meterweb-passwd.log" 2>&1 ||
	{ cat "$out/meterweb-passwd.log"; exit 1; }
[ -s "$root/etc/gridmeter/meterweb.passwd" ] ||
	{ echo "meterweb passwd wrote no /etc/gridmeter/meterweb.passwd in $root" >&2; exit 1; }
in_root chown root:gridmeter-web /etc/gridmeter/meterweb.passwd
chmod 640 "$root/etc/gridmeter/meterweb.passwd"
chroot_leave

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
step test-files

# ---- the disk ------------------------------------------------------------------
rm -rf "$root/var/cache/apt/"*.bin "$root/var/lib/apt/lists/"*
size=$(( $(du -sm "$root" | cut -f1) * 3 / 2 + 256 ))
rm -f "$img"
mke2fs -q -t ext4 -L gmroot -d "$root" "$img" "${size}M" >/dev/null
ln -sfn "rootfs-$arch/boot/vmlinuz-$krel" "$out/gateway-$arch.vmlinuz"
ln -sfn "rootfs-$arch/boot/initrd.img-$krel" "$out/gateway-$arch.initrd"
step disk
used=$(du -sm "$root" | cut -f1)
echo "total $((ts - t0))" >>"$times"
echo "  IMAGE   $img (${size} MiB, ${used} MiB used, built in $((ts - t0)) s:" \
	"$(awk '$1 != "total" { printf "%s%s %s s", (NR > 1 ? ", " : ""), $1, $2 }' "$times"))"
