#!/bin/sh
# End to end: kill -9 of meterd under a steady load. systemd restarts it,
# and its registers lose at most the energy of the last sample period
# (P x sample_interval_ms, computed here: meterd's runtime snapshot is
# rewritten every sample; with the driver's energy counters the loss is
# expected to be zero) and are never corrupted: no store-corrupt alarm, no
# value beyond what the load can have delivered, still counting afterwards.
. ./gm-lib.sh
ready
trap restore_sim EXIT
V=230 I=20 PF=1.0
P=$(calc "print $V * $I * $PF")				# W
period=$(calc "print $(conf meter sample_interval_ms) / 1000")	# s
BOUND=$(calc "printf \"%.1f\", $P * $period / 3.6")		# mWh
simw sim_ch1_phase_mdeg "$(pf_phase $PF)"
simw sim_ch0_amp_milli "$(v_amp $V)"
simw sim_ch1_amp_milli "$(i_amp $I)"
wait_sim 2

# The register and the simulated time of a sample: the register changes
# between two reads; the sample was taken between the simulated time before
# the read that still saw the old value and the one after the read that saw
# the new one: its midpoint, +- half that window.
sample() {
	e=$(prop ImportEnergy) i=0
	cb=$(sim sim_conversions)
	while :; do
		[ $i -ge 100 ] && fail "ImportEnergy stuck at $e"
		n=$(prop ImportEnergy)
		ca=$(sim sim_conversions)
		[ "$n" != "$e" ] && break
		cb=$ca
		sleep 0.05; i=$((i + 1))
	done
	echo "$n $(( (cb + ca) / 2 )) $(( (ca - cb) / 2 ))"
}
set -- $(sample); e0=$1 c0=$2 w0=$3
pid0=$(systemctl show -p MainPID --value meterd)
nr0=$(systemctl show -p NRestarts --value meterd)
kill -9 "$pid0" || fail "kill -9 $pid0"
echo "killed meterd (pid $pid0) at $e0 mWh, load $P W"
i=0
while [ "$(systemctl show -p MainPID --value meterd)" = "$pid0" ] ||
	[ "$(systemctl show -p MainPID --value meterd)" = 0 ] || ! systemctl is-active --quiet meterd; do
	[ $i -ge 600 ] && fail "meterd was not restarted"
	sleep 0.1; i=$((i + 1))
done
wait_meterd
nr1=$(systemctl show -p NRestarts --value meterd)
[ "$nr1" = $((nr0 + 1)) ] || fail "NRestarts $nr1, was $nr0"
set -- $(sample); e1=$1 c1=$2 w1=$3
pid1=$(systemctl show -p MainPID --value meterd)
# what the load delivered meanwhile; the sample times are known to +- w0, w1,
# the driver's power to 2 %
dt=$(calc "print ($c1 - $c0) / $RATE")
delivered=$(calc "printf \"%.1f\", $P * $dt / 3.6")
slack=$(calc "printf \"%.1f\", $P * ($w0 + $w1) / $RATE / 3.6 + $delivered * 0.02")
lost=$(calc "printf \"%.1f\", $e0 + $delivered - $e1")
echo "restarted as pid $pid1: $e1 mWh after $dt s simulated; $delivered mWh delivered meanwhile"
echo "energy lost by the kill: $lost mWh (bound: $BOUND mWh = $P W x $period s, +$slack mWh measurement slack)"
calc "exit !($lost <= $BOUND + $slack)" || fail "lost more than the last sample period"
calc "exit !($lost >= -$slack)" || fail "registers gained $(calc "print -$lost") mWh: corrupted"
case $(prop Alarms) in *store-corrupt*|*store-error*) fail "alarms: $(prop Alarms)" ;; esac
journalctl -b -u meterd --no-pager -o cat | grep -i corrupt && fail "the journal reports corruption"
set -- $(sample); e2=$1
[ "$e2" -gt "$e1" ] || fail "ImportEnergy not counting after the restart ($e1 -> $e2)"
busctl --system call $M GetLoadProfile xx $(( $(date +%s) - 86400 )) "$(date +%s)" >/dev/null ||
	fail "GetLoadProfile after the restart"
echo "registers intact: no store alarm, still counting ($e2 mWh)"
