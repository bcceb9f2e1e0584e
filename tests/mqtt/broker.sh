#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Start a private mosquitto for a test: broker.sh DIR PORT USER:PASSWORD...
# Writes DIR/mosquitto.conf, DIR/passwd (mosquitto_passwd), DIR/acl, starts the
# broker in the background with its log in DIR/mosquitto.log, waits until it
# accepts connections and prints its PID. Explicit loopback listener, no
# anonymous clients (mosquitto 2.0 is only anonymous-friendly in its implicit
# local mode, which we never use). ACL: each plug user may write its own
# tele/stat topics and read+write its cmnd topics (Tasmota publishes an empty
# cmnd/<t>/POWER at connect); the user named "bridge" reads tele/stat of every
# plug, writes their cmnd POWER and owns gridmeter/# and homeassistant/#.
# Stop it with: kill "$(cat DIR/mosquitto.pid)".
set -eu
dir=$1 port=$2
shift 2
mkdir -p "$dir"
: >"$dir/passwd"
: >"$dir/acl"
chmod 600 "$dir/passwd"
for up in "$@"; do
	u=${up%%:*} p=${up#*:}
	mosquitto_passwd -b "$dir/passwd" "$u" "$p"
	if [ "$u" = bridge ]; then
		cat >>"$dir/acl" <<ACL
user bridge
topic read tele/+/#
topic read stat/+/#
topic write cmnd/+/POWER
topic write cmnd/+/POWER1
topic write cmnd/+/Status
topic write cmnd/+/TelePeriod
topic readwrite gridmeter/#
topic readwrite homeassistant/#

ACL
	elif [ "$u" = observer ]; then
		printf 'user observer\ntopic read #\n\n' >>"$dir/acl"
	else
		printf 'user %s\ntopic readwrite cmnd/%s/#\ntopic write stat/%s/#\ntopic write tele/%s/#\n\n' \
			"$u" "$u" "$u" "$u" >>"$dir/acl"
	fi
done
# mosquitto drops privileges to "mosquitto" when started as root: let it read the files.
if [ "$(id -u)" -eq 0 ]; then
	chown mosquitto "$dir/passwd" "$dir/acl"
	chmod o+x "$dir"
fi
cat >"$dir/mosquitto.conf" <<CONF
per_listener_settings false
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
listener $port 127.0.0.1
allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl
CONF
mosquitto -c "$dir/mosquitto.conf" </dev/null >/dev/null 2>"$dir/mosquitto.log" &
echo $! >"$dir/mosquitto.pid"
i=0
while ! grep -q "Opening ipv4 listen socket on port $port" "$dir/mosquitto.log" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$(cat "$dir/mosquitto.pid")" 2>/dev/null; then
		echo "broker.sh: mosquitto did not start:" >&2
		cat "$dir/mosquitto.log" >&2
		exit 1
	fi
	sleep 0.1
done
cat "$dir/mosquitto.pid"
