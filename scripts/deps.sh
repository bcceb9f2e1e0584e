#!/bin/sh
# Install every Debian package gridmeter needs to build, test and boot its
# images. Idempotent: when everything is present it only runs dpkg-query and
# exits in well under a second. Never installs an :arm64 package (that would
# replace the host toolchain); arm64 pieces are fetched by scripts/arm64-cache.sh.
set -eu

PKGS="
build-essential pkg-config bc kmod cpio xz-utils zstd file
linux-headers-amd64 linux-source-6.1 sparse pahole
gcc-aarch64-linux-gnu libc6-dev-arm64-cross
libsystemd-dev libiio-dev libiio-utils libgpiod-dev gpiod
dbus dbus-daemon systemd
qemu-system-x86 qemu-system-arm qemu-utils busybox-static
mmdebstrap e2fsprogs device-tree-compiler dt-schema
clang valgrind python3 perl iproute2 nftables
libsodium-dev libcbor-dev libsqlite3-dev sqlite3
postgresql-15 libpq-dev
libcurl4-openssl-dev libcairo2-dev poppler-utils python3-aiosmtpd
libmicrohttpd-dev libssl-dev zlib1g-dev tzdata
mosquitto mosquitto-clients libmosquitto-dev python3-paho-mqtt
dpkg-dev debhelper dh-dkms dkms fakeroot lintian
qemu-user-static binfmt-support arch-test
"

# The web pages' npm packages (scripts/web-npm.sh) need node and npm: the
# machine's own when it has them (CI brings Node 20 with its npm), else Debian's.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$st" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
