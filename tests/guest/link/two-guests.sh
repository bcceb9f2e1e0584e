#!/bin/sh
# Two x86_64 QEMU guests joined by a serial chardev (their ttyS1), each
# running gm_link: guest "a" is a cut-off meter, guest "b" forwards its
# frames to its uplink and the server's answers back
# (tests/guest/link/link_test_twoguest.c).
#
#   tests/guest/link/two-guests.sh     after the modules, guest tests and
#                                      the initramfs were built for x86_64
#                                      (make guest-check ARCH=x86_64 does)
# Logs: build/x86_64/twoguest-a.log, twoguest-b.log. Exit non-zero unless
# both guests pass.
set -eu
top=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$top"
kabi=$(scripts/kver.sh)
out=build/x86_64
initrd=$out/initramfs.cpio.gz
[ -f "$initrd" ] || { echo "two-guests: no $initrd (run make guest-check ARCH=x86_64)" >&2; exit 1; }
sock=$(mktemp -u /tmp/gmlink-serial.XXXXXX)
tmo=${GM_GUEST_TIMEOUT:-300}
args="gm.tests=link_test_twoguest gmlink.tty=/dev/ttyS1"

GM_QEMU_EXTRA="-chardev socket,id=gml,path=$sock,server=on,wait=off -serial chardev:gml" \
	scripts/guest-run.sh x86_64 "$kabi" "$initrd" "$out/twoguest-b.log" "$tmo" \
	$args gmlink.peer=b &
pb=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
GM_QEMU_EXTRA="-chardev socket,id=gml,path=$sock,reconnect=1 -serial chardev:gml" \
	scripts/guest-run.sh x86_64 "$kabi" "$initrd" "$out/twoguest-a.log" "$tmo" \
	$args gmlink.peer=a &
pa=$!
ra=0 rb=0
wait $pa || ra=$?
wait $pb || rb=$?
rm -f "$sock"
rc=0
scripts/ktap-check.py "$out/twoguest-a.log" guest-a || rc=1
scripts/ktap-check.py "$out/twoguest-b.log" guest-b || rc=1
[ $ra -eq 0 ] && [ $rb -eq 0 ] || rc=1
grep -h "SKIP" "$out/twoguest-a.log" "$out/twoguest-b.log" && rc=1
exit $rc
