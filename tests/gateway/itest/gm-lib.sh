#!/bin/sh
# Shared helpers of the meterd end-to-end tests (t-meterd-*.sh), sourced.
# Their own variables start with _gm_: the tests use short names (v, i, pf).
# The simulated front end is gm_sim_adc (IIO device "gm-sim-adc", its sim_*
# attributes, tests/guest/ct/README) with the calibration of its software
# node: voltage ratio 300, CT 2000:1 on 22 ohm. Expectations are computed
# here from the waveform the test writes, never read back from meterd.
M="org.gridmeter.Meter1 /org/gridmeter/Meter1 org.gridmeter.Meter1"
CONF=/etc/gridmeter/meterd.conf

SIM=
for d in /sys/bus/iio/devices/iio:device*; do
	[ "$(cat "$d/name" 2>/dev/null)" = gm-sim-adc ] && SIM=$d
done

prop() { busctl --system get-property $M "$1" 2>/dev/null | cut -d' ' -f2- | tr -d '"'; }
call() { busctl --system call $M "$@"; }
sim() { cat "$SIM/$1"; }
simw() { echo "$2" >"$SIM/$1" || { echo "# cannot write $2 to $1"; exit 1; }; }
calc() { awk "BEGIN { $1 }"; }
conf() { # section key: the value in meterd.conf
	awk -v s="[$1]" -v k="$2" '
		/^\[/ { in_s = ($0 == s); next }
		in_s && $1 == k && $2 == "=" { sub(/^[^=]*= */, ""); print; exit }' "$CONF"
}
fail() { echo "FAIL: $*"; exit 1; }

# Conversions per simulated second; volts and amps per ADC code.
RATE=$(sim sim_conv_rate_hz 2>/dev/null)
SCALE=$(sim in_voltage_scale 2>/dev/null)	# mV per code
VPC=$(calc "print $SCALE / 1000 * 300")
APC=$(calc "print $SCALE / 1000 / 22 * 2000")

# Peak amplitudes in milli-codes of V rms volts and I rms amps.
v_amp() { calc "printf \"%d\", $1 * sqrt(2) / $VPC * 1000 + 0.5"; }
i_amp() { calc "printf \"%d\", $1 * sqrt(2) / $APC * 1000 + 0.5"; }
# Current phase (millidegrees) of a signed power factor: lagging for import,
# the current reversed for export.
pf_phase() { calc "pf = $1; a = atan2(sqrt(1 - pf * pf), pf); printf \"%d\", -a * 180000 / 3.14159265358979"; }

# Wait until meterd is active and owns its name (60 s).
wait_meterd() {
	_gm_n=0
	while [ $_gm_n -lt 60 ]; do
		systemctl is-active --quiet meterd && busctl --system status org.gridmeter.Meter1 \
			>/dev/null 2>&1 && return 0
		sleep 1
		_gm_n=$((_gm_n + 1))
	done
	systemctl status --no-pager meterd
	fail "meterd is not running"
}

# wait_prop NAME VALUE SECONDS: until the property reads VALUE.
wait_prop() {
	_gm_n=0
	while [ "$(prop "$1")" != "$2" ]; do
		[ $_gm_n -ge $(($3 * 10)) ] && return 1
		sleep 0.1
		_gm_n=$((_gm_n + 1))
	done
	return 0
}

# Wait until the simulated time has advanced by $1 seconds (at most 120 s).
wait_sim() {
	until_conv=$(calc "printf \"%d\", $(sim sim_conversions) + $1 * $RATE")
	_gm_n=0
	while [ "$(sim sim_conversions)" -lt "$until_conv" ]; do
		[ $_gm_n -ge 1200 ] && fail "simulated time stalled at $(sim sim_conversions)"
		sleep 0.1
		_gm_n=$((_gm_n + 1))
	done
}

# Save the waveform now; restore_sim puts it back (call from a trap).
SAVED=
for a in sim_ch0_amp_milli sim_ch1_amp_milli sim_ch1_phase_mdeg sim_ch0_step_amp_milli \
		sim_ch1_step_amp_milli; do
	SAVED="$SAVED $a=$(sim $a 2>/dev/null)"
done
restore_sim() {
	echo 0 >"$SIM/sim_step_after"	# no step pending or in force
	for kv in $SAVED; do echo "${kv#*=}" >"$SIM/${kv%%=*}"; done
}

# The main relay's line and level of "closed" (active high unless configured).
MAIN_LINE=$(conf relays main_line)
MAIN_CLOSED=1
[ "$(conf relays main_active_low)" = true ] && MAIN_CLOSED=0
line_level() { echo $(( $(sim sim_gpio_levels) >> $1 & 1 )); }

# Every test starts with the supply connected and protection normal.
ready() {
	wait_meterd
	[ -n "$SIM" ] || fail "no gm-sim-adc IIO device"
	wait_prop ProtectionState normal 90 || fail "protection state $(prop ProtectionState)"
	if [ "$(prop RemoteState)" != connected ]; then
		call ArmReconnect >/dev/null 2>&1
		call ConfirmReconnect >/dev/null 2>&1
	fi
	wait_prop MainRelay closed 10 || fail "main relay $(prop MainRelay)"
}
