#!/bin/sh
# End to end: a load profile played through the simulated ADC gives meterd's
# ImportEnergy / ExportEnergy registers and PriceSoFar as computed here from
# the waveform (energy = sum V * I * PF * t over the simulated time of each
# step; price per the tariff window of meterd.conf in force), within 2 %.
. ./gm-lib.sh
TOL=0.02
ready
trap restore_sim EXIT

# Load steps: V rms, I rms, power factor (< 0: export), simulated seconds.
PROFILE="230 40 1.0 8
240 25 0.8 6
225 30 -0.9 6
232 12 0.5 4"

# The tariff rate (minor units per kWh) of the window in force now, local time.
tariff_rate() {
	set -- $(TZ=$(conf meter timezone) date +'%u %H:%M')
	sched=weekday
	[ "$1" -ge 6 ] && sched=weekend
	awk -v now="$2" -v win="$(conf tariff "$sched")" -v rates="$(conf tariff rates)" 'BEGIN {
		n = split(win, w, /, */)
		for (k = 1; k <= n; k++) {
			split(w[k], f, /[- ]+/)
			if (now >= f[1] && (now < f[2] || f[2] == "24:00")) name = f[3]
		}
		n = split(rates, r, /, */)
		for (k = 1; k <= n; k++) { split(r[k], f, ":"); if (f[1] == name) print name, f[2] }
	}'
}

# idle line: no energy while the baseline is taken
simw sim_ch1_amp_milli 0
sleep 3
set -- $(tariff_rate); period0=$1 rate0=$2
day0=$(TZ=$(conf meter timezone) date +%F)
bill0=$(prop BillingPeriodStart)
imp0=$(prop ImportEnergy) exp0=$(prop ExportEnergy) price0=$(prop PriceSoFar)
echo "tariff window now: $period0 at $rate0 per kWh (meterd says $(prop CurrentTariffPeriod))"

# Every write to the waveform is recorded with the simulated time just
# before and just after it ("V I PF before after step"): the power in force
# from the write on is exactly what the simulated ADC played, including the
# few conversions between the three writes of a step. The write happened
# somewhere in [before, after]: the expectation takes the midpoint, and the
# energy of half that window at the difference of the two powers is
# measurement slack (a loaded machine stretches the window).
steps=/tmp/steps.$$
v0=230 i0=0 k=0
: >"$steps"
write() { # attribute value V I PF step: the write and its window
	cb=$(sim sim_conversions)
	simw "$1" "$2"
	echo "$3 $4 $5 $cb $(sim sim_conversions) $6" >>"$steps"
}
while read -r v i pf dur; do
	k=$((k + 1))
	write sim_ch1_phase_mdeg "$(pf_phase "$pf")" "$v0" "$i0" "$pf" $k
	write sim_ch0_amp_milli "$(v_amp "$v")" "$v" "$i0" "$pf" $k
	write sim_ch1_amp_milli "$(i_amp "$i")" "$v" "$i" "$pf" $k
	wait_sim "$dur"
	v0=$v i0=$i
done <<EOP
$PROFILE
EOP
write sim_ch1_amp_milli 0 0 0 0 end

# energy in mWh (1 Ws = 1/3.6 mWh) of each record until the next one, and
# the slack of the write windows
awk -v rate="$RATE" '
	{ c1 = ($4 + $5) / 2 }
	NR > 1 { e = v * i * pf * (c1 - c) / rate / 3.6
		 if (e > 0) im += e; else ex -= e
		 d = $1 * $2 * $3 - v * i * pf; if (d < 0) d = -d
		 slack += d * ($5 - $4) / 2 / rate / 3.6
		 se[k] += e; sd[k] += (c1 - c) / rate; sl[k] = v " V " i " A PF " pf }
	{ v = $1; i = $2; pf = $3; c = c1; k = $6 }
	END { for (j = 1; j in se; j++)
		printf "# step %s for %.3f s: %.1f mWh\n", sl[j], sd[j], se[j]
	      printf "# the writes took %.1f mWh of measurement slack\n", slack
	      printf "%.1f %.1f %.1f\n", im, ex, slack }' "$steps" >"$steps.out"
grep '^#' "$steps.out" | sed 's/^# //'
read -r exp_imp exp_exp wslack <<EOS
$(grep -v '^#' "$steps.out")
EOS
rm -f "$steps" "$steps.out"

sleep 3	# two samples of meterd after the last cycle
imp1=$(prop ImportEnergy) exp1=$(prop ExportEnergy) price1=$(prop PriceSoFar)
set -- $(tariff_rate); period1=$1 rate1=$2
day1=$(TZ=$(conf meter timezone) date +%F)
dimp=$((imp1 - imp0)) dexp=$((exp1 - exp0)) dprice=$((price1 - price0))
echo "import: meterd $dimp mWh, expected $exp_imp mWh"
echo "export: meterd $dexp mWh, expected $exp_exp mWh"
rc=0
within() { # measured expected tolerance
	calc "d = $1 - $2; if (d < 0) d = -d; exit !(d <= $3)"
}
within "$dimp" "$exp_imp" "$exp_imp * $TOL + 2 + $wslack" || { echo "FAIL: import energy"; rc=1; }
within "$dexp" "$exp_exp" "$exp_exp * $TOL + 2 + $wslack" || { echo "FAIL: export energy"; rc=1; }

# price: import at the window's rate, export credited at feed_in, a standing
# charge for a local day started meanwhile (milli-minor: minor/kWh * mWh / 1000)
feed=$(conf tariff feed_in) standing=$(conf tariff standing_charge)
if [ "$(prop BillingPeriodStart)" != "$bill0" ]; then
	echo "# a billing period started during the test: price not checked"
else
	days=0
	[ "$day1" != "$day0" ] && days=1
	lo=$(calc "r = $rate0 < $rate1 ? $rate0 : $rate1; printf \"%.1f\", $exp_imp * r / 1000 - $exp_exp * $feed / 1000 + $days * $standing * 1000")
	hi=$(calc "r = $rate0 > $rate1 ? $rate0 : $rate1; printf \"%.1f\", $exp_imp * r / 1000 - $exp_exp * $feed / 1000 + $days * $standing * 1000")
	echo "price so far: meterd +$dprice milli-minor, expected $lo..$hi ($period0..$period1)"
	# 2 % of the charges, and a milli-minor of rounding
	slack=$(calc "r = $rate0 > $rate1 ? $rate0 : $rate1; print ($exp_imp * r + $exp_exp * $feed) / 1000 * $TOL + $wslack * (r + $feed) / 1000 + 1")
	calc "exit !($dprice >= $lo - $slack && $dprice <= $hi + $slack)" ||
		{ echo "FAIL: price so far"; rc=1; }
	# and exactly what meterd's own registers cost (rounding only)
	if [ "$period0" = "$period1" ] && [ $days = 0 ]; then
		own=$(calc "printf \"%.1f\", $dimp * $rate0 / 1000 - $dexp * $feed / 1000")
		within "$dprice" "$own" 2 || { echo "FAIL: price of meterd's registers $own"; rc=1; }
	fi
fi
exit $rc
