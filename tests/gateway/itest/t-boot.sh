#!/bin/sh
# The image reaches multi-user with no failed unit; report when it got there.
# (is-system-running --wait would wait for this test's own unit.)
i=0
while [ $i -lt 120 ]; do
	others=$(systemctl list-jobs --no-legend --plain 2>/dev/null | grep -v gridmeter-itest)
	[ -z "$others" ] && break
	sleep 1
	i=$((i + 1))
done
[ -z "$others" ] || { echo "jobs still queued after 120 s:"; echo "$others"; exit 1; }
us=$(systemctl show -P ActiveEnterTimestampMonotonic multi-user.target)
echo "multi-user.target reached $((us / 1000000)).$(printf '%03d' $(((us / 1000) % 1000))) s after boot"
systemctl is-active --quiet multi-user.target || { echo "multi-user.target not active"; exit 1; }
failed=$(systemctl --failed --no-legend --plain)
[ -z "$failed" ] || { echo "failed units:"; echo "$failed"; exit 1; }
