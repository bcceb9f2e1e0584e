#!/bin/sh
# The MQTT stage of make check: the simulated Tasmota plug, gm-mqttd and
# meterd against a real mosquitto and a private dbus-daemon, the Home
# Assistant checker, TLS with client certificates (tests/mqtt/*.py). Prints
# "mqtt: N passed, N failed, N skipped" (one count per test program).
set -u
cd "$(dirname "$0")/../.."
make -s --no-print-directory ARCH=x86_64 build/x86_64/bin/gm-mqttd build/x86_64/bin/meterd || {
	echo "mqtt: 0 passed, 1 failed, 0 skipped"
	exit 1
}
p=0 f=0 s=0
bins="build/x86_64/bin/gm-mqttd build/x86_64/bin/meterd"
for t in "tests/mqtt/t_tasmota_sim.py" "tests/mqtt/t_bridge.py $bins" "tests/mqtt/t_ha_check.py" \
	"tests/mqtt/t_tls.py $bins" "tests/mqtt/t_plugs.py $bins"; do
	# shellcheck disable=SC2086
	timeout 180 $t
	case $? in
	0) p=$((p + 1)) ;;
	77) s=$((s + 1)) ;;
	*) f=$((f + 1)); echo "mqtt: $t FAILED" >&2 ;;
	esac
done
echo "mqtt: $p passed, $f failed, $s skipped"
[ $f -eq 0 ]
