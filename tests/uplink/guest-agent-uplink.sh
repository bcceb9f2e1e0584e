#!/bin/sh
# Guest side of the uplink end-to-end test (tests/uplink/e2e.py), run by the
# test initramfs' /init with gm.run=/tests/agent/uplink.
#
# The host appended a small cpio with /gm-e2e/: meterd.conf, uplink.key
# (this meter's provisioning), bus.conf, replay.txt and for A
# operators.keys (the operators' public keys for signed commands). This script starts
# a system bus and meterd (its journal goes to the console; /run/gm-meterd
# starts it again), notes when its clock becomes trusted (/run/gm-clock),
# then serves the host on the control line /dev/ttyS3: each line received
# is run by sh, its output sent back followed by "@@rc=N".
# "exit" stops meterd and ends the test. ttyS1 is the serial line to the
# neighbour meter, ttyS2 the SIM900 modem (sim900sim on the host).
set -u
ctl=/dev/ttyS3
fail() { echo "# uplink-agent: $*"; exit 1; }

[ -d /gm-e2e ] || { echo "# uplink-agent: no /gm-e2e (not started by tests/uplink/e2e.py)"; exit 4; }
modprobe gm_link || fail "modprobe gm_link"
mkdir -p /etc/gridmeter /var/lib/gridmeter /run/gridmeter /run/dbus
cp /gm-e2e/meterd.conf /etc/gridmeter/meterd.conf
cp /gm-e2e/uplink.key /etc/gridmeter/uplink.key
chmod 600 /etc/gridmeter/uplink.key
# the operators' public keys, provisioned at enrolment (A only)
[ ! -f /gm-e2e/operators.keys ] || cp /gm-e2e/operators.keys /etc/gridmeter/operators.keys
dbus-daemon --config-file=/gm-e2e/bus.conf --fork --nopidfile || fail "dbus-daemon"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
meterd -c /etc/gridmeter/meterd.conf --check || fail "meterd --check"

# Start meterd in the background (here, and by the host to restart it):
# its journal on the console, stdin from /dev/null and not holding the
# control line, so that a command that starts it returns; then wait until
# it is on the bus.
cat >/run/gm-meterd <<'EOF2'
#!/bin/sh
meterd -c /etc/gridmeter/meterd.conf </dev/null >/dev/console 2>&1 3<&- &
i=0
while ! busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 \
		org.gridmeter.Uplink1 MeterId >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 300 ] || { echo "meterd did not come up"; exit 1; }
	sleep 0.1
done
EOF2
chmod 755 /run/gm-meterd
t0="$(cut -d' ' -f1 /proc/uptime) $(date +%s)"
/run/gm-meterd || fail "meterd did not come up"

# When the clock becomes trusted (set from the town server's time):
# "UPTIME_AT_START CLOCK_AT_START UPTIME_AT_TRUST" in /run/gm-clock (seconds).
(
	i=0
	while [ $i -lt 600 ]; do
		if busctl get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 \
			org.gridmeter.Meter1 ClockTrusted 2>/dev/null | grep -q true; then
			echo "$t0 $(cut -d' ' -f1 /proc/uptime)" >/run/gm-clock
			break
		fi
		i=$((i + 1))
		sleep 0.2
	done
) </dev/null >/dev/null 2>&1 &

stty -F $ctl raw -echo 115200 || fail "stty $ctl"
exec 3<>$ctl
echo "@@ready" >&3
while IFS= read -r cmd <&3; do
	case "$cmd" in
	exit) break ;;
	esac
	out=$(sh -c "$cmd" 2>&1)
	rc=$?
	printf '%s\n@@rc=%d\n' "$out" "$rc" >&3
done
killall meterd 2>/dev/null
i=0
while pidof meterd >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "@@bye" >&3
exit 0
