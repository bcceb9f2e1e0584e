# Running programs inside an image root file system (sourced, POSIX sh):
#   . scripts/image-chroot.sh
#   chroot_enter ROOT     mount /proc, /sys and a private /dev in ROOT and
#                         keep services from starting (policy-rc.d)
#   in_root CMD...        run CMD inside ROOT (the one chroot_enter named)
#   chroot_leave          undo chroot_enter (idempotent; callers put it in
#                         their EXIT trap, so an error or a signal leaves no
#                         mount behind)
#   clear_root DIR        remove a root file system left by an earlier run,
#                         unmounting what a killed run left mounted first
# /dev is a tmpfs of its own with the few nodes package scripts and DKMS
# use (null, zero, full, random, urandom, tty), never the host's /dev: a
# chroot's rm -rf /dev/x cannot reach the host's devices. arm64 roots run
# through qemu-user-static (scripts/binfmt-arm64.sh).

_gm_chroot=

chroot_enter() {
	_gm_chroot=$(realpath "$1")
	mkdir -p "$_gm_chroot/proc" "$_gm_chroot/sys" "$_gm_chroot/dev"
	mount -t proc proc "$_gm_chroot/proc"
	mount -t sysfs sysfs "$_gm_chroot/sys"
	mount -t tmpfs -o mode=755,size=16m gmdev "$_gm_chroot/dev"
	for _gm_n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
		mknod -m 666 "$_gm_chroot/dev/${_gm_n%%:*}" c "$(echo "$_gm_n" | cut -d: -f2)" "${_gm_n##*:}"
	done
	mkdir -p "$_gm_chroot/dev/pts" "$_gm_chroot/dev/shm"
	ln -s /proc/self/fd "$_gm_chroot/dev/fd"
	# Debian's way to keep maintainer scripts from starting services in
	# a root file system that is not running (invoke-rc.d, deb-systemd-invoke).
	printf '#!/bin/sh\nexit 101\n' >"$_gm_chroot/usr/sbin/policy-rc.d"
	chmod 755 "$_gm_chroot/usr/sbin/policy-rc.d"
}

in_root() {
	LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		chroot "$_gm_chroot" "$@"
}

chroot_leave() {
	[ -n "$_gm_chroot" ] || return 0
	rm -f "$_gm_chroot/usr/sbin/policy-rc.d"
	for _gm_m in dev sys proc; do
		mountpoint -q "$_gm_chroot/$_gm_m" && umount -l "$_gm_chroot/$_gm_m"
	done
	_gm_chroot=
	return 0
}

clear_root() {
	[ -e "$1" ] || return 0
	_gm_d=$(realpath "$1")
	# innermost first
	findmnt -rn -o TARGET | grep -F "$_gm_d/" | sort -r | while read -r _gm_m; do
		umount -l "$_gm_m"
	done
	# never across a file system boundary, should a mount remain anyway
	rm -rf --one-file-system "$_gm_d"
}
