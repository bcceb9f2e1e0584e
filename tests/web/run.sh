#!/bin/sh
# The browser tests (make check stage "web", Documentation/testing.md):
# headless Debian chromium driven by playwright-core against the real
# daemons, started by each runner's fixture.
#
#   tests/web/run.sh [NAME.mjs...]     all the runners below, or those named
#
# 1. builds what the runners need: the x86_64 programs (meterd, meterweb,
#    maind, maind-portal, mainctl...) and the fixtures' programs (make
#    web-progs: WEB_PROGS into build/host/web/);
# 2. runs scripts/web-deps.sh (chromium, node, npm packages), which waits
#    for the run make check started in the background;
# 3. runs every runner of RUNNERS with the command beside it: its fixture,
#    which starts the daemons, runs node on the runner with their URLs in
#    its environment, and stops them afterwards (each fixture's own way;
#    tests/web/README). A runner prints TAP and, last,
#    "NAME: N passed, N failed, N skipped"; a runner that is missing, exits
#    non-zero without a failure, or prints no such line counts as one
#    failure;
# 4. prints the sum "web: N passed, N failed, N skipped" and writes every
#    "# figure: ..." line (page weight, first contentful paint, RSS) to
#    build/web/figures.txt, under the name of the runner that printed it.
#
# GM_SCREENSHOTS=DIR is passed on (make screenshots: Documentation/images).
# Logs: build/web/NAME.log. Each runner is stopped after GM_WEB_TIMEOUT
# seconds (default 300; they take well under a minute each alone).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
out=build/web
mkdir -p "$out"
timeout_s=${GM_WEB_TIMEOUT:-300}

# runner (tests/web/NAME.mjs)   the command that runs it in its fixture
RUNNERS="
dashboard.mjs         tests/web/dashboard-run.sh
portal-customer.mjs   build/host/web/portal_world --run node tests/web/portal-customer.mjs
portal-operator.mjs   build/host/web/portal_world --run node tests/web/portal-operator.mjs
"

t0=$(date +%s)
P=0 F=0 S=0
fail_setup() {
	echo "not ok - $1"
	echo "web: 0 passed, 1 failed, 0 skipped"
	exit 1
}

echo "# building the programs and fixtures"
make -s --no-print-directory ARCH=x86_64 userspace web-progs >"$out/build.log" 2>&1 ||
	{ tail -n 40 "$out/build.log"; fail_setup "the programs the browser tests need do not build"; }
echo "# web-deps (chromium, node, npm packages)"
scripts/web-deps.sh >"$out/web-deps.log" 2>&1 ||
	{ cat "$out/web-deps.log"; fail_setup "scripts/web-deps.sh failed"; }
sed 's/^/# /' "$out/web-deps.log"
echo "# ready after $(($(date +%s) - t0)) s"

want=" $* "
: >"$out/figures.txt.tmp"
echo "$RUNNERS" | while read -r name cmd; do
	[ -n "$name" ] || continue
	case "$want" in "  ") ;; *" $name "*) ;; *) continue ;; esac
	echo "$name $cmd"
done >"$out/runners.list"

while read -r name cmd; do
	log=$out/${name%.mjs}.log
	s0=$(date +%s)
	echo "# --- $name: $cmd"
	# shellcheck disable=SC2086
	set -- $cmd
	if [ ! -f "tests/web/$name" ]; then
		echo "not ok - $name: tests/web/$name is missing"
		F=$((F + 1))
		continue
	fi
	if [ ! -x "$1" ] && ! command -v "$1" >/dev/null 2>&1; then
		echo "not ok - $name: $1 is missing (not built?)"
		F=$((F + 1))
		continue
	fi
	timeout -k 10 "$timeout_s" "$@" </dev/null >"$log" 2>&1
	rc=$?
	cat "$log"
	sum=$(grep -E "^[A-Za-z0-9_ .-]+: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped" "$log" | tail -n1)
	if [ -z "$sum" ]; then
		p=0 f=1 s=0
		echo "not ok - $name printed no result line (exit status $rc)"
	else
		p=$(echo "$sum" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
		f=$(echo "$sum" | sed -E 's/.* ([0-9]+) failed.*/\1/')
		s=$(echo "$sum" | sed -E 's/.* ([0-9]+) skipped.*/\1/')
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1
			echo "not ok - $name exited with status $rc without reporting a failure"
		fi
	fi
	[ "$rc" -eq 124 ] && echo "# $name: stopped after $timeout_s s"
	echo "# $name: $p passed, $f failed, $s skipped in $(($(date +%s) - s0)) s"
	P=$((P + p)) F=$((F + f)) S=$((S + s))
	grep -E '^# figure:' "$log" | sed "s|^# figure: *|${name%.mjs}: |" >>"$out/figures.txt.tmp"
done <"$out/runners.list"

{
	echo "# Browser test figures ($(date -u +%Y-%m-%dT%H:%MZ), tests/web/run.sh; chromium"
	echo "# $(/usr/bin/chromium --version 2>/dev/null | head -n1), $(nproc) cores)"
	cat "$out/figures.txt.tmp"
} >"$out/figures.txt"
rm -f "$out/figures.txt.tmp"
echo "# figures: $out/figures.txt ($(($(wc -l <"$out/figures.txt") - 2)) lines); $(($(date +%s) - t0)) s in all"
echo "web: $P passed, $F failed, $S skipped"
[ "$F" -eq 0 ]
