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

# meterweb, the in-home dashboard (Documentation/dashboard.md): a D-Bus
# client of meterd serving the household's page on the home network, under
# its own user (gridmeter-web) and hardened unit, enabled. Its configuration
# and the household's password hash (`meterweb passwd`) are the installer's:
# the QEMU demo image gets a demo password (mk-gateway-image.sh).
if [ -x "$root/usr/bin/meterweb" ] && [ -f agent/web/meterweb.service ]; then
	mv "$root/usr/bin/meterweb" "$root/usr/sbin/meterweb"
	install -D -m 644 agent/web/meterweb.service "$root/usr/lib/systemd/system/meterweb.service"
	if [ -f agent/web/meterweb.sysusers.conf ]; then
		install -D -m 644 agent/web/meterweb.sysusers.conf "$root/usr/lib/sysusers.d/meterweb.conf"
	elif ! grep -qs '^u *gridmeter-web ' "$root/usr/lib/sysusers.d/"*.conf; then
		mkdir -p "$root/usr/lib/sysusers.d"
		printf '%s
' '# /usr/lib/sysusers.d/meterweb.conf' \
			'u gridmeter-web - "gridmeter in-home dashboard" -' \
			>"$root/usr/lib/sysusers.d/meterweb.conf"
	fi
	for f in agent/web/*.dbus.conf; do
		[ -f "$f" ] || continue
		b=${f##*/}
		install -D -m 644 "$f" "$root/usr/share/dbus-1/system.d/${b%.dbus.conf}.conf"
	done
	[ -f agent/web/meterweb.conf.example ] &&
		install -D -m 644 agent/web/meterweb.conf.example \
			"$root/usr/share/doc/gridmeter/meterweb.conf.example"
	[ -f Documentation/dashboard.md ] &&
		install -D -m 644 Documentation/dashboard.md "$root/usr/share/doc/gridmeter/dashboard.md"
	systemd-sysusers --root="$(realpath "$root")"
	mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
	ln -sf /usr/lib/systemd/system/meterweb.service \
		"$root/etc/systemd/system/multi-user.target.wants/meterweb.service"
fi

# gm-mqttd, the MQTT bridge (Documentation/mqtt.md): its own user gm-mqtt in
# group gridmeter-bridge, a hardened unit, enabled but started only once
# /etc/gridmeter/mqtt.conf exists (ConditionPathExists): the broker, its
# password (/etc/gridmeter/mqtt-password, root 0600, passed as a credential)
# and the plugs are the installer's.
if [ -x "$root/usr/bin/gm-mqttd" ] && [ -f agent/bridge/gm-mqttd.service ]; then
	mv "$root/usr/bin/gm-mqttd" "$root/usr/sbin/gm-mqttd"
	install -D -m 644 agent/bridge/gm-mqttd.service "$root/usr/lib/systemd/system/gm-mqttd.service"
	install -D -m 644 agent/bridge/gm-mqttd.sysusers.conf "$root/usr/lib/sysusers.d/gm-mqttd.conf"
	install -D -m 644 agent/bridge/mqtt.conf.example \
		"$root/usr/share/doc/gridmeter/mqtt.conf.example"
	install -D -m 644 Documentation/mqtt.md "$root/usr/share/doc/gridmeter/mqtt.md"
	systemd-sysusers --root="$(realpath "$root")"
	mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
	ln -sf /usr/lib/systemd/system/gm-mqttd.service \
		"$root/etc/systemd/system/multi-user.target.wants/gm-mqttd.service"
fi

# The QEMU image has no real sensor: the simulated ADC and GPIO chip
# (tests/kmod/gm_sim_adc) stand in for the MCP3008 and the relay header,
# and meterd's configuration names their lines.
if [ -e "$root/lib/modules/"*/extra/gm_sim_adc.ko ]; then
	install -D -m 644 tests/gateway/modules-load.conf "$root/etc/modules-load.d/gridmeter-sim.conf"
	install -D -m 644 tests/gateway/meterd.conf "$root/etc/gridmeter/meterd.conf"
fi
