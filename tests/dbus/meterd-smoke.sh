#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Smoke test of a running meterd on the system bus, with busctl only: for the
# gateway image (the lead's integration tests) or a private bus
# (DBUS_SYSTEM_BUS_ADDRESS). Prints TAP; exits non-zero on any failure.
#
#   tests/dbus/meterd-smoke.sh [--unprivileged-user USER] [--no-disconnect]
#
# --unprivileged-user: a user outside gridmeter-technicians (default nobody),
#   whose method calls must be refused with AccessDenied (needs root).
# --no-disconnect: skip the Disconnect/ArmReconnect/ConfirmReconnect cycle
#   (it opens the main relay for a moment).
set -u
user=nobody
cycle=1
while [ $# -gt 0 ]; do
	case $1 in
	--unprivileged-user) user=$2; shift 2 ;;
	--no-disconnect) cycle=0; shift ;;
	*) echo "usage: $0 [--unprivileged-user USER] [--no-disconnect]" >&2; exit 2 ;;
	esac
done

M="org.gridmeter.Meter1 /org/gridmeter/Meter1 org.gridmeter.Meter1"
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
check() { # description, then a command that must succeed
	d=$1; shift
	if out=$("$@" 2>&1); then ok "$d"; else not_ok "$d" "$out"; fi
}
expect_error() { # description, error text, command that must fail with it
	d=$1 want=$2; shift 2
	out=$("$@" 2>&1) && { not_ok "$d" "succeeded: $out"; return; }
	case $out in *"$want"*) ok "$d" ;; *) not_ok "$d" "$out" ;; esac
}
prop() { busctl --system get-property $M "$1" 2>/dev/null | cut -d' ' -f2- | tr -d '"'; }

check "meterd owns org.gridmeter.Meter1" busctl --system status org.gridmeter.Meter1
v=$(prop Voltage)
case $v in ''|*[!0-9]*) not_ok "Voltage is a number of mV" "got '$v'" ;; *) ok "Voltage is $v mV" ;; esac
check "registers readable" busctl --system get-property $M ImportEnergy ExportEnergy RenewableEnergy PriceSoFar
src=$(prop ClockSource)
trusted=$(prop ClockTrusted)
case "$src/$trusted" in
system/true|kernel/true|town/true|none/false) ok "clock: source $src, trusted $trusted" ;;
*) not_ok "ClockSource and ClockTrusted agree" "ClockSource '$src', ClockTrusted '$trusted'" ;;
esac
check "ClockOffset readable" busctl --system get-property $M ClockOffset
check "load profile of the last day" busctl --system call $M GetLoadProfile xx $(( $(date +%s) - 86400 )) "$(date +%s)"
expect_error "GetLoadProfile(10, 5) is InvalidArgs naming 'from'" "from:" \
	busctl --system call $M GetLoadProfile xx 10 5
expect_error "a malformed tariff is InvalidArgs naming the key" "tariff['type']" \
	busctl --system call $M SetTariff 'a{sv}' 1 type s bogus
st=$(busctl --system call $M SelfTest 2>&1)
case $st in "bas true"*) ok "self-test passed" ;; *) not_ok "self-test passed" "$st" ;; esac

if [ "$(id -u)" = 0 ] && id "$user" >/dev/null 2>&1; then
	expect_error "$user may not disconnect (AccessDenied)" "ccess denied" \
		runuser -u "$user" -- busctl --system call $M Disconnect
	v=$(runuser -u "$user" -- busctl --system get-property $M MainRelay 2>&1)
	case $v in 's "'*) ok "$user may read properties" ;; *) not_ok "$user may read properties" "$v" ;; esac
else
	echo "# SKIP unprivileged checks (not root or no user $user)"
fi

if [ $cycle = 1 ]; then
	check "Disconnect" busctl --system call $M Disconnect
	[ "$(prop MainRelay)" = open ] && ok "main relay open" || not_ok "main relay open"
	check "ArmReconnect" busctl --system call $M ArmReconnect
	[ "$(prop MainRelay)" = open ] && ok "armed: relay still open" || not_ok "armed: relay still open"
	[ "$(prop RemoteState)" = armed ] && ok "RemoteState armed" || not_ok "RemoteState armed"
	check "ConfirmReconnect" busctl --system call $M ConfirmReconnect
	[ "$(prop RemoteState)" = connected ] && ok "RemoteState connected" || not_ok "RemoteState connected"
fi

echo "1..$n"
echo "# meterd smoke: $((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
