#!/bin/sh
# The gateway image's Debian base for one architecture: mmdebstrap (minbase,
# tests/gateway/packages.list, Debian's kernel linux-image-KABI-ARCH with its
# headers, DKMS and initramfs-tools), kept as a tarball in build/cache: made
# when missing or older than a week, else left alone. Prints its path.
#   gateway-base.sh [ARCH]          ARCH x86_64 (default) or arm64
# scripts/mk-gateway-image.sh unpacks it and installs the project's Debian
# packages into it; make check starts this in the background from its start
# (Documentation/gateway-image.md gives the times), so that the image finds
# it made. arm64 is built on this x86_64 machine with qemu-user-static
# through binfmt_misc (scripts/binfmt-arm64.sh registers it when needed).
# The kernel is the ABI of scripts/kver.sh (the one build/cache and the test
# fixtures are built against), not whatever linux-image-ARCH points at.
# The name carries a hash of what makes it (the package list, the mirrors,
# the kernel ABI, BASE_FORMAT): a change to any of them makes a new one.
set -eu
arch=${1:-x86_64}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
case "$arch" in
x86_64) debarch=amd64 ;;
arm64) debarch=arm64 ;;
*) echo "gateway-base: ARCH must be x86_64 or arm64, not $arch" >&2; exit 1 ;;
esac
kabi=$(scripts/kver.sh)
BASE_FORMAT="minbase, no man/doc/locale/unused drivers, initramfs-tools MODULES=list, one initramfs, bookworm, v3"
# The same package mirrors as the host (the only ones reachable here).
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
pkgs=$(grep -v '^#' tests/gateway/packages.list | tr '\n' ',' | sed 's/,,*/,/g; s/,$//')
pkgs="$pkgs,linux-image-$kabi-$debarch,linux-headers-$kabi-$debarch"
key=$( (cat tests/gateway/packages.list "$sources"; echo "$BASE_FORMAT $kabi") | sha256sum | cut -c1-16)
base=build/cache/gateway-base-$arch-$key.tar
mkdir -p build/cache
find build/cache -maxdepth 1 -name "gateway-base-$arch-*.tar" \( ! -name "${base##*/}" -o \
	-mtime +7 \) -delete
if [ ! -f "$base" ]; then
	[ "$arch" = x86_64 ] || scripts/binfmt-arm64.sh
	t0=$(date +%s)
	rm -f "$base.tmp.tar"
	# The initramfs: the image boots from a virtio disk (QEMU), so the
	# initramfs carries the modules of that path only (MODULES=list): a
	# few MB made in seconds, where MODULES=most (Debian's default, which
	# a Raspberry Pi's image keeps) is about 30 MB. It is made once, at the
	# end (the customize hooks): during the bootstrap update-initramfs is
	# diverted to a no-op, where the kernel's postinst and then the
	# initramfs-tools trigger each made it (about 40 s each under
	# qemu-user, measured in the arm64 base's 342 s).
	# Kernel modules for hardware a gateway never has (graphics, sound,
	# wireless, media, ...) are not unpacked: about 200 MB less to write
	# into every image.
	x=
	for d in gpu media net/wireless net/ethernet infiniband staging isdn bluetooth \
			scsi/qla2xxx scsi/lpfc net/can/usb; do
		x="$x --dpkgopt=path-exclude=/lib/modules/*/kernel/drivers/$d/*"
	done
	# mmdebstrap unpacks the root in TMPDIR before it writes the tarball:
	# a tmpfs of its own when we may mount one (about 1.5 GB that never
	# reaches the disk, whose writeback slowed the fsyncs of the tests
	# running beside it), else the usual /tmp.
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/gm-base.XXXXXX")
	if mount -t tmpfs -o size=6g,mode=0700 gm-base "$tmp" 2>/dev/null; then
		trap 'umount "$tmp"; rmdir "$tmp"' EXIT
	else
		trap 'rmdir "$tmp"' EXIT
	fi
	# shellcheck disable=SC2086
	TMPDIR=$tmp mmdebstrap --quiet --variant=minbase --architectures="$debarch" --format=tar \
		--include="$pkgs" \
		--setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"' \
		--setup-hook='printf "%s\n" "# gateway image (QEMU): only the modules of the root disk" MODULES=list >"$1/etc/initramfs-tools/conf.d/gridmeter-image.conf"' \
		--setup-hook='printf "%s\n" virtio_pci virtio_mmio virtio_blk ext4 crc32c_generic >"$1/usr/share/initramfs-tools/modules.d/gridmeter-image"' \
		--essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --divert /usr/sbin/update-initramfs.gm-base --add /usr/sbin/update-initramfs' \
		--essential-hook='printf "%s\n" "#!/bin/sh" "# gateway-base.sh: one initramfs, at the end" "exit 0" >"$1/usr/sbin/update-initramfs"; chmod 755 "$1/usr/sbin/update-initramfs"' \
		--customize-hook='rm "$1/usr/sbin/update-initramfs"; chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs' \
		--customize-hook='chroot "$1" update-initramfs -c -k all' \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/gridmeter*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/lib/modules/*/kernel/sound/*' $x \
		bookworm "$base.tmp.tar" "$sources" >&2
	mv "$base.tmp.tar" "$base"
	echo "gateway-base: $base made in $(($(date +%s) - t0)) s ($(du -m "$base" | cut -f1) MB)" >&2
fi
echo "$base"
