#!/bin/sh
# Make sure this x86_64 machine runs arm64 programs (qemu-user-static through
# binfmt_misc), as building the arm64 gateway image needs: mmdebstrap runs the
# maintainer scripts of arm64 packages, and dpkg -i and DKMS run inside the
# arm64 root file system. Idempotent; as root.
#   binfmt-arm64.sh
# Mounts binfmt_misc when it is not mounted, registers qemu-aarch64 from
# qemu-user-static's /usr/lib/binfmt.d/qemu-aarch64.conf when it is not
# registered (flags F: the interpreter is opened now, so it works inside a
# chroot), and ends with arch-test's verdict.
set -eu
bm=/proc/sys/fs/binfmt_misc
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
[ -e "$bm/register" ] || mount -t binfmt_misc binfmt_misc "$bm"
if [ ! -e "$bm/qemu-aarch64" ]; then
	[ -f "$conf" ] || { echo "binfmt-arm64: no $conf (install qemu-user-static: scripts/deps.sh)" >&2; exit 1; }
	if command -v update-binfmts >/dev/null 2>&1 && [ -e /usr/share/binfmts/qemu-aarch64 ]; then
		update-binfmts --enable qemu-aarch64
	else
		grep -v '^#' "$conf" >"$bm/register"
	fi
fi
[ "$(head -n1 "$bm/qemu-aarch64")" = enabled ] || echo 1 >"$bm/qemu-aarch64"
grep -q '^flags:.*F' "$bm/qemu-aarch64" ||
	{ echo "binfmt-arm64: qemu-aarch64 is registered without flag F (chroots cannot use it)" >&2; exit 1; }
arch-test arm64 >/dev/null ||
	{ echo "binfmt-arm64: arch-test cannot run an arm64 program here" >&2; exit 1; }
