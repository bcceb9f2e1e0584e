#!/bin/sh
# Build gridmeter's Debian packages for one architecture:
#   scripts/mk-debs.sh ARCH          (ARCH: x86_64 or arm64; make debs ARCH=...)
# Output: build/deb/ARCH/ (*.deb, the .changes and .buildinfo, sizes.txt,
# lintian.txt). Environment:
#   GM_DEB_VERSION=V   build version V instead of debian/changelog's (a new
#                      changelog entry in the staged copy only; the package
#                      lifecycle test builds its upgrade this way)
#   GM_DEB_OUT=DIR     write the packages to DIR instead of build/deb/ARCH
#   GM_JOBS=N          compile jobs (default: every core)
#   GM_DEB_NOLINT=1    skip lintian        } the lifecycle test's second
#   GM_DEB_NODKMS=1    skip the DKMS check }  build (tests/packages)
#
# The tree is staged in build/deb/src-ARCH/gridmeter: hard links of the files
# git knows (tracked and new, not ignored) plus, in its build/, links to this
# checkout's caches (kernel headers and the arm64 sysroot in build/cache, the
# npm packages and the built-in static files in build/npm and build/web).
# dpkg-buildpackage runs there, so its output lands in build/deb/src-ARCH,
# never beside the checkout. The staged build/ARCH keeps its objects from
# one run to the next: a second run only compiles what changed. amd64 is a
# native build; arm64 a cross build (dpkg-buildpackage -a arm64 -d: the
# arm64 libraries are not installed, the sysroot has them, see debian/rules).
# Then the DKMS tree of the gridmeter-dkms package is built as DKMS would
# (its dkms.conf's MAKE line) against the 6.1 and 6.12 headers of ARCH, and
# lintian judges the packages (--fail-on error,warning). Documentation/packaging.md.
set -eu
arch=${1:-x86_64}
case "$arch" in
x86_64 | amd64 | x86) arch=x86_64 debarch=amd64 ;;
arm64 | aarch64) arch=arm64 debarch=arm64 ;;
*) echo "usage: mk-debs.sh x86_64|arm64" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=${GM_JOBS:-$(nproc 2>/dev/null || echo 2)}
out=${GM_DEB_OUT:-build/deb/$arch}
t0=$(date +%s)
secs() { echo $(($(date +%s) - $1)); }

# 1. What the userspace build needs, made in this checkout (nothing to do
# when present): the kselftest headers, the npm packages and the static
# files built into the web daemons; the arm64 sysroot and headers.
pre="ksft web-npm build/web/assets.c k612-cache"
[ "$arch" = arm64 ] && pre="$pre arm64-cache"
# shellcheck disable=SC2086
make -s --no-print-directory ARCH="$arch" GM_JOBS="$jobs" $pre

# 2. The staged copy.
stage=build/deb/src-$arch
src=$stage/gridmeter
mkdir -p "$src/build"
find "$src" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
find "$stage" -maxdepth 1 -type f -delete
git ls-files -co --exclude-standard | while read -r f; do
	[ -f "$f" ] && printf '%s\n' "$f"
done | cpio -pdl --quiet "$src"
for d in cache npm web; do
	rm -rf "${src:?}/build/$d"
	ln -s "$top/build/$d" "$src/build/$d"
done
if [ -n "${GM_DEB_VERSION:-}" ]; then
	{
		printf 'gridmeter (%s) bookworm; urgency=medium\n\n' "$GM_DEB_VERSION"
		printf '  * Rebuilt as %s (scripts/mk-debs.sh, GM_DEB_VERSION).\n\n' "$GM_DEB_VERSION"
		printf ' -- gridmeter developers <dev@gridmeter.invalid>  %s\n\n' "$(date -R)"
		cat debian/changelog
	} >"$src/debian/changelog.new"
	rm -f "$src/debian/changelog"
	mv "$src/debian/changelog.new" "$src/debian/changelog"
fi
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)

# 3. The packages.
echo "debs: building gridmeter $version for $debarch in $src"
t1=$(date +%s)
if [ "$debarch" = amd64 ]; then
	set -- -b
else
	set -- -a arm64 -b -d
fi
# nocheck: the project's tests are make check's (debian/rules runs none);
# CC: what dpkg-architecture expects of a cross build (the Makefile picks
# aarch64-linux-gnu-gcc itself).
cc=gcc
[ "$debarch" = arm64 ] && cc=aarch64-linux-gnu-gcc
(cd "$src" && CC=$cc DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage "$@" -us -uc) \
	>"$stage/build.log" 2>&1 || { tail -n 60 "$stage/build.log" >&2; echo "debs: dpkg-buildpackage failed (log: $stage/build.log)" >&2; exit 1; }
tbuild=$(secs "$t1")
rm -rf "$out"
mkdir -p "$out"
mv "$stage"/*.deb "$stage"/*.changes "$stage"/*.buildinfo "$out/"
cp "$stage/build.log" "$out/build.log"

# 4. The DKMS tree, built as DKMS builds it, for both kernels of ARCH.
t2=$(date +%s)
dk=$stage/dkms
rm -rf "$dk"
mkdir -p "$dk"
dpkg-deb -x "$out"/gridmeter-dkms_*_all.deb "$dk/root"
tree=$(echo "$dk"/root/usr/src/gridmeter-*)
conf=$tree/dkms.conf
names=$(sed -n 's/^BUILT_MODULE_NAME\[[0-9]*\]="\(.*\)"/\1/p' "$conf")
locs=$(sed -n 's/^BUILT_MODULE_LOCATION\[[0-9]*\]="\(.*\)"/\1/p' "$conf")
if [ "$arch" = arm64 ]; then
	kargs="ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- DEB_BUILD_ARCH=amd64 DEB_HOST_ARCH=arm64 DEB_HOST_GNU_TYPE=aarch64-linux-gnu"
	k61=$top/build/cache/arm64/root/usr/src/linux-headers-$(scripts/kver.sh)-arm64
else
	kargs=""
	k61=/usr/src/linux-headers-$(scripts/kver.sh)-amd64
fi
k612=$top/build/cache/k612/root/usr/src/linux-headers-$(cat build/cache/k612/kabi 2>/dev/null)-$debarch
dkms_ok=0
[ -n "${GM_DEB_NODKMS:-}" ] && k61="" k612=""
for k in $k61 $k612; do
	if [ ! -f "$k/Makefile" ]; then
		echo "debs: DKMS build: no headers at $k (make KERNEL=6.12 k612-cache)" >&2
		exit 1
	fi
	b=$dk/build
	rm -rf "$b"
	cp -r "$tree" "$b"
	# dkms.conf's MAKE[0], with dkms's variables filled in
	mk=$(sed -n 's/^MAKE\[0\]="\(.*\)"/\1/p' "$conf" |
		sed "s|\${kernel_source_dir}|$k|; s|\${dkms_tree}/\${PACKAGE_NAME}/\${PACKAGE_VERSION}/build|$PWD/$b|")
	# shellcheck disable=SC2086
	if ! env -u MAKEFLAGS -u MFLAGS $mk $kargs >"$dk/make.log" 2>&1; then
		cat "$dk/make.log" >&2
		echo "debs: the DKMS tree does not build against $k" >&2
		exit 1
	fi
	set -- $locs
	for n in $names; do
		ko=$b/$1/$n.ko
		shift
		[ -f "$ko" ] || { echo "debs: DKMS build made no $ko" >&2; exit 1; }
		vm=$(modinfo -F vermagic "$ko" | cut -d' ' -f1)
		echo "debs: DKMS tree -> $n.ko for $vm"
	done
	dkms_ok=$((dkms_ok + 1))
done
tdkms=$(secs "$t2")

# 5. Sizes, lintian.
{
	printf '%-44s %10s %14s\n' package "deb KiB" "installed KiB"
	for d in "$out"/*.deb; do
		printf '%-44s %10s %14s\n' "${d##*/}" "$(($(stat -c %s "$d") / 1024))" \
			"$(dpkg-deb -f "$d" Installed-Size)"
	done
} >"$out/sizes.txt"
cat "$out/sizes.txt"
lint=0
if [ -z "${GM_DEB_NOLINT:-}" ]; then
	t3=$(date +%s)
	lintian --fail-on error,warning "$out"/*.changes >"$out/lintian.txt" 2>&1 || lint=1
	if [ -s "$out/lintian.txt" ]; then cat "$out/lintian.txt"; fi
	[ "$lint" -eq 0 ] && echo "debs: lintian ($debarch): clean ($(secs "$t3") s; overrides: debian/*.lintian-overrides)" ||
		echo "debs: lintian ($debarch): FAILED (above)" >&2
fi
echo "debs: $version $debarch: $(ls "$out"/*.deb | wc -l) packages in $out; build ${tbuild} s, DKMS check ${tdkms} s ($dkms_ok kernels), total $(secs "$t0") s"
exit "$lint"
