#!/bin/sh
# The Debian packages' life cycle, as a Debian user lives it, on this machine
# (x86_64, no QEMU): install, configure, upgrade, remove, purge.
#   tests/packages/lifecycle.sh         (as root; make check stage "packages")
#
# Packages: build/deb/x86_64/*.deb (scripts/mk-debs.sh x86_64, made here when
# missing), and for the upgrade the same tree built again as VERSION+test1
# (kept in build/packages/upgrade while the first build's packages are the
# same). Root file system: Debian 12 minbase with every package the gridmeter
# packages depend on (mmdebstrap, kept as a tarball in build/cache like the
# gateway base), unpacked afresh into build/packages/root for each run and
# used with chroot, /proc, /sys and /dev mounted (unmounted on exit). No
# service runs in a chroot: the maintainer scripts see no systemd (no
# /run/systemd/system), as in an image being built.
#
# Checks (Documentation/packaging.md, "Life cycle"): every package
# configured; users and groups made; units enabled by symlinks (and
# townd.socket not); conffiles registered; meterd.conf root:gridmeter 0640;
# the programs' libraries all resolve; DKMS has the module source (it builds
# the modules only where the headers of the kernel are: the gateway image);
# nothing from tests/ installed. Then a conffile edit, meter data and keys;
# the upgrade keeps them (and the statoverride, the units' symlinks); remove
# keeps conffiles and data, removes programs and the DKMS source; purging the
# gateway packages while the town server's are removed-not-purged keeps the
# shared /var/lib/gridmeter; purging the last removes it, the conffiles, the
# keys, the statoverride and the units' symlinks, and keeps the system users.
# Prints "packages: N passed, N failed, N skipped"; exits 1 on a failure.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
t0=$(date +%s)
[ "$(id -u)" -eq 0 ] || { echo "lifecycle: needs root (chroot, mounts)" >&2; exit 1; }

work=build/packages
root=$work/root
debs=build/deb/x86_64
up=$work/upgrade
mkdir -p "$work" build/cache

P=0 F=0
pass() { P=$((P + 1)); echo "ok    $*"; }
fail() { F=$((F + 1)); echo "FAIL  $*"; }
# check DESCRIPTION COMMAND...: the command's success is the result
check() {
	d=$1
	shift
	if "$@" >"$work/last.out" 2>&1; then pass "$d"; else fail "$d"; sed 's/^/      /' "$work/last.out" | tail -n 15; fi
}
inroot() { chroot "$root" "$@"; }
absent() { [ ! -e "$root$1" ] && [ ! -L "$root$1" ]; }
present() { [ -e "$root$1" ]; }
status() { inroot dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | cut -c1-2; }

mounted() { grep -F " $(realpath "$root")/" /proc/mounts | cut -d' ' -f2 | sort -r; }
umount_all() {
	[ -d "$root" ] || return 0
	for m in $(mounted); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
trap 'umount_all' EXIT INT TERM

# --- the packages -----------------------------------------------------------
if ! ls "$debs"/gridmeter-meterd_*_amd64.deb >/dev/null 2>&1; then
	echo "lifecycle: no packages in $debs: scripts/mk-debs.sh x86_64"
	scripts/mk-debs.sh x86_64 >"$work/mk-debs.log" 2>&1 || { tail -n 30 "$work/mk-debs.log"; exit 1; }
fi
v1=$(dpkg-deb -f "$debs"/gridmeter-meterd_*_amd64.deb Version)
v2=$v1+test1
key=$(cat "$debs"/*.deb | sha256sum | cut -c1-16)
if [ "$(cat "$up/.key" 2>/dev/null)" != "$key" ]; then
	t=$(date +%s)
	GM_DEB_VERSION=$v2 GM_DEB_OUT=$up GM_DEB_NOLINT=1 GM_DEB_NODKMS=1 \
		scripts/mk-debs.sh x86_64 >"$work/upgrade-build.log" 2>&1 ||
		{ tail -n 30 "$work/upgrade-build.log"; exit 1; }
	echo "$key" >"$up/.key"
	echo "lifecycle: built the upgrade $v2 in $(($(date +%s) - t)) s"
fi

# --- the root file system ---------------------------------------------------
# Everything the packages depend on (first alternative, gridmeter's own
# left out), from their control files: a new dependency makes a new root.
deps=$(for d in "$debs"/*.deb; do dpkg-deb -f "$d" Depends; done | tr ',' '\n' |
	sed 's/|.*//; s/(.*)//; s/ //g' | grep -v '^gridmeter-' | grep . | sort -u | tr '\n' ',' | sed 's/,$//')
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
rkey=$( (echo "$deps"; cat "$sources"; echo "pkgtest v1") | sha256sum | cut -c1-16)
base=build/cache/pkgtest-root-$rkey.tar
# a new one when what makes it changed, or a week old (security updates)
find build/cache -maxdepth 1 -name 'pkgtest-root-*.tar' \( ! -name "${base##*/}" -o -mtime +7 \) -delete
if [ ! -f "$base" ]; then
	t=$(date +%s)
	mmdebstrap --quiet --variant=minbase --format=tar --include="$deps" \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
		bookworm "$base.tmp" "$sources" >"$work/mmdebstrap.log" 2>&1 ||
		{ tail -n 30 "$work/mmdebstrap.log"; exit 1; }
	mv "$base.tmp" "$base"
	echo "lifecycle: made the test root $base in $(($(date +%s) - t)) s"
fi
umount_all
[ -z "$(mounted 2>/dev/null)" ] || { echo "lifecycle: $root still has mounts" >&2; exit 1; }
rm -rf --one-file-system "$root"
mkdir -p "$root"
tar -C "$root" -xf "$base"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mkdir -p "$root/tmp/v1" "$root/tmp/v2"
# What the maintainer scripts ask of systemd: they act only where systemd
# runs (/run/systemd/system); deb-systemd-invoke is replaced by a logger
# (systemctl itself ignores requests in a chroot).
mkdir -p "$root/run/systemd/system"
inroot dpkg-divert --quiet --local --rename --add /usr/bin/deb-systemd-invoke
printf '#!/bin/sh\necho "$*" >>/var/log/gm-invoke.log\n' >"$root/usr/bin/deb-systemd-invoke"
chmod 755 "$root/usr/bin/deb-systemd-invoke"
: >"$root/var/log/gm-invoke.log"
mark() { wc -l <"$root/var/log/gm-invoke.log"; }
# invoked SINCE ACTION UNIT: deb-systemd-invoke ACTION ... UNIT since line SINCE
invoked() { tail -n +$(($1 + 1)) "$root/var/log/gm-invoke.log" | grep -Eq "^$2( .*)? '?$3'?( |\$)"; }
# touched SINCE UNIT: any action on UNIT since line SINCE
touched() { tail -n +$(($1 + 1)) "$root/var/log/gm-invoke.log" | grep -q "$2"; }
cp "$debs"/*.deb "$root/tmp/v1/"
cp "$up"/*.deb "$root/tmp/v2/"
pkgs=$(for d in "$debs"/*.deb; do dpkg-deb -f "$d" Package; done | tr '\n' ' ')
echo "lifecycle: $v1 -> $v2: $pkgs"

# --- install ---------------------------------------------------------------
t=$(date +%s)
m=$(mark)
check "install: dpkg -i of every package (dependencies from the root)" \
	inroot dpkg -i /tmp/v1/gridmeter-dkms_"$v1"_all.deb /tmp/v1/gridmeter-meterd_"$v1"_amd64.deb \
	/tmp/v1/gridmeter-web_"$v1"_amd64.deb /tmp/v1/gridmeter-mqtt_"$v1"_amd64.deb \
	/tmp/v1/gridmeter-townd_"$v1"_amd64.deb /tmp/v1/gridmeter-maind_"$v1"_amd64.deb
tinst=$(($(date +%s) - t))
for p in $pkgs; do
	check "install: $p configured (ii)" test "$(status "$p")" = ii
done
for u in gm-mqttd townd maind maind-notify maind-portal; do
	check "install: $u.service started (skipped by its Condition until set up)" invoked "$m" start "$u.service"
done
for u in meterd.service meterweb.service townd.socket; do
	check "install: $u not started (--no-start)" sh -c "! tail -n +$((m + 1)) '$root/var/log/gm-invoke.log' | grep -q '$u'"
done
for u in gridmeter gridmeter-web gm-mqtt townd maind; do
	check "install: system user $u" inroot getent passwd "$u"
done
for g in gridmeter gridmeter-technicians gridmeter-appliances gridmeter-bridge; do
	check "install: group $g" inroot getent group "$g"
done
check "install: gm-mqtt is in gridmeter-bridge (meterd's ReportLoad group)" \
	sh -c "chroot '$root' id -nG gm-mqtt | grep -qw gridmeter-bridge"
wants=/etc/systemd/system/multi-user.target.wants
for u in meterd meterweb gm-mqttd townd maind maind-notify maind-portal; do
	check "install: $u.service enabled ($wants)" test -L "$root$wants/$u.service"
done
check "install: townd.socket shipped, not enabled (optional socket activation)" \
	sh -c "[ -f '$root/lib/systemd/system/townd.socket' ] && [ ! -e '$root/etc/systemd/system/sockets.target.wants/townd.socket' ]"
for c in gridmeter-meterd:/etc/gridmeter/meterd.conf gridmeter-meterd:/etc/modules-load.d/gridmeter-link.conf \
	gridmeter-web:/etc/gridmeter/meterweb.conf gridmeter-townd:/etc/gridmeter/townd.conf; do
	check "install: ${c#*:} is a conffile of ${c%%:*}" \
		sh -c "chroot '$root' dpkg-query -W -f='\${Conffiles}' '${c%%:*}' | grep -q '^ ${c#*:} '"
done
check "install: meterd.conf is root:gridmeter 0640 (it may hold the APN password)" \
	test "$(inroot stat -c '%a %U %G' "/etc/gridmeter/meterd.conf")" = "640 root gridmeter"
check "install: /var/spool/gridmeter made for maind-notify (maind 0750)" \
	test "$(inroot stat -c '%a %U' "/var/spool/gridmeter")" = "750 maind"
bins=$(inroot sh -c 'dpkg -L gridmeter-meterd gridmeter-web gridmeter-mqtt gridmeter-townd gridmeter-maind' |
	grep -E '^/usr/s?bin/.')
for b in $bins; do
	check "install: $b runs here (every library found: ldd)" \
		sh -c "chroot '$root' ldd '$b' >'$work/ldd.out' 2>&1 && ! grep 'not found' '$work/ldd.out'"
done
for ov in gridmeter-ct-mcp3008 gridmeter-ct-mcp3208; do
	check "install: the $ov overlay, compiled, with its parameters (__overrides__)" \
		sh -c "dtc -q -I dtb -O dts '$root/usr/share/gridmeter/overlays/$ov.dtbo' | grep -q __overrides__"
done
check "install: DKMS has gridmeter $v1 (built where the kernel's headers are)" \
	sh -c "chroot '$root' dkms status -m gridmeter | grep -q '^gridmeter/$v1'"
check "install: the DKMS tree has the two production modules' sources" \
	sh -c "[ -f '$root/usr/src/gridmeter-$v1/drivers/iio/ct/ct_sensor.c' ] && [ -f '$root/usr/src/gridmeter-$v1/drivers/tty/gm_ldisc.c' ] && [ -f '$root/usr/src/gridmeter-$v1/dkms.conf' ]"
check "install: nothing from tests/ (no gm_sim_adc, gm_selfcheck_warn, tests/ tree)" \
	sh -c "! chroot '$root' dpkg -L $pkgs | grep -E 'gm_sim_adc|selfcheck|/tests(/|\$)|simfleet|sim900sim'"

# --- the installer's and the meter's files -----------------------------------
echo "# local edit by the lifecycle test" >>"$root/etc/gridmeter/meterd.conf"
echo "# local edit by the lifecycle test" >>"$root/etc/gridmeter/meterweb.conf"
mkdir -p "$root/var/lib/gridmeter/outbox" "$root/etc/gridmeter/keys"
echo "meter registers $$" >"$root/var/lib/gridmeter/meterd.snap"
echo "town database $$" >"$root/var/lib/gridmeter/town.db"
echo "outbox record" >"$root/var/lib/gridmeter/outbox/0001"
echo "secret" >"$root/etc/gridmeter/keys/uplink.key"
printf "[mains]\nvoltage_gain = 1.0123\n" >"$root/etc/gridmeter/calibration.conf"
echo "secret" >"$root/etc/gridmeter/townd.key"
echo "hash" >"$root/etc/gridmeter/meterweb.passwd"
echo "[mqtt]" >"$root/etc/gridmeter/mqtt.conf"
sum_data() { (cd "$root" && cat etc/gridmeter/meterd.conf etc/gridmeter/meterweb.conf var/lib/gridmeter/meterd.snap \
	var/lib/gridmeter/town.db var/lib/gridmeter/outbox/0001 etc/gridmeter/keys/uplink.key etc/gridmeter/townd.key \
	etc/gridmeter/calibration.conf) | sha256sum; }
before=$(sum_data)

# --- upgrade ---------------------------------------------------------------
t=$(date +%s)
m=$(mark)
check "upgrade: dpkg -i of $v2 over $v1 (old conffiles kept: --force-confold)" \
	inroot dpkg -i --force-confdef --force-confold /tmp/v2/gridmeter-dkms_"$v2"_all.deb \
	/tmp/v2/gridmeter-meterd_"$v2"_amd64.deb /tmp/v2/gridmeter-web_"$v2"_amd64.deb \
	/tmp/v2/gridmeter-mqtt_"$v2"_amd64.deb /tmp/v2/gridmeter-townd_"$v2"_amd64.deb \
	/tmp/v2/gridmeter-maind_"$v2"_amd64.deb
tup=$(($(date +%s) - t))
for p in $pkgs; do
	check "upgrade: $p is $v2 and configured" \
		test "$(inroot dpkg-query -W -f='${Version} ${db:Status-Abbrev}' "$p" | cut -c1-$((${#v2} + 3)))" = "$v2 ii"
done
check "upgrade: conffile edits, meter data, outbox and keys kept (same bytes)" test "$(sum_data)" = "$before"
check "upgrade: meterd.conf still root:gridmeter 0640 (statoverride)" \
	test "$(inroot stat -c '%a %U %G' "/etc/gridmeter/meterd.conf")" = "640 root gridmeter"
for u in meterd.service meterweb.service townd.socket; do
	check "upgrade: $u restarted if it runs (try-restart), never stopped" \
		sh -c "tail -n +$((m + 1)) '$root/var/log/gm-invoke.log' | grep '$u' | grep -qv stop && ! tail -n +$((m + 1)) '$root/var/log/gm-invoke.log' | grep '$u' | grep -q -e stop -e '^restart' -e '^start'"
done
for u in gm-mqttd townd maind maind-notify maind-portal; do
	check "upgrade: $u.service restarted" invoked "$m" restart "$u.service"
done
check "upgrade: meterd.service and townd.service still enabled" \
	sh -c "[ -L '$root$wants/meterd.service' ] && [ -L '$root$wants/townd.service' ]"
check "upgrade: DKMS has $v2 only (the old version removed)" \
	sh -c "chroot '$root' dkms status -m gridmeter >'$work/dkms.out' && grep -q '^gridmeter/$v2' '$work/dkms.out' && ! grep -q '^gridmeter/$v1[,:]' '$work/dkms.out'"

# --- remove ----------------------------------------------------------------
m=$(mark)
check "remove: dpkg -r of every package" inroot dpkg -r $pkgs
for u in meterd.service meterweb.service gm-mqttd.service townd.service townd.socket maind.service \
	maind-notify.service maind-portal.service; do
	check "remove: $u stopped" invoked "$m" stop "$u"
done
for p in $pkgs; do
	want=rc
	[ "$p" = gridmeter-dkms ] && want=un   # no conffile: nothing is left of it
	check "remove: $p is $want" sh -c "s=\$(chroot '$root' dpkg-query -W -f='\${db:Status-Abbrev}' '$p' 2>/dev/null | cut -c1-2); [ \"\${s:-un}\" = $want ]"
done
for b in $bins; do
	check "remove: $b gone" absent "$b"
done
check "remove: conffile edits, meter data, outbox and keys kept (same bytes)" test "$(sum_data)" = "$before"
check "remove: the DKMS source and registration gone" \
	sh -c "[ ! -e '$root/usr/src/gridmeter-$v2' ] && ! chroot '$root' dkms status -m gridmeter | grep -q gridmeter"

# --- purge: the gateway's packages first, the town's still removed ------------
check "purge: dpkg -P of the gateway's packages" \
	inroot dpkg -P gridmeter-web gridmeter-mqtt gridmeter-meterd gridmeter-dkms
check "purge: meterd.conf, meterweb.conf, the modules-load file gone" \
	sh -c "! ls '$root/etc/gridmeter/meterd.conf'* '$root/etc/gridmeter/meterweb.conf'* '$root/etc/modules-load.d/gridmeter-link.conf' 2>/dev/null"
check "purge: the meter's keys, its on-site calibration and the household's password hash gone" \
	sh -c "[ ! -e '$root/etc/gridmeter/keys' ] && [ ! -e '$root/etc/gridmeter/calibration.conf' ] && [ ! -e '$root/etc/gridmeter/meterweb.passwd' ]"
check "purge: the meterd.conf statoverride gone" \
	sh -c "! chroot '$root' dpkg-statoverride --list /etc/gridmeter/meterd.conf"
check "purge: /var/lib/gridmeter kept while gridmeter-townd is removed, not purged" \
	present /var/lib/gridmeter/town.db
check "purge: the installer's mqtt.conf left (not the package's file)" present /etc/gridmeter/mqtt.conf
check "purge: meterd.service's enable symlink gone" absent "$wants/meterd.service"
check "purge: dpkg -P of the servers' packages" inroot dpkg -P gridmeter-townd gridmeter-maind
check "purge: townd.conf and townd.key gone" \
	sh -c "! ls '$root/etc/gridmeter/townd'* 2>/dev/null"
check "purge: /var/lib/gridmeter gone with the last package that keeps state there" absent /var/lib/gridmeter
check "purge: /var/spool/gridmeter gone" absent /var/spool/gridmeter
check "purge: townd.service's enable symlink gone" absent "$wants/townd.service"
for p in $pkgs; do
	check "purge: $p unknown to dpkg" sh -c "s=\$(chroot '$root' dpkg-query -W -f='\${db:Status-Abbrev}' '$p' 2>/dev/null | cut -c1-2); [ \"\${s:-un}\" = un ]"
done
check "purge: system users kept (Debian practice: files may still be theirs)" \
	sh -c "chroot '$root' getent passwd gridmeter && chroot '$root' getent passwd townd"

umount_all
echo "lifecycle: install ${tinst} s, upgrade ${tup} s, whole test $(($(date +%s) - t0)) s"
echo "packages: $P passed, $F failed, 0 skipped"
[ "$F" -eq 0 ]
