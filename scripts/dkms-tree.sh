#!/bin/sh
# Make the DKMS source tree of gridmeter's kernel modules:
#   dkms-tree.sh DEST
# DEST (e.g. debian/gridmeter-dkms/usr/src/gridmeter-0.16.0) gets the
# production modules only, self-contained:
#   Kbuild                      the top Kbuild without the test fixtures
#                               (tests/kmod) and without tests/include
#   drivers/                    gridmeter_ct (iio/ct), gm_link (tty), gm_kcompat.h
#   include/uapi/gridmeter/     the user ABI (link.h)
#   include/gridmeter/link_test.h  the link layer's test ioctls, which
#                               gm_ldisc.c compiles in (from tests/include)
# dkms.conf is added by dh_dkms (debian/gridmeter-dkms.dkms). Called by
# debian/rules; Documentation/packaging.md.
set -eu
dest=$1
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

rm -rf "$dest"
mkdir -p "$dest/include/gridmeter"
# the tracked files only (never a build product lying in drivers/)
git ls-files drivers include/uapi 2>/dev/null >"$dest/.files" ||
	find drivers include/uapi -type f >"$dest/.files"
[ -s "$dest/.files" ] || find drivers include/uapi -type f >"$dest/.files"
while read -r f; do
	install -D -m 644 "$f" "$dest/$f"
done <"$dest/.files"
rm -f "$dest/.files"
install -m 644 tests/include/gridmeter/link_test.h "$dest/include/gridmeter/link_test.h"

# The top Kbuild, with its kernel-feature tests (the same for 6.1 and
# 6.12), minus what belongs to the tests.
sed -e 's| *-I\$(src)/tests/include||' -e '/^obj-y *+= *tests\//d' \
	-e 's|^# Out-of-tree modules of gridmeter.*|# gridmeter kernel modules, DKMS tree (made by scripts/dkms-tree.sh).|' \
	-e '/^# tree under build\/ARCH\/kmod/d' \
	Kbuild >"$dest/Kbuild"
if grep -n 'tests' "$dest/Kbuild"; then
	echo "dkms-tree: the Kbuild above still names tests/" >&2
	exit 1
fi
# Every header a driver includes must be in the tree.
for h in $(grep -ho '#include [<"][^>"]*[>"]' $(find "$dest/drivers" -name '*.[ch]') |
	sed 's/#include [<"]\(.*\)[>"]/\1/' | grep '^gridmeter/' | sort -u); do
	[ -f "$dest/include/$h" ] || [ -f "$dest/include/uapi/$h" ] ||
		{ echo "dkms-tree: $h is included but not in the tree" >&2; exit 1; }
done
