#!/bin/sh
# The project's modules as the packages left them: DKMS (gridmeter-dkms)
# built and installed gridmeter_ct and gm_link for the running kernel into
# updates/dkms, `dkms status` says so, and they and the test's own fixture
# (gm_sim_adc in extra/, added by the image build, never by a package) were
# built for the running kernel and load with modprobe (dependencies from
# depmod).
krel=$(uname -r)
rc=0
st=$(dkms status -m gridmeter -k "$krel" 2>/dev/null)
echo "dkms status: $st"
echo "$st" | grep -q "^gridmeter/.*, $krel, .*: installed" ||
	{ echo "DKMS has not installed gridmeter for $krel"; rc=1; }
for name in gridmeter_ct gm_link gm_sim_adc; do
	case $name in
	gm_sim_adc) dir=/lib/modules/$krel/extra ;;
	*) dir=/lib/modules/$krel/updates/dkms ;;
	esac
	# compressed as the kernel's own modules are (6.12: .ko.xz)
	ko=$(ls "$dir/$name.ko"* 2>/dev/null | head -n1)
	[ -f "$ko" ] || { echo "$name: no $dir/$name.ko*"; rc=1; continue; }
	# modinfo by name: the file modprobe would load is the one above
	[ "$(modinfo -n "$name")" = "$ko" ] ||
		{ echo "$name: modprobe would load $(modinfo -n "$name"), not $ko"; rc=1; }
	vm=$(modinfo -F vermagic "$ko" | cut -d' ' -f1)
	if [ "$vm" != "$krel" ]; then
		echo "$name: vermagic $vm, kernel $krel"; rc=1; continue
	fi
	modprobe "$name" || { echo "$name: modprobe failed"; rc=1; continue; }
	[ -d "/sys/module/$name" ] || { echo "$name: not in /sys/module"; rc=1; }
done
exit $rc
