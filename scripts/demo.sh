#!/bin/bash
# make demo: the whole system on this machine (Documentation/demo.md).
#
#   scripts/demo.sh            build, start everything, print the pages and
#                              logins; Ctrl-C stops everything
#   scripts/demo.sh code LOGIN the current TOTP code of a demo operator
#
# Started here, all as real programs, all state under build/demo/ (made
# afresh on every run):
#   - a PostgreSQL 15 cluster (scripts/pg-cluster.sh, as nobody when root);
#   - maind (the main server) and maind-portal (the utility portal), with
#     demo customers, operators and their web logins;
#   - townd (the town server, reporting its hours to maind), with four
#     simulated meters (simfleet) that reported last month and today, and
#     last month billed;
#   - sim900sim, the simulated SIM900 modem of the gateway, on a unix
#     socket that QEMU makes the gateway's second serial port (ttyS1);
#     it dials townd over TCP as the real modem would over GPRS;
#   - the gateway image (scripts/mk-gateway-image.sh) under QEMU (TCG):
#     meterd on the simulated CT line, meterweb (the in-home dashboard, its
#     port forwarded to the host), its meterd.conf and uplink key for this
#     run given through fw_cfg (tests/gateway/demo).
# GM_DEMO_GATEWAY=no starts the servers only (no image, no QEMU).
# Ports (GM_DEMO_DASH_PORT, GM_DEMO_PORTAL_PORT, GM_DEMO_TOWN_PORT,
# GM_DEMO_MAIN_PORT): 8080 the dashboard, 8090 the portal, 17700 townd,
# 17800 maind; the pages listen on this machine's loopback only.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
D=build/demo
BIN=build/x86_64/bin
DASH_PORT=${GM_DEMO_DASH_PORT:-8080}
PORTAL_PORT=${GM_DEMO_PORTAL_PORT:-8090}
TOWN_PORT=${GM_DEMO_TOWN_PORT:-17700}
MAIN_PORT=${GM_DEMO_MAIN_PORT:-17800}
TOWN=1
GW_METER=101            # the gateway in QEMU
FLEET_FIRST=201 FLEET_COUNT=4 FLEET_SEED=14
DEMO_PW=${GM_DEMO_PASSWORD:-sunny-meter-42}   # the household's (mk-gateway-image.sh)
PORTAL_PW=demo-portal-14                       # every portal login's
GATEWAY=${GM_DEMO_GATEWAY:-yes}

# TOTP (RFC 6238: SHA-1, 6 digits, 30 s) of a base32 secret
totp() {
	python3 - "$1" <<'PY'
import base64, hmac, struct, sys, time
s = sys.argv[1].strip().upper()
k = base64.b32decode(s + "=" * (-len(s) % 8))
h = hmac.new(k, struct.pack(">Q", int(time.time()) // 30), "sha1").digest()
o = h[-1] & 15
print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000))
PY
}
if [ "${1:-}" = code ]; then
	f=$D/operators/${2:-alice}.totp
	[ -f "$f" ] || { echo "demo: no $f (is make demo running?)" >&2; exit 1; }
	echo "$(totp "$(cat "$f")")  (operator ${2:-alice}; valid for $((30 - $(date +%s) % 30)) s more)"
	exit 0
fi

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$DASH_PORT" "$PORTAL_PORT" "$TOWN_PORT" "$MAIN_PORT"; do
	port_free "$p" || die "port $p is in use on this machine (another make demo? GM_DEMO_*_PORT choose others)"
done

# ---- stopping: every process this script started, by its pid -------------
PIDS=()
QEMU_PID=
stopping=0
cleanup() {
	[ $stopping -eq 0 ] || return 0
	stopping=1
	trap '' INT TERM
	echo
	say "stopping"
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		# an orderly shutdown of the gateway (ACPI power button), then QEMU
		timeout 5 python3 - "$D/qmp.sock" <<'PY' || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()                                    # the greeting
for cmd in ("qmp_capabilities", "system_powerdown"):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while "return" not in json.loads(f.readline()):
        pass                                    # events before the answer
PY
		say "the gateway is shutting down"
		for _ in $(seq 1 150); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.2; done
		kill "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	exec 7>&- 2>/dev/null || true	# sim900sim ends when its control line closes
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ ! -d "$D/pg" ] || scripts/pg-cluster.sh stop "$D/pg" || true
	say "stopped; logs in $D/"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: in the background, its output in D/NAME.log
start() {
	local name=$1
	shift
	setsid "$@" </dev/null >"$D/$name.log" 2>&1 &
	PIDS+=($!)
}
# wait_log NAME TEXT SECONDS
wait_log() {
	for _ in $(seq 1 $(($3 * 10))); do
		grep -q "$2" "$D/$1.log" 2>/dev/null && return 0
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$D/$1.log" >&2
	die "$1 did not start (no '$2' in $D/$1.log)"
}

# ---- build --------------------------------------------------------------
t0=$(date +%s)
kabi=$(scripts/kver.sh)
if [ "$GATEWAY" = yes ]; then
	say "building the gateway image and the servers (a few minutes the first time)"
	scripts/mk-gateway-image.sh "$kabi" x86_64
fi
make -s --no-print-directory ARCH=x86_64 userspace >build/demo-build.log 2>&1 ||
	{ tail -n 30 build/demo-build.log; die "the programs do not build"; }
for p in maind maind-portal mainctl townd townctl sim900sim simfleet meterweb; do
	[ -x "$BIN/$p" ] || die "$BIN/$p was not built"
done
[ "$GATEWAY" != yes ] || [ -f build/gateway/gateway-x86_64.img ] || die "no gateway image"

[ ! -d "$D/pg" ] || scripts/pg-cluster.sh stop "$D/pg" >/dev/null 2>&1 || true
rm -rf "$D"
mkdir -p "$D/operators"
chmod 700 "$D/operators"

# ---- the main server ------------------------------------------------------
say "PostgreSQL cluster in $D/pg"
# (its own session: the terminal's Ctrl-C reaches only this script, which
# stops everything in order)
conninfo=$(setsid scripts/pg-cluster.sh start "$D/pg" | tail -n1)
MAIN_PK=$("$BIN/mainctl" keygen "$D/maind.key")
cat >"$D/maind.conf" <<EOF
# make demo: the main server (scripts/demo.sh)
[server]
listen = 127.0.0.1:$MAIN_PORT
key_file = $top/$D/maind.key
conninfo = $conninfo

[portal]
listen = 127.0.0.1:$PORTAL_PORT
EOF
mainctl() { "$BIN/mainctl" -c "$D/maind.conf" "$@"; }
mainctl schema >/dev/null

# ---- the town server ------------------------------------------------------
cat >"$D/townd.conf" <<EOF
# make demo: the town server (scripts/demo.sh)
[server]
listen = 127.0.0.1:$TOWN_PORT
database = $top/$D/town.db
key_file = $top/$D/townd.key
EOF
townctl() { "$BIN/townctl" -c "$D/townd.conf" "$@"; }
townctl init-key >/dev/null
TOWN_PK=$(townctl pubkey)
mainctl add-town "$TOWN" "$TOWN_PK" "Demo town" >/dev/null

# Operators: their signing keys (for the portal's commands: the key file is
# chosen in the browser) and the key set the town and the meter check.
for op in alice bob; do
	mainctl op-keygen "$op" "$D/operators/$op.key" >"$D/operators/$op.keyset-line" 2>/dev/null
	mainctl op-add "$op" "$(awk '{ print $2 }' "$D/operators/$op.keyset-line")" \
		"$op@demo.invalid" >/dev/null
done
mainctl op-keyset >"$D/operators.keys"
cat >>"$D/townd.conf" <<EOF

[upstream]
address = 127.0.0.1:$MAIN_PORT
main_public_key = $MAIN_PK
town_id = $TOWN
outbox = $top/$D/upstream
interval = 5

[commands]
operator_keys = $top/$D/operators.keys
EOF

# The meters: the gateway (a key file made here, the factory path of
# Documentation/meterd.md) and four simulated meters (simfleet's keys).
townctl provision "$GW_METER" "The gateway in QEMU, 1 Demo Street" >"$D/uplink.key"
chmod 600 "$D/uplink.key"
"$BIN/simfleet" keys "$FLEET_SEED" "$FLEET_FIRST" "$FLEET_COUNT" |
	awk '{ printf "%s %s Demo Street %d\n", $1, $2, $1 - 190 }' >"$D/fleet.list"
townctl add-list "$D/fleet.list" >/dev/null

# Tariff, customers, web logins
ym_prev=$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m)
mainctl tariff add tou Europe/London "$ym_prev-01" type=tou currency=GBP \
	"rates=peak:35.5, offpeak:12.25, shoulder:24.0" \
	"weekday=00:00-07:00 offpeak, 07:00-16:00 shoulder, 16:00-19:00 peak, 19:00-24:00 shoulder" \
	"weekend=00:00-24:00 offpeak" standing_charge=60.0 feed_in=15.0 >/dev/null
printf '%s\n' "$PORTAL_PW" >"$D/portal.password"
chmod 600 "$D/portal.password"
customer() { # METER LOGIN NAME ADDRESS: the customer, their web login
	local id
	id=$(mainctl customer add "$TOWN" "$1" "$3" tariff=tou medium=email "email=$2@demo.invalid" \
		"address=$4" since="$ym_prev-01" | sed -n 's/^customer \([0-9]*\):.*/\1/p')
	[ -n "$id" ] || die "customer add for meter $1 printed no id"
	mainctl web-user add "$2" customer "$id" --password-file "$D/portal.password" >/dev/null
	CUSTOMERS+=("$2 (customer $id, meter $1: $3)")
}
CUSTOMERS=()
customer "$GW_METER" house "The Gateway household" "1 Demo Street"
customer 201 ada "Ada Lovelace" "11 Demo Street"
customer 202 grace "Grace Hopper" "12 Demo Street"
customer 204 mary "Mary Somerville" "14 Demo Street"
for op in alice bob; do
	mainctl web-user add "$op" operator "$op" --password-file "$D/portal.password" \
		>"$D/operators/$op.web-user"
	sed -n 's/^TOTP secret: *//p' "$D/operators/$op.web-user" >"$D/operators/$op.totp"
	[ -s "$D/operators/$op.totp" ] || die "web-user add $op printed no TOTP secret"
done

# ---- start the servers -------------------------------------------------------
say "starting maind, maind-portal, townd"
start maind "$BIN/maind" -c "$D/maind.conf"
wait_log maind "maind: ready" 20
start maind-portal "$BIN/maind-portal" -c "$D/maind.conf"
for _ in $(seq 1 100); do port_free "$PORTAL_PORT" || break; sleep 0.1; done
port_free "$PORTAL_PORT" && { tail -n 20 "$D/maind-portal.log"; die "maind-portal does not listen"; }
start townd "$BIN/townd" -c "$D/townd.conf"
wait_log townd "townd: ready" 20

# The four simulated meters' closed hours (the last 512: simfleet's limit,
# about three weeks back into last month), through townd to maind; then last
# month's bills (its hours before that estimated, as maind bills a gap).
hours=$(python3 - "$ym_prev" <<'PY'
import calendar, sys, time
y, m = map(int, sys.argv[1].split("-"))
first = calendar.timegm((y, m, 1, 0, 0, 0))
now = int(time.time())
last = (now - 3600 - 300) // 3600 * 3600       # closed for the town
hours = list(range(first, last + 1, 3600))[-512:]   # simfleet takes 512 at most
print(",".join(str(h) for h in hours))
PY
)
n_hours=$(echo "$hours" | tr ',' '\n' | wc -l)
since=$(date -u -d "@${hours%%,*}" +%Y-%m-%dT%H:%MZ)
say "the simulated meters report $n_hours hours each (since $since)"
"$BIN/simfleet" run --town "127.0.0.1:$TOWN_PORT" --town-pk "$TOWN_PK" --seed "$FLEET_SEED" \
	--first "$FLEET_FIRST" --count "$FLEET_COUNT" --hours "$hours" --pace-ms 1 --timeout 300 \
	--record "$D/fleet.rec" >"$D/simfleet.log" 2>&1 || { tail -n 5 "$D/simfleet.log"; die "simfleet failed"; }
psql=/usr/lib/postgresql/15/bin/psql
[ -x "$psql" ] || psql=psql
want=$((n_hours * FLEET_COUNT))
for i in $(seq 1 240); do
	got=$("$psql" "$conninfo" -XAtqc "SELECT count(DISTINCT (meter, hour)) FROM meter_hours WHERE town = $TOWN")
	[ "$got" -ge "$want" ] && break
	[ $((i % 20)) -eq 0 ] && say "maind holds $got of $want meter-hours"
	sleep 0.5
done
[ "$got" -ge "$want" ] || say "maind holds $got of $want meter-hours (the rest still on its way)"
mainctl bill run "$ym_prev" | tail -n 1 | sed 's/^/demo: /'

# ---- the gateway ---------------------------------------------------------------
# The gateway: its meterd.conf (the image's, plus the uplink through the
# modem and the operators' keys), the modem, QEMU; back once the dashboard
# answers through the forwarded port.
start_gateway() {
	{
		cat tests/gateway/meterd.conf
		cat <<EOF

# make demo: reporting to the town server through the simulated SIM900
[uplink]
credentials = /etc/gridmeter/keys/uplink.key
detail = interval

[modem]
device = /dev/ttyS1
apn = internet.demo
server = 127.0.0.1:$TOWN_PORT

[commands]
operator_keys = /etc/gridmeter/operators.keys
town = $TOWN
EOF
	} >"$D/meterd.conf"
	mkfifo "$D/sim900.ctl"
	exec 7<>"$D/sim900.ctl"
	setsid "$BIN/sim900sim" --unix "$D/modem.sock" --guard-ms 100 <"$D/sim900.ctl" >"$D/sim900sim.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 50); do [ -S "$D/modem.sock" ] && break; sleep 0.1; done
	[ -S "$D/modem.sock" ] || die "sim900sim did not make $D/modem.sock"

	say "booting the gateway image under QEMU (TCG, about 30 s); console log $D/console.log"
	setsid qemu-system-x86_64 -M q35 -cpu max -accel tcg -m 1024 -smp 2 \
		-kernel build/gateway/gateway-x86_64.vmlinuz -initrd build/gateway/gateway-x86_64.initrd \
		-append "console=ttyS0 loglevel=4 tsc=reliable root=LABEL=gmroot gridmeter.demo" \
		-drive file=build/gateway/gateway-x86_64.img,format=raw,if=virtio,snapshot=on \
		-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$DASH_PORT-:8080" \
		-fw_cfg "name=opt/org.gridmeter/meterd.conf,file=$D/meterd.conf" \
		-fw_cfg "name=opt/org.gridmeter/uplink.key,file=$D/uplink.key" \
		-fw_cfg "name=opt/org.gridmeter/operators.keys,file=$D/operators.keys" \
		-chardev "socket,id=con,path=$D/console.sock,server=on,wait=off,logfile=$D/console.log" \
		-serial chardev:con \
		-chardev "socket,id=mdm,path=$D/modem.sock,reconnect=1" -serial chardev:mdm \
		-qmp "unix:$D/qmp.sock,server=on,wait=off" \
		-display none -monitor none </dev/null >"$D/qemu.log" 2>&1 &
	QEMU_PID=$!

	# the dashboard answers once meterweb runs in the guest
	for _ in $(seq 1 300); do
		kill -0 "$QEMU_PID" 2>/dev/null || { tail -n 20 "$D/qemu.log" "$D/console.log"; die "QEMU stopped"; }
		if (exec 3<>"/dev/tcp/127.0.0.1/$DASH_PORT" && printf 'GET /login HTTP/1.0\r\n\r\n' >&3 &&
			timeout 2 head -c 12 <&3 | grep -q 'HTTP/1.. 200') 2>/dev/null; then
			return 0
		fi
		sleep 1
	done
	say "the dashboard did not answer within 300 s: see $D/console.log"
}
[ "$GATEWAY" != yes ] || start_gateway

cat <<EOF

================================================================================
 gridmeter demo: up in $(($(date +%s) - t0)) s

 In-home dashboard (the gateway in QEMU, meterweb):
$(if [ "$GATEWAY" = yes ]; then
	echo "   http://127.0.0.1:$DASH_PORT/"
	echo "   household password: $DEMO_PW"
	echo '   (a guest code: sign in, then "Guest codes")'
else
	echo "   not started (GM_DEMO_GATEWAY=$GATEWAY)"
fi)

 Utility portal (maind-portal):
   http://127.0.0.1:$PORTAL_PORT/
   every login's password: $PORTAL_PW
   customers: $(printf '%s\n' "${CUSTOMERS[@]}" | sed '2,$s/^/              /')
   operators: alice, bob (second factor: TOTP, secrets in $D/operators/NAME.totp;
              the current code: scripts/demo.sh code alice)
              signing keys for commands (chosen in the browser):
              $top/$D/operators/alice.key, .../bob.key

 The gateway reports through its simulated SIM900 to townd ($D/townd.log), which
 sends closed hours to maind; the simulated meters 201-204 reported since
 $since and $ym_prev is billed. The gateway's console: $D/console.log
 (socat -,raw,echo=0 UNIX-CONNECT:$D/console.sock for a shell; root logs in).
 Tools: $BIN/mainctl -c $D/maind.conf ...   $BIN/townctl -c $D/townd.conf ...

 Ctrl-C stops everything.
================================================================================
EOF
if [ -n "$QEMU_PID" ]; then
	wait "$QEMU_PID" || true
	QEMU_PID=
	say "the gateway stopped"
else
	while :; do sleep 3600 & wait $! || true; done
fi
