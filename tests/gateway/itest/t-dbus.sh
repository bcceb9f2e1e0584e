#!/bin/sh
# The system bus is up and busctl reaches systemd and the bus itself.
set -e
busctl --system --no-legend list | grep -q '^org.freedesktop.systemd1 '
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId | grep -q '^s "'
v=$(busctl get-property org.freedesktop.systemd1 /org/freedesktop/systemd1 \
	org.freedesktop.systemd1.Manager Version)
echo "systemd: $v"
