#!/bin/sh
# meterd runs under systemd on the simulated sensor and relays, and a
# technician's busctl reads and calls work (tests/dbus/meterd-smoke.sh:
# properties, InvalidArgs, AccessDenied for an unprivileged user, the
# disconnect / arm / confirm cycle).
[ -x /usr/sbin/meterd ] || { echo "meterd is not in this image (gridmeter-meterd)"; exit 1; }
i=0
while ! systemctl is-active --quiet meterd && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
if ! systemctl is-active --quiet meterd; then
	systemctl status --no-pager meterd
	journalctl -b -u meterd --no-pager | tail -n 30
	exit 1
fi
v=$(busctl --system get-property org.gridmeter.Meter1 /org/gridmeter/Meter1 \
	org.gridmeter.Meter1 Voltage)
echo "live voltage: $v"
./meterd-smoke.sh --unprivileged-user nobody
