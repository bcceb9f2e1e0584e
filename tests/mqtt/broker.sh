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
# A user named esp* is an ESPHome node (topic_prefix = its name): it owns
# <name>/#; the bridge reads <p>/status, <p>/switch/+/state and
# <p>/sensor/+/state and writes <p>/switch/+/command of any node.
# Stop it with: kill "$(cat DIR/mosquitto.pid)".
#
# TLS_PORT=N in the environment adds a second listener on 127.0.0.1:N with TLS
# and client certificates (require_certificate, use_identity_as_username: the
# certificate's CN is the user the ACL knows, no password). The certificates
# are made with openssl in DIR/tls: ca.crt/ca.key (the test CA), server.crt
# (CN and SAN localhost, SAN IP 127.0.0.1, for libmosquitto's hostname check),
# <user>.crt/.key for every user given (signed by the CA), and other-ca.crt with
# other-<user>.crt/.key signed by it (a CA the broker does not trust). P-256
# keys, valid 2 days: made afresh by every start, nothing cached or committed.
set -eu
dir=$1 port=$2
shift 2
mkdir -p "$dir"
tls_port=${TLS_PORT:-}
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
topic read +/status
topic read +/switch/+/state
topic read +/sensor/+/state
topic write +/switch/+/command

ACL
	elif [ "$u" = observer ]; then
		printf 'user observer\ntopic read #\n\n' >>"$dir/acl"
	elif [ "${u#esp}" != "$u" ]; then
		printf 'user %s\ntopic readwrite %s/#\n\n' "$u" "$u" >>"$dir/acl"
	else
		printf 'user %s\ntopic readwrite cmnd/%s/#\ntopic write stat/%s/#\ntopic write tele/%s/#\n\n' \
			"$u" "$u" "$u" "$u" >>"$dir/acl"
	fi
done
if [ -n "$tls_port" ]; then
	t=$dir/tls
	mkdir -p "$t"
	key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
	ca() { # NAME CN
		key "$t/$1.key"
		openssl req -x509 -new -key "$t/$1.key" -subj "/CN=$2" -days 2 -out "$t/$1.crt" \
			-addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign
	}
	leaf() { # CA NAME CN EXT
		key "$t/$2.key"
		openssl req -new -key "$t/$2.key" -subj "/CN=$3" -out "$t/$2.csr"
		printf '%s\n' "$4" >"$t/$2.ext"
		openssl x509 -req -in "$t/$2.csr" -CA "$t/$1.crt" -CAkey "$t/$1.key" -CAcreateserial \
			-days 2 -extfile "$t/$2.ext" -out "$t/$2.crt" 2>/dev/null
		rm -f "$t/$2.csr" "$t/$2.ext"
	}
	ca ca "gridmeter test CA"
	ca other-ca "some other CA"
	leaf ca server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
	for up in "$@"; do
		u=${up%%:*}
		leaf ca "$u" "$u" "extendedKeyUsage=clientAuth"
		leaf other-ca "other-$u" "$u" "extendedKeyUsage=clientAuth"
	done
	chmod 644 "$t"/*.crt
	chmod 600 "$t"/*.key
fi
# mosquitto drops privileges to "mosquitto" when started as root: let it read the files.
if [ "$(id -u)" -eq 0 ]; then
	chown mosquitto "$dir/passwd" "$dir/acl"
	[ -n "$tls_port" ] && chown mosquitto "$dir/tls/server.key"
	chmod o+x "$dir"
	[ -n "$tls_port" ] && chmod o+x "$dir/tls"
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
if [ -n "$tls_port" ]; then
	cat >>"$dir/mosquitto.conf" <<CONF
listener $tls_port 127.0.0.1
cafile $dir/tls/ca.crt
certfile $dir/tls/server.crt
keyfile $dir/tls/server.key
require_certificate true
use_identity_as_username true
CONF
fi
mosquitto -c "$dir/mosquitto.conf" </dev/null >/dev/null 2>"$dir/mosquitto.log" &
echo $! >"$dir/mosquitto.pid"
i=0
while ! grep -q "Opening ipv4 listen socket on port $port" "$dir/mosquitto.log" 2>/dev/null ||
	{ [ -n "$tls_port" ] &&
		! grep -q "Opening ipv4 listen socket on port $tls_port" "$dir/mosquitto.log"; }; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$(cat "$dir/mosquitto.pid")" 2>/dev/null; then
		echo "broker.sh: mosquitto did not start:" >&2
		cat "$dir/mosquitto.log" >&2
		exit 1
	fi
	sleep 0.1
done
cat "$dir/mosquitto.pid"
