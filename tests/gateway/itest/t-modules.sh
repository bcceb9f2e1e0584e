#!/bin/sh
# Every project module in the image was built for the running kernel and
# loads with modprobe (dependencies resolved by depmod).
dir=/lib/modules/$(uname -r)/extra
set -- "$dir"/*.ko
[ -e "$1" ] || { echo "no project modules in $dir"; exit 4; }
rc=0
for ko in "$@"; do
	name=$(basename "$ko" .ko)
	vm=$(modinfo -F vermagic "$ko" | cut -d' ' -f1)
	if [ "$vm" != "$(uname -r)" ]; then
		echo "$name: vermagic $vm, kernel $(uname -r)"; rc=1; continue
	fi
	modprobe "$name" || { echo "$name: modprobe failed"; rc=1; continue; }
	[ -d "/sys/module/$(echo "$name" | tr - _)" ] || { echo "$name: not in /sys/module"; rc=1; }
done
exit $rc
