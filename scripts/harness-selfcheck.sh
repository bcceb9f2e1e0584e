#!/bin/sh
# The harness must catch each way a guest run can go wrong even when no test
# says "not ok": a failing test, a kernel WARNING (from a module that WARNs
# on load) and a guest that hangs. Each run below must be judged failed.
# These runs are not part of the pass count of make check.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
arch=${1:-x86_64}
caught=0
# Each mode must fail for its own reason, not for an unrelated one (a build
# error would fail all three and prove nothing). The first run builds the
# initramfs; the other two boot it at the same time (their verdicts do not
# depend on speed).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
one() { # one MODE [ENV...]: run the guest with gm.selfcheck=MODE
	mode=$1
	shift
	tmo=300
	[ "$mode" = hang ] && tmo=25
	env "$@" GM_LOG_NAME="selfcheck-$mode" GM_GUEST_TIMEOUT=$tmo \
		scripts/guest-check.sh "$arch" gm.selfcheck="$mode" gm.tests=gm_env \
		>"$tmp/$mode.out" 2>&1
	echo $? >"$tmp/$mode.rc"
}
one fail
one warn GM_NO_BUILD=1 &
one hang GM_NO_BUILD=1 &
wait
for mode in fail warn hang; do
	case "$mode" in
	fail) want='^not ok .*deliberately_fails' ;;
	warn) want='^FAIL: (kernel: .*WARNING:|kernel tainted .*W)' ;;
	hang) want='^FAIL: guest did not finish' ;;
	esac
	rc=$(cat "$tmp/$mode.rc")
	reason=$(grep -E "$want" "$tmp/$mode.out" | head -n1)
	if [ "$rc" -ne 0 ] && [ -n "$reason" ]; then
		caught=$((caught + 1))
		echo "ok - self-check '$mode' failed the run as it must: $reason"
	else
		echo "not ok - self-check '$mode' was NOT caught by the harness"
		sed 's/^/    /' "$tmp/$mode.out"
	fi
done
echo "harness self-check ($arch): $caught of 3 failure modes caught"
[ $caught -eq 3 ]
