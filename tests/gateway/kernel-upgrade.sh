#!/bin/sh
# A kernel upgrade on the x86_64 gateway rebuilds the project's modules:
#   tests/gateway/kernel-upgrade.sh [--boot]     after scripts/mk-gateway-image.sh
# In a copy of the image's root file system (overlayfs over
# build/gateway/rootfs-x86_64; the image itself is not changed), Debian's
# 6.12 from bookworm-backports is installed with dpkg, as
# `apt install -t bookworm-backports linux-image-amd64 linux-headers-amd64`
# brings it to a gateway: the kernel's and the headers' postinst hooks
# (/etc/kernel/*postinst.d/dkms) have DKMS build gridmeter for the new
# kernel. Checked: `dkms status` says installed for it, and the built
# gridmeter_ct and gm_link carry its vermagic (modinfo -F vermagic).
# --boot then makes a disk of that root, boots the new kernel (its own
# initramfs) and runs t-boot and t-modules inside (the modules load there).
# The packages come from a private apt configuration (bookworm and
# bookworm-backports, resolved against the image's own dpkg status, never
# the host's) and are kept in build/cache/k612-debs/amd64; never installed
# on the host. Prints KTAP-like lines and "kernel-upgrade: N passed, N failed";
# the seconds of each step in build/gateway/kernel-upgrade/times.txt.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. scripts/image-chroot.sh
boot=no
[ "${1:-}" = --boot ] && boot=yes
lower=build/gateway/rootfs-x86_64
w=build/gateway/kernel-upgrade
debs=build/cache/k612-debs/amd64
apt=build/cache/k612-debs/apt
[ -d "$lower/var/lib/dpkg" ] || { echo "kernel-upgrade: no $lower (scripts/mk-gateway-image.sh first)"; exit 1; }
merged=$w/root
cleanup() {
	chroot_leave
	mountpoint -q "$merged" && umount "$merged"
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
clear_root "$w"
mkdir -p "$w/upper" "$w/work" "$merged"
: >"$w/times.txt"
P=0 F=0 n=0
ok() { n=$((n + 1)); P=$((P + 1)); echo "ok $n $1"; }
notok() { n=$((n + 1)); F=$((F + 1)); echo "not ok $n $1"; }
secs() { echo "$1 $2" >>"$w/times.txt"; }

# ---- the packages: fetched once, kept ---------------------------------------------
t=$(date +%s)
if ! ls "$debs"/linux-image-6.12*.deb >/dev/null 2>&1; then
	rm -rf "$debs" "$apt"
	mkdir -p "$debs/partial" "$apt/lists/partial" "$apt/cache"
	sources=/etc/apt/sources.list.d/debian.sources
	[ -f "$sources" ] || sources=/etc/apt/sources.list
	cp "$sources" "$apt/${sources##*/}"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
		"http://deb.debian.org/debian bookworm-backports main" >"$apt/backports.list"
	set -- -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$PWD/$apt" \
		-o Dir::State::Lists="$PWD/$apt/lists" -o Dir::Cache="$PWD/$apt/cache" \
		-o Dir::Cache::Archives="$PWD/$debs" \
		-o Dir::State::Status="$PWD/$lower/var/lib/dpkg/status" \
		-o APT::Architecture=amd64 -o APT::Architectures::=amd64 \
		-o APT::Install-Recommends=false -o Debug::NoLocking=true
	apt-get "$@" update -qq
	apt-get "$@" install -qq -y --download-only -t bookworm-backports \
		linux-image-amd64 linux-headers-amd64 2>&1 | grep -v 'unsandboxed' || true
	rm -rf "$debs/partial" "$debs/lock"
fi
new=$(ls "$debs"/linux-image-6.12*-amd64_*.deb 2>/dev/null | grep -v unsigned | head -n1 |
	sed 's|.*/linux-image-\(6\.12[^_]*\)_.*|\1|')
[ -n "$new" ] || { echo "kernel-upgrade: no 6.12 linux-image package in $debs"; exit 1; }
echo "# bookworm-backports kernel $new: $(ls "$debs"/*.deb | wc -l) packages," \
	"$(du -cm "$debs"/*.deb | tail -n1 | cut -f1) MB ($debs)"
secs fetch $(($(date +%s) - t))

# ---- the upgrade, in an overlay of the image's root ------------------------------
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$w/upper,workdir=$w/work" "$merged"
chroot_enter "$merged"
mkdir -p "$merged/tmp/k612"
cp "$debs"/*.deb "$merged/tmp/k612/"
t=$(date +%s)
# each line with the second it came at (for the DKMS part's duration)
stamp() { while IFS= read -r l; do printf '%s %s\n' "$(date +%s)" "$l"; done; }
{ in_root sh -c 'dpkg -i /tmp/k612/*.deb' 2>&1; echo "rc=$?"; } | stamp >"$w/dpkg.log"
if grep -q ' rc=0$' "$w/dpkg.log"; then
	ok "dpkg -i of Debian's $new (kernel, headers, kbuild) in the image"
else
	notok "dpkg -i of Debian's $new in the image"
	cut -d' ' -f2- "$w/dpkg.log" | tail -n 40 | sed 's/^/# /'
fi
dt=$(($(date +%s) - t))
secs install-6.12 "$dt"
rm -rf "$merged/tmp/k612"
# the DKMS part of it: from the kernel's dkms hook starting to its end
d0=$(grep -m1 ' /etc/kernel/postinst.d/dkms:$' "$w/dpkg.log" | cut -d' ' -f1)
d1=$(grep -m1 " dkms: autoinstall for kernel: $new" "$w/dpkg.log" | cut -d' ' -f1)
secs dkms-6.12 $((${d1:-0} - ${d0:-0}))
echo "# dpkg -i of the new kernel took $dt s, of which DKMS building and installing" \
	"gridmeter for it $((${d1:-0} - ${d0:-0})) s"
sed -n '/postinst.d\/dkms:$/,/dkms: autoinstall for kernel/p' "$w/dpkg.log" | cut -d' ' -f2- |
	sed 's/^/# /'

st=$(in_root dkms status -m gridmeter 2>/dev/null)
echo "$st" | sed 's/^/# dkms status: /'
if echo "$st" | grep -q "^gridmeter/.*, $new, x86_64: installed"; then
	ok "dkms status: gridmeter installed for $new"
else
	notok "dkms status: gridmeter installed for $new"
	cat "$merged"/var/lib/dkms/gridmeter/*/build/make.log 2>/dev/null | tail -n 30 | sed 's/^/# /'
fi
for m in gridmeter_ct gm_link; do
	ko=$(find "$merged/lib/modules/$new/updates" -name "$m.ko*" 2>/dev/null | head -n1)
	vm=$( [ -n "$ko" ] && modinfo -F vermagic "$ko" | cut -d' ' -f1)
	if [ "$vm" = "$new" ]; then
		ok "$m rebuilt for $new (${ko##*/}, vermagic $vm)"
	else
		notok "$m rebuilt for $new (found: ${ko:-none}, vermagic ${vm:-none})"
	fi
done
# the old kernel keeps its modules
old=$(ls "$lower/lib/modules" | grep -v '^6\.12' | head -n1)
if echo "$st" | grep -q "^gridmeter/.*, $old, x86_64: installed"; then
	ok "the previous kernel $old keeps its modules"
else
	notok "the previous kernel $old keeps its modules"
fi
chroot_leave

# ---- the new kernel boots and loads them --------------------------------------------
if [ $boot = yes ]; then
	t=$(date +%s)
	# the test's fixture, for the new kernel too (as the image does for the old)
	make -s --no-print-directory ARCH=x86_64 KERNEL=6.12 modules >"$w/modules.log" 2>&1 ||
		{ cat "$w/modules.log"; exit 1; }
	install -D -m 644 "$(find build/x86_64-6.12/kmod -name gm_sim_adc.ko | head -n1)" \
		"$merged/lib/modules/$new/extra/gm_sim_adc.ko"
	depmod -b "$merged" "$new"
	img=$w/gateway-x86_64-6.12.img
	size=$(( $(du -sm "$merged" | cut -f1) * 3 / 2 + 256 ))
	mke2fs -q -t ext4 -L gmroot -d "$merged" "$img" "${size}M" >/dev/null
	mkdir -p "$w/kroot/boot"
	cp "$merged/boot/vmlinuz-$new" "$merged/boot/initrd.img-$new" "$w/kroot/boot/"
	umount "$merged"
	secs image-6.12 $(($(date +%s) - t))
	t=$(date +%s)
	log=$w/itest.log
	GM_KROOT=$w/kroot GM_QEMU_EXTRA="-drive file=$img,format=raw,if=virtio,snapshot=on" \
	GM_QEMU_MEM=1024 scripts/guest-run.sh x86_64 "${new%-amd64}" "$w/kroot/boot/initrd.img-$new" \
		"$log" "${GM_GUEST_TIMEOUT:-300}" root=LABEL=gmroot gridmeter.itest \
		gridmeter.itest_only=t-boot,t-modules systemd.show_status=false || true
	secs boot-6.12 $(($(date +%s) - t))
	rm -f "$img"
	if scripts/ktap-check.py "$log" "gateway-6.12" >"$w/itest.verdict" 2>&1; then
		sed 's/^/# /' "$w/itest.verdict"
		ok "the gateway boots $new and loads the rebuilt modules (t-boot, t-modules)"
	else
		sed 's/^/# /' "$w/itest.verdict"
		notok "the gateway boots $new and loads the rebuilt modules (t-boot, t-modules; $log)"
	fi
fi
sed 's/^/# seconds: /' "$w/times.txt"
echo "kernel-upgrade: $P passed, $F failed, 0 skipped"
[ "$F" -eq 0 ]
