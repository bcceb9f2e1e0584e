#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The dashboard's browser test (tests/web/dashboard.mjs) with its fixture: a
# private dbus-daemon, meterd with the replay sensor, --test-hooks and a
# seeded 31-day load profile (15-minute intervals) and an external load
# "washer" (a smart plug, reported by tests/web/dashboard_plug.c as the MQTT
# bridge would) and a gas sensor "kitchen_gas" (below), and meterweb on a free port with a household password set by
# "meterweb passwd".
#   tests/web/dashboard-run.sh            (GM_SCREENSHOTS=DIR for screenshots)
# The last line is "dashboard: N passed, N failed, N skipped".
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
B=${B:-build}
bin=$B/x86_64/bin
seed=$B/host/web/dashboard_seed
plug=$B/host/web/dashboard_plug
for f in "$bin/meterd" "$bin/meterweb" "$seed" "$plug" "$B/npm/.stamp"; do
	if [ ! -e "$f" ]; then
		echo "dashboard-run: $f missing (make dashboard-tools web-npm)" >&2
		echo "dashboard: 0 passed, 1 failed, 0 skipped"
		exit 1
	fi
done
mkdir -p "$B/web"
dir=$(mktemp -d "$top/$B/web/dash.XXXXXX")
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	[ -n "${GM_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT INT TERM
export TZ=${GM_TZ:-Europe/London}
mkdir -p "$dir/state" "$dir/run"
cat >"$dir/bus.conf" <<EOC
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><listen>unix:path=$dir/bus</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/>
<allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>
EOC
dbus-daemon --nofork --nopidfile --print-address=3 --config-file "$dir/bus.conf" 3>"$dir/bus.addr" 2>"$dir/dbus.log" &
pids="$pids $!"
for i in $(seq 50); do [ -s "$dir/bus.addr" ] && break; sleep 0.1; done
DBUS_SYSTEM_BUS_ADDRESS=$(head -n1 "$dir/bus.addr")
export DBUS_SYSTEM_BUS_ADDRESS

now=$(date +%s)
"$seed" "$dir/state" "$dir/run" 900 31 "$now" >"$dir/seed.log"
cat >"$dir/meterd.conf" <<EOC
[meter]
timezone = $TZ
interval = 900
sample_interval_ms = 100
clock = system
[sensors]
backend = replay
[protection]
reclose_delay = 1
lockout_trips = 5
lockout_window = 60
[relays]
backend = fake
[load.heater]
line = 6
load = 3000
priority = 2
[load.washer]
switch = external
load = 1800
priority = 1
stale_after = 120
[sensor.kitchen_gas]
device = gm-sim-adc
channel = in_voltage2_raw
kind = gas
alarm_above = 1200
alarm_clear_below = 1000
hold = 0
warmup = 0
period = 1
[allocation]
grid_allocation = 8000
restore_delay = 2
[tariff]
type = tou
currency = GBP
rates = peak:35.5, offpeak:12.25, shoulder:24
weekday = 00:00-07:00 offpeak, 07:00-16:00 shoulder, 16:00-19:00 peak, 19:00-24:00 shoulder
weekend = 00:00-24:00 offpeak
standing_charge = 60
feed_in = 15
[store]
state_dir = $dir/state
runtime_dir = $dir/run
[dbus]
property_interval_ms = 500
EOC
# The gas sensor: meterd reads IIO sysfs only (/sys/bus/iio/devices/*/name).
# Where a private mount namespace is allowed (root), meterd runs in one with a
# small tree of this directory on /sys: the MCP3008's gm-sim-adc with CH2 raw
# and the shared scale, which the browser test rewrites in place (same
# length: meterd keeps the file open and preads it each period). Elsewhere
# the sensor's device is missing and it shows as "fault".
iio=$dir/sys/bus/iio/devices/iio:device0
mkdir -p "$iio"
echo gm-sim-adc >"$iio/name"
echo 3.222656250 >"$iio/in_voltage_scale"	# 3300 mV / 1024, as the MCP3008 driver gives
echo 100 >"$iio/in_voltage2_raw"
gas_raw=""
if unshare -m --propagation private sh -c 'mount --bind "$1" /sys' sh "$dir/sys" 2>/dev/null; then
	gas_raw=$iio/in_voltage2_raw
	unshare -m --propagation private sh -c 'mount --bind "$1" /sys && shift && exec "$@"' sh "$dir/sys" \
		"$bin/meterd" -c "$dir/meterd.conf" --test-hooks 2>"$dir/meterd.log" &
else
	"$bin/meterd" -c "$dir/meterd.conf" --test-hooks 2>"$dir/meterd.log" &
fi
pids="$pids $!"
for i in $(seq 100); do
	busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus NameHasOwner s org.gridmeter.Meter1 2>/dev/null | grep -q true && break
	sleep 0.1
done

password="correct horse battery"
cat >"$dir/meterweb.conf" <<EOC
[web]
listen = 127.0.0.1:0
password_file = $dir/meterweb.passwd
guest_code_minutes = 0.2
guest_session_minutes = 10
login_burst = 5
login_window = 60
timezone = $TZ
EOC
printf '%s\n' "$password" | "$bin/meterweb" passwd -c "$dir/meterweb.conf" 2>>"$dir/meterweb.log"
"$bin/meterweb" -c "$dir/meterweb.conf" >"$dir/meterweb.out" 2>>"$dir/meterweb.log" &
mwpid=$!
pids="$pids $mwpid"
port=""
for i in $(seq 100); do
	port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$dir/meterweb.out" 2>/dev/null | head -n1)
	[ -n "$port" ] && break
	sleep 0.1
done
if [ -z "$port" ]; then
	cat "$dir/meterweb.log" >&2
	echo "dashboard: 0 passed, 1 failed, 0 skipped"
	exit 1
fi
set +e
GM_DASH_URL="http://127.0.0.1:$port" GM_DASH_PASSWORD="$password" GM_MW_PID=$mwpid \
	GM_DASH_GUEST_S=12 GM_DASH_BURST=5 GM_DASH_DIR="$dir" \
	GM_DASH_PLUG=washer GM_DASH_PLUG_BIN="$top/$plug" GM_DASH_GAS_RAW="$gas_raw" \
	${GM_DASH_RUN:-node tests/web/dashboard.mjs}
rc=$?
if [ $rc -ne 0 ] && [ -z "${GM_KEEP:-}" ]; then
	echo "# meterweb log:"; sed 's/^/# /' "$dir/meterweb.log" | tail -20
	echo "# meterd log:"; sed 's/^/# /' "$dir/meterd.log" | tail -20
fi
exit $rc
