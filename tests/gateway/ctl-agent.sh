#!/bin/sh
# Control line of the QEMU gateway image for host-driven tests
# (tests/gateway/powercut.py): with gridmeter.ctl on the kernel command line,
# gridmeter-ctl.service runs this on /dev/ttyS1 once meterd is up. Each line
# received is run by sh; its output goes back followed by "@@rc=N".
set -u
ctl=/dev/ttyS1
[ -c $ctl ] || exit 0
stty -F $ctl raw -echo 115200 || exit 1
exec 3<>$ctl
echo "@@ready" >&3
while IFS= read -r cmd <&3; do
	out=$(sh -c "$cmd" 2>&1 </dev/null)
	rc=$?
	printf '%s\n@@rc=%d\n' "$out" "$rc" >&3
done
