#!/bin/sh
# Install the project's system files into a gateway root filesystem:
#   install-gateway-files.sh ROOT
# The locations are those of Documentation/meterd.md ("Running"); the same
# list serves a Raspberry Pi install (Documentation/install-pi.md).
# Called by mk-gateway-image.sh after the programs are in ROOT/usr/bin.
set -eu
root=$1
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ -f agent/system/meterd.service ]; then
	[ -x "$root/usr/bin/meterd" ] && mv "$root/usr/bin/meterd" "$root/usr/sbin/meterd"
	install -D -m 644 agent/system/meterd.service "$root/usr/lib/systemd/system/meterd.service"
	install -D -m 644 agent/system/gridmeter.sysusers.conf "$root/usr/lib/sysusers.d/gridmeter.conf"
	install -D -m 644 agent/system/90-gridmeter.rules "$root/usr/lib/udev/rules.d/90-gridmeter.rules"
	install -D -m 644 agent/system/org.gridmeter.Meter1.conf \
		"$root/usr/share/dbus-1/system.d/org.gridmeter.Meter1.conf"
	install -D -m 644 agent/system/org.gridmeter.meter.policy \
		"$root/usr/share/polkit-1/actions/org.gridmeter.meter.policy"
	install -D -m 644 agent/system/50-gridmeter.rules "$root/usr/share/polkit-1/rules.d/50-gridmeter.rules"
	install -D -m 644 Documentation/meterd.md "$root/usr/share/doc/gridmeter/meterd.md"
	# The user and groups exist before udev first applies its rules.
	systemd-sysusers --root="$(realpath "$root")"
	mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
	ln -sf /usr/lib/systemd/system/meterd.service \
		"$root/etc/systemd/system/multi-user.target.wants/meterd.service"
fi

# The QEMU image has no real sensor: the simulated ADC and GPIO chip
# (tests/kmod/gm_sim_adc) stand in for the MCP3008 and the relay header,
# and meterd's configuration names their lines.
if [ -e "$root/lib/modules/"*/extra/gm_sim_adc.ko ]; then
	install -D -m 644 tests/gateway/modules-load.conf "$root/etc/modules-load.d/gridmeter-sim.conf"
	install -D -m 644 tests/gateway/meterd.conf "$root/etc/gridmeter/meterd.conf"
fi
