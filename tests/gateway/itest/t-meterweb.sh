#!/bin/bash
# meterweb, the in-home dashboard, in the booted gateway image: it runs
# under its hardened unit (its own user, no capabilities, no new
# privileges, a seccomp filter: read from the running process, not only from
# the unit file), serves the login page, refuses a wrong password, and after
# the household's login (the demo password mk-gateway-image.sh hashed with
# `meterweb passwd`) its /live stream carries the voltage the CT driver
# measures on the simulated line: the value now, then a step of the
# simulated voltage seen in the stream. Expectations come from the waveform
# written to gm_sim_adc (gm-lib.sh), never from meterweb.
# The client is bash's /dev/tcp speaking HTTP/1.0 (the image has no curl).
# Prints meterweb's memory (VmRSS, VmHWM) for Documentation/dashboard.md.
cd "$(dirname "$0")" || exit 1
[ -x /usr/sbin/meterweb ] || { echo "meterweb is not in this image (gridmeter-web)"; exit 1; }
. ./gm-lib.sh
PORT=8080
PW=$(cat meterweb.password 2>/dev/null) || fail "no demo password (meterweb.password)"
W=$(mktemp -d)
trap 'restore_sim; rm -rf "$W"' EXIT

# http METHOD PATH OUTFILE [BODY] [COOKIE] [SECONDS]: the raw response
# (status line, headers, body) in OUTFILE; reads until the server closes
# or SECONDS (default 10) pass.
http() {
	exec 3<>"/dev/tcp/127.0.0.1/$PORT" || return 1
	{
		printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\n' "$1" "$2" "$PORT"
		printf 'Origin: http://127.0.0.1:%s\r\nUser-Agent: gridmeter-itest\r\n' "$PORT"
		[ -n "${5:-}" ] && printf 'Cookie: %s\r\n' "$5"
		if [ "$1" = POST ]; then
			printf 'Content-Type: application/x-www-form-urlencoded\r\n'
			printf 'Content-Length: %s\r\n' "${#4}"
		fi
		printf '\r\n%s' "${4:-}"
	} >&3
	timeout "${6:-10}" cat <&3 >"$3"
	exec 3<&-
	return 0
}
status() { head -n1 "$1" | cut -d' ' -f2; }
header() { tr -d '\r' <"$1" | sed -n '/^$/q; p' | grep -i "^$2:" | head -n1 | cut -d' ' -f2-; }
urlenc() { # application/x-www-form-urlencoded of $1
	local LC_ALL=C s=$1 o='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in [a-zA-Z0-9.~_-]) o+=$c ;; *) o+=$(printf '%%%02X' "'$c") ;; esac
	done
	echo "$o"
}
# the hidden fields of the first form of a page: name=value&...
form_fields() {
	tr -d '\r' <"$1" | grep -o '<input[^>]*type="hidden"[^>]*>' |
		sed -nE 's/.*name="([^"]*)".*value="([^"]*)".*/\1=\2/p' | paste -sd'&'
}

ready
i=0
while ! systemctl is-active --quiet meterweb && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
if ! systemctl is-active --quiet meterweb; then
	systemctl status --no-pager meterweb
	journalctl -b -u meterweb --no-pager | tail -n 30
	fail "meterweb is not running"
fi
pid=$(systemctl show -p MainPID --value meterweb)
[ "${pid:-0}" -gt 0 ] || fail "meterweb has no main PID"

# Hardened: what the kernel says about the running process.
user=$(ps -o user= -p "$pid" | tr -d ' ')
nnp=$(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$pid/status")
capeff=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
capbnd=$(awk '/^CapBnd:/ { print $2 }' "/proc/$pid/status")
seccomp=$(awk '/^Seccomp:/ { print $2 }' "/proc/$pid/status")
echo "meterweb pid $pid: user $user, NoNewPrivs $nnp, CapEff $capeff, CapBnd $capbnd, Seccomp $seccomp"
# (every finding is listed, and the HTTP checks below still run)
bad=
problem() { echo "FAIL: $*"; bad=1; }
[ "$user" = gridmeter-web ] || problem "meterweb runs as $user, not gridmeter-web"
[ "$nnp" = 1 ] || problem "meterweb may gain privileges (NoNewPrivs $nnp)"
[ "$((16#$capeff))" -eq 0 ] || problem "meterweb holds capabilities ($capeff)"
[ "$((16#$capbnd))" -eq 0 ] || problem "meterweb's bounding set is not empty ($capbnd)"
[ "$seccomp" = 2 ] || problem "meterweb has no system call filter (Seccomp $seccomp)"
for p in ProtectSystem=strict ProtectHome=yes PrivateTmp=yes MemoryDenyWriteExecute=yes; do
	v=$(systemctl show -p "${p%%=*}" --value meterweb)
	[ "$v" = "${p#*=}" ] || problem "meterweb's unit has ${p%%=*}=$v, not ${p#*=}"
done
# Nothing writable in its view of the file system, even to root: its
# configuration, its password file, the programs.
for f in /etc/gridmeter /etc/gridmeter/meterweb.passwd /usr/sbin /var/lib; do
	if nsenter -t "$pid" -m test -w "$f" 2>/dev/null; then
		problem "$f is writable in meterweb's mount namespace"
	fi
done

# The login page
http GET /login "$W/login" || fail "no connection to port $PORT"
[ "$(status "$W/login")" = 200 ] || fail "GET /login: $(head -n1 "$W/login")"
grep -q 'type="password"' "$W/login" || fail "the login page has no password field"
for h in Content-Security-Policy X-Content-Type-Options; do
	[ -n "$(header "$W/login" "$h")" ] || fail "GET /login: no $h header"
done
echo "login page: $(wc -c <"$W/login") bytes, CSP $(header "$W/login" Content-Security-Policy)"

# Nothing without a session
http GET / "$W/anon"
case $(status "$W/anon") in
302 | 303 | 401 | 403) ;;
*) fail "GET / without a session: $(head -n1 "$W/anon")" ;;
esac

# A wrong password: no session (whatever cookie comes with the answer
# opens nothing)
extra=$(form_fields "$W/login")
http POST /login "$W/wrong" "password=$(urlenc "x$PW")${extra:+&$extra}"
wcookie=$(header "$W/wrong" Set-Cookie | cut -d';' -f1)
http GET / "$W/wrong-home" "" "$wcookie"
[ "$(status "$W/wrong-home")" != 200 ] || fail "a wrong password opened the page"
echo "wrong password: $(head -n1 "$W/wrong" | tr -d '\r'); then GET /: $(head -n1 "$W/wrong-home" | tr -d '\r')"

# The household's password: a session cookie, the page
http POST /login "$W/right" "password=$(urlenc "$PW")${extra:+&$extra}"
cookie=$(header "$W/right" Set-Cookie | cut -d';' -f1)
[ -n "$cookie" ] || fail "login with the demo password: $(head -n1 "$W/right"), no cookie"
echo "login: $(head -n1 "$W/right" | tr -d '\r'), $(header "$W/right" Set-Cookie | sed 's/=[^;]*/=.../')"
http GET / "$W/home" "" "$cookie"
[ "$(status "$W/home")" = 200 ] || fail "GET / after login: $(head -n1 "$W/home")"
grep -q 'data-live="voltage"' "$W/home" || fail "the page shows no live voltage"

# /live: the voltage the CT driver measures, then a step of it.
# expect_v MV: the stream's voltages in the last capture are within 1 % of MV.
live_v() { # the voltages (mV) of every event in the capture
	tr -d '\r' <"$1" | sed -n 's/^data: *//p' | grep -oE '"voltage": *[0-9]+' | grep -oE '[0-9]+$'
}
v_now=$(sim sim_ch0_amp_milli)
exp_mv=$(calc "printf \"%d\", $v_now / 1000 * $VPC / sqrt(2) * 1000")
http GET /live "$W/live1" "" "$cookie" 5
n=$(live_v "$W/live1" | wc -l)
[ "$n" -ge 2 ] || { head -c 600 "$W/live1"; fail "/live sent $n events with a voltage in 5 s"; }
last=$(live_v "$W/live1" | tail -n1)
echo "/live: $n events in 5 s, voltage $last mV; the simulated line: $exp_mv mV; meterd: $(prop Voltage)"
[ "$(calc "d = $last - $exp_mv; print (d < 0 ? -d : d) * 100 <= $exp_mv")" = 1 ] ||
	fail "/live voltage $last mV, the line is at $exp_mv mV"

# 240 V on the line (under the 253 V protection limit): the stream follows
amp=$(v_amp 240)
simw sim_ch0_amp_milli "$amp"
wait_sim 3
exp2=$(calc "printf \"%d\", $amp / 1000 * $VPC / sqrt(2) * 1000")
http GET /live "$W/live2" "" "$cookie" 6
last2=$(live_v "$W/live2" | tail -n1)
echo "after the step to 240 V: /live voltage ${last2:-none} mV, the line at $exp2 mV"
[ -n "$last2" ] && [ "$(calc "d = $last2 - $exp2; print (d < 0 ? -d : d) * 100 <= $exp2")" = 1 ] ||
	fail "/live did not follow the step: ${last2:-nothing} mV, the line is at $exp2 mV"

# Memory of the daemon on the gateway, with a session and two streams served
echo "# figure: meterweb on the gateway image: $(awk '/^VmRSS:|^VmHWM:/ { printf "%s %s kB ", $1, $2 }' "/proc/$pid/status")"
echo "t-meterweb took $SECONDS s"
[ -z "$bad" ] || exit 1
exit 0
