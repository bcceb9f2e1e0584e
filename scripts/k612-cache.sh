#!/bin/sh
# Fill build/cache/k612 with Debian's 6.12 kernel from bookworm-backports, the
# second kernel the modules are built and tested against:
#   root/usr/src/linux-headers-KABI-{amd64,arm64,common}   headers (the
#                       Makefiles and the scripts/tools links point into root)
#   root/usr/lib/linux-kbuild-VER                           kbuild (host binaries)
#   root/boot/vmlinuz-KABI-{amd64,arm64}, root/lib/modules/KABI-*   guest kernels
#   kabi                                                    e.g. 6.12.95+deb12
#   linux-source/scripts/checkpatch.pl (+ its data files)    6.12's checkpatch,
#                       taken from linux-source-6.12 (the rest is not kept)
# The packages come from a private apt configuration (its own sources list
# and lists under DEST/apt): apt-get download + dpkg-deb -x, never installed.
# Usage: k612-cache.sh DEST
set -eu
dest=$1
apt=$dest/apt
rm -rf "$dest/debs" "$dest/root" "$dest/linux-source" "$dest"/.stamp-*
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dest/debs" "$dest/root"
echo "deb [arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
	"http://deb.debian.org/debian bookworm-backports main" >"$apt/sources.list"
set -- -o Dir::Etc::SourceList="$PWD/$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
	-o Dir::State::Lists="$PWD/$apt/lists" -o Dir::Cache="$PWD/$apt/cache" \
	-o Dir::State::Status=/dev/null -o APT::Architectures::=amd64 -o APT::Architectures::=arm64
apt-get "$@" update -qq
# linux-headers-amd64 (bookworm-backports) -> linux-headers-6.12.95+deb12-amd64
kabi=$(apt-cache "$@" depends linux-headers-amd64 |
	sed -n 's/.*Depends: linux-headers-\(6\.12[^ ]*\)-amd64$/\1/p' | head -n1)
[ -n "$kabi" ] || { echo "k612-cache: no 6.12 kernel in bookworm-backports" >&2; exit 1; }
kbuild=$(apt-cache "$@" depends "linux-headers-$kabi-amd64" |
	sed -n 's/.*Depends: \(linux-kbuild-[^ :]*\)$/\1/p' | head -n1)
cd "$dest/debs"
apt-get "$@" download -q "linux-headers-$kabi-amd64" "linux-headers-$kabi-common" "$kbuild" \
	"linux-image-$kabi-amd64-unsigned" "linux-headers-$kabi-arm64:arm64" \
	"linux-image-$kabi-arm64-unsigned:arm64" "linux-source-$(echo "$kabi" | cut -d. -f1,2)" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
for deb in ./*.deb; do
	case $deb in
	./linux-source-*)
		# Only checkpatch and its data files, straight out of the tarball
		# inside the package (about 10 s; the source itself is not kept).
		mkdir -p ../linux-source
		dpkg-deb --fsys-tarfile "$deb" | tar -xOf - --wildcards './usr/src/linux-source-*.tar.xz' |
			tar -xJf - -C ../linux-source --strip-components=1 --wildcards \
				'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
				'*/scripts/const_structs.checkpatch'
		;;
	*) dpkg-deb -x "$deb" ../root ;;
	esac
done
[ -f ../linux-source/scripts/checkpatch.pl ] || { echo "k612-cache: no checkpatch.pl" >&2; exit 1; }
cd ..
rm -rf debs
root=$PWD/root
for a in amd64 arm64; do
	hdr=root/usr/src/linux-headers-$kabi-$a
	[ -f "$hdr/Makefile" ] || { echo "k612-cache: no $a headers" >&2; exit 1; }
	# Debian's Makefile includes the common headers by absolute path.
	sed -i "s|/usr/src/linux-headers-$kabi-common|$root/usr/src/linux-headers-$kabi-common|" \
		"$hdr/Makefile"
	ln -sfn "$root/usr/lib/$kbuild/scripts" "$hdr/scripts"
	ln -sfn "$root/usr/lib/$kbuild/tools" "$hdr/tools"
	depmod -b root "$kabi-$a"
done
echo "$kabi" >kabi
touch ".stamp-$kabi"
