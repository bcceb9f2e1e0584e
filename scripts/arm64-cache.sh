#!/bin/sh
# Fill build/cache/arm64 for cross builds and arm64 guests:
#   root/usr/src/linux-headers-KABI-arm64  kernel headers (scripts/tools linked
#                                          to the host's linux-kbuild)
#   root/boot/vmlinuz-KABI-arm64, root/lib/modules/KABI-arm64   guest kernel
#   root/usr/lib/aarch64-linux-gnu, root/usr/include ...         userspace sysroot
#                                          (libsystemd, libiio, libgpiod, dbus,
#                                          libsodium, libmicrohttpd for meterweb,
#                                          libmosquitto for gm-mqttd)
# Packages are fetched with apt-get download and unpacked with dpkg-deb -x.
# Nothing is ever installed as :arm64 (that would remove the host's gcc).
set -eu
dest=$1
kabi=$2
rm -rf "$dest/debs" "$dest/root"
mkdir -p "$dest/debs" "$dest/root"

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	dpkg --add-architecture arm64
	apt-get update -qq
fi

# Userspace: what the agent links against and what the arm64 test initramfs
# carries (dbus-daemon, busctl, iio and gpiod tools), with the shared-library
# closure from apt. Alternatives apt lists but we do not want are dropped,
# and so is glibc's development side: the cross toolchain brings its own
# (libc6-dev-arm64-cross), and libc6-dev:arm64's linker scripts name
# absolute paths that would resolve on the host.
roots="dbus-daemon:arm64 systemd:arm64 libsystemd-dev:arm64 libiio-dev:arm64
libgpiod-dev:arm64 libiio-utils:arm64 gpiod:arm64 libc6:arm64 busybox-static:arm64 util-linux:arm64
libsodium-dev:arm64 libcbor-dev:arm64 libsqlite3-dev:arm64 libmicrohttpd-dev:arm64
libmosquitto-dev:arm64"
# shellcheck disable=SC2086
pkgs=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
	--no-breaks --no-replaces --no-enhances $roots 2>/dev/null |
	grep -E '^[a-z0-9].*:arm64$' |
	grep -vE '^(libelogind0|cdebconf|libdebian-installer4|libnewt0.52|libslang2|libtextwrap1|dpkg|tar|install-info|debconf|libc6-dev|linux-libc-dev|libcrypt-dev|libnsl-dev|libtirpc-dev|rpcsvc-proto):' |
	sort -u)
pkgs="$pkgs linux-headers-$kabi-arm64:arm64 linux-image-$kabi-arm64-unsigned:arm64"

cd "$dest/debs"
# shellcheck disable=SC2086
apt-get download -q $pkgs 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
for deb in ./*.deb; do
	dpkg-deb -x "$deb" ../root
done
cd ..

hdr="root/usr/src/linux-headers-$kabi-arm64"
[ -f "$hdr/Makefile" ] || { echo "arm64-cache: no headers for $kabi" >&2; exit 1; }
kbuild=$(ls -d /usr/lib/linux-kbuild-* | sort -V | tail -n1)
ln -sfn "$kbuild/scripts" "$hdr/scripts"
ln -sfn "$kbuild/tools" "$hdr/tools"

# Absolute symlinks inside the sysroot (e.g. libfoo.so -> /lib/...) must point
# into the sysroot, not at the host.
find root -type l | while read -r l; do
	t=$(readlink "$l")
	case "$t" in
	/usr/lib/linux-kbuild*) ;;
	/*) ln -sfn "$PWD/root$t" "$l" ;;
	esac
done
rm -rf debs
depmod -b root "$kabi-arm64"
touch ".stamp-$kabi"
