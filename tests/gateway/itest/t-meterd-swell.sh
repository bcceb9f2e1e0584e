#!/bin/sh
# End to end: a voltage swell above over_voltage, played through the
# simulated ADC, trips the main relay: its sim GPIO line changes, MainRelay
# reads open, the over-voltage alarm appears (property and Alarm signal).
# Prints the trip latency from the swell's first sample to the GPIO change,
# in simulated time (mains cycles, us) and wall-clock time; then the relay
# recloses automatically once the voltage is back to normal.
. ./gm-lib.sh
MAX_CYCLES=10	# the driver needs one full cycle; the trip thread the rest
ready
mon=/tmp/swell-monitor.$$
busctl --system monitor org.gridmeter.Meter1 >"$mon" 2>&1 &
monpid=$!
trap 'restore_sim; kill $monpid 2>/dev/null; rm -f "$mon"' EXIT
sleep 1

[ "$(line_level "$MAIN_LINE")" = $MAIN_CLOSED ] || fail "main relay line $MAIN_LINE not at the closed level"
trips0=$(prop TripCount)
ov=$(conf protection over_voltage)
swell=$(calc "print $ov * 1.05")
freq=$(calc "print $(sim sim_freq_mhz) / 1000")
echo "swell to $swell V rms (over_voltage $ov V), in 50 ms of simulated time"
simw sim_ch0_step_amp_milli "$(v_amp "$swell")"
simw sim_step_after $((RATE / 20))
onset=$(sim sim_step_after)	# absolute: the conversion the swell starts at

wait_prop MainRelay open 10 || fail "MainRelay still $(prop MainRelay) 10 s after the swell"
[ "$(line_level "$MAIN_LINE")" = $((1 - MAIN_CLOSED)) ] || fail "main relay line $MAIN_LINE did not open"
set -- $(sed -n "$((MAIN_LINE + 1))p" "$SIM/sim_gpio_changed")
gconv=$2 gns=$3
sns=$(sim sim_step_ns)
[ "$gconv" -gt "$onset" ] || fail "GPIO change at conversion $gconv is not after the swell ($onset)"
cycles=$(calc "printf \"%.2f\", ($gconv - $onset) / $RATE * $freq")
echo "trip latency: $cycles mains cycles = $(calc "printf \"%d\", ($gconv - $onset) * 1000000 / $RATE") us simulated, $(( (gns - sns) / 1000 )) us wall clock (QEMU TCG)"
calc "exit !($cycles <= $MAX_CYCLES)" || fail "trip took more than $MAX_CYCLES cycles"

i=0
while ! prop Alarms | grep -qw over-voltage; do
	[ $i -ge 50 ] && fail "no over-voltage alarm: $(prop Alarms)"
	sleep 0.1; i=$((i + 1))
done
echo "alarms: $(prop Alarms)"
[ "$(prop ProtectionState)" = tripped ] || fail "protection state $(prop ProtectionState)"
[ "$(prop TripCount)" = $((trips0 + 1)) ] || fail "TripCount $(prop TripCount), was $trips0"
sleep 1
grep -A12 'Member=Alarm' "$mon" | grep -q '"over-voltage"' || { cat "$mon"; fail "no Alarm signal for over-voltage"; }
grep -A12 'Member=RelayChanged' "$mon" | grep -q 'trip' || fail "no RelayChanged signal for the trip"
echo "signals: Alarm over-voltage, RelayChanged main (trip)"

# voltage normal again: automatic reclose after reclose_delay
simw sim_ch0_step_amp_milli -1
delay=$(conf protection reclose_delay)
wait_prop MainRelay closed $((delay + 30)) || fail "no automatic reclose within $((delay + 30)) s"
[ "$(line_level "$MAIN_LINE")" = $MAIN_CLOSED ] || fail "main relay line did not close again"
echo "reclosed automatically ($(prop ProtectionState))"
