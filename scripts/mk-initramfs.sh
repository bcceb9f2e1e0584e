#!/bin/sh
# Build a busybox initramfs for the QEMU guests.
#
#   mk-initramfs.sh ARCH KABI OUTDIR            test initramfs: busybox, our
#       modules and what they depend on, the guest kselftest programs, the
#       project's programs, dbus-daemon and busctl with their libraries.
#       -> OUTDIR/initramfs.cpio.gz
#   Environment: GM_KROOT, the unpacked kernel (boot/, lib/modules/) when it
#   is not the architecture's cache (Debian's 6.12: build/cache/k612/root);
#   GM_USERSPACE, where the programs and guest tests were built when it is
#   not OUTDIR (OUTDIR/kmod always holds the project's modules).
set -eu
arch=$1 kabi=$2 out=$3
top=$(cd "$(dirname "$0")/.." && pwd)
case "$arch" in
x86_64) krel=$kabi-amd64 triplet=x86_64-linux-gnu
	sysroot="" kroot=$top/build/cache/x86_64/root busybox=/bin/busybox ;;
arm64) krel=$kabi-arm64 triplet=aarch64-linux-gnu
	sysroot=$top/build/cache/arm64/root kroot=$sysroot
	busybox=$sysroot/bin/busybox ;;
*) echo "mk-initramfs: unknown arch $arch" >&2; exit 1 ;;
esac
[ -n "${GM_KROOT:-}" ] && kroot=$(cd "$GM_KROOT" && pwd)
user=${GM_USERSPACE:-$out}
kmods=$kroot/lib/modules/$krel
[ -f "$kmods/modules.dep" ] || { echo "mk-initramfs: no kernel modules in $kmods" >&2; exit 1; }

stage=$out/initramfs
image=$out/initramfs.cpio.gz
rm -rf "$stage"
# Merged /usr as on Debian 12: lib and lib64 are links into usr. busybox
# installs its applets itself when /init starts.
mkdir -p "$stage"/bin "$stage"/usr/bin "$stage"/usr/lib/modules/"$krel" "$stage"/usr/lib64 \
	"$stage"/dev "$stage"/proc "$stage"/sys "$stage"/run "$stage"/tmp "$stage"/etc
ln -s usr/lib "$stage/lib"
ln -s usr/lib64 "$stage/lib64"
cp "$busybox" "$stage/bin/busybox"
cp "$top/tests/guest/init" "$stage/init"
chmod 755 "$stage/init"

# --- ELF programs with their shared libraries --------------------------------
libdirs="/usr/lib/$triplet /lib/$triplet /usr/lib /lib /usr/lib/$triplet/systemd"
canon() { # map /lib/... to /usr/lib/... (merged /usr inside the initramfs)
	case "$1" in /lib/*|/lib64/*) echo "/usr$1" ;; *) echo "$1" ;; esac
}
copy_elf() { # $1: absolute path inside the sysroot (recursive: locals)
	local src dst interp lib found d
	src=$sysroot$1
	dst=$stage$(canon "$1")
	[ -e "$dst" ] && return 0
	mkdir -p "$(dirname "$dst")"
	cp -L "$src" "$dst"
	interp=$(readelf -lW "$src" 2>/dev/null | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
	[ -n "$interp" ] && copy_elf "$interp"
	for lib in $(readelf -dW "$src" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		found=""
		for d in $libdirs; do
			if [ -e "$sysroot$d/$lib" ]; then found=$d/$lib; break; fi
		done
		[ -n "$found" ] || { echo "mk-initramfs: $1 needs $lib, not found" >&2; exit 1; }
		copy_elf "$found"
	done
}
# --- kernel modules ----------------------------------------------------------
add_module() { # $1: module name; copies it and everything modules.dep lists
	local n line rel
	n=$(echo "$1" | tr - _)
	line=$(awk -v n="$n" -F: '{ m = $1; sub(".*/", "", m); sub("\\.ko.*", "", m);
		gsub("-", "_", m); if (m == n) { print; exit } }' "$kmods/modules.dep")
	[ -n "$line" ] || { grep -q "/$1.ko" "$kmods/modules.builtin" 2>/dev/null && return 0
		echo "mk-initramfs: module $1 not found for $krel" >&2; exit 1; }
	for rel in $(echo "$line" | tr -d :); do
		mkdir -p "$stage/usr/lib/modules/$krel/$(dirname "$rel")"
		cp "$kmods/$rel" "$stage/usr/lib/modules/$krel/$rel"
	done
}
cp "$kmods"/modules.builtin "$kmods"/modules.builtin.modinfo "$kmods"/modules.order \
	"$stage/usr/lib/modules/$krel/"

# Our modules, then every Debian module they or the tests need.
mkdir -p "$stage/usr/lib/modules/$krel/extra"
find "$out/kmod" -name '*.ko' -exec cp {} "$stage/usr/lib/modules/$krel/extra/" \;
for ko in "$stage/usr/lib/modules/$krel/extra"/*.ko; do
	[ -e "$ko" ] || continue
	for dep in $(modinfo -F depends "$ko" | tr , ' '); do
		[ -e "$stage/usr/lib/modules/$krel/extra/$dep.ko" ] || add_module "$dep"
	done
done
grep -v '^#' "$top/tests/guest/modules.list" | while read -r m; do
	[ -n "$m" ] && add_module "$m"
done
# Test programs and the project's programs (both built for ARCH).
mkdir -p "$stage/tests"
for t in "$user"/guest-tests/*; do
	[ -x "$t" ] || continue
	case "$t" in
	*.d) continue ;;
	*/selfcheck_*) dir=selfcheck ;;
	*) dir=bin ;;
	esac
	mkdir -p "$stage/tests/$dir"
	cp "$t" "$stage/tests/$dir/"
done
# Guest agents of multi-guest tests, run with gm.run=/tests/agent/NAME.
mkdir -p "$stage/tests/agent"
for a in "$top"/tests/*/guest-agent-*.sh; do
	[ -e "$a" ] || continue
	n=${a##*/guest-agent-}
	cp "$a" "$stage/tests/agent/${n%.sh}"
	chmod 755 "$stage/tests/agent/${n%.sh}"
done
for p in "$user"/bin/*; do
	[ -x "$p" ] || continue
	case "$p" in *.d) continue ;; esac
	mkdir -p "$stage/usr/local/bin"
	cp "$p" "$stage/usr/local/bin/"
done
for tool in /usr/bin/dbus-daemon /usr/bin/busctl /usr/bin/iio_info /usr/bin/iio_attr \
		/usr/bin/iio_readdev /usr/bin/gpiodetect /usr/bin/gpioinfo /usr/bin/gpioset \
		/usr/bin/gpioget /usr/sbin/ldattach; do
	copy_elf "$tool"
done
# Shared libraries of dynamically linked guest tests and programs.
for f in "$stage"/tests/bin/* "$stage"/usr/local/bin/*; do
	[ -e "$f" ] || continue
	for lib in $(readelf -dW "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		for d in $libdirs; do
			if [ -e "$sysroot$d/$lib" ]; then copy_elf "$d/$lib"; break; fi
		done
	done
	interp=$(readelf -lW "$f" 2>/dev/null | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
	[ -n "$interp" ] && copy_elf "$interp"
done
# dbus-daemon needs its configuration, users and a machine id.
mkdir -p "$stage/usr/share/dbus-1" "$stage/etc/dbus-1" "$stage/var/lib/dbus"
# (architecture-independent files: the host's copies serve both guests)
cp /usr/share/dbus-1/session.conf /usr/share/dbus-1/system.conf "$stage/usr/share/dbus-1/"
cp -r "$top/tests/guest/etc/." "$stage/etc/"
depmod -b "$stage" "$krel"

(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$image.tmp"
mv "$image.tmp" "$image"
echo "  INITRAMFS $image ($(du -h "$image" | cut -f1))"
