#!/bin/sh
# What the browser tests need beyond scripts/deps.sh (Documentation/testing.md,
# "The web stage"): Debian's chromium, node and npm, and the npm packages of
# web/package-lock.json in build/npm (scripts/web-npm.sh). Idempotent: when
# everything is there it takes well under a second. Logs what it does.
#
#   scripts/web-deps.sh [node|all]
#
# `node`: node, npm and the npm packages only (make check runs this first:
# the unit build needs uPlot for build/web/assets.c). `all` (the default):
# chromium too. make check starts `all` in the background at its start
# (chromium is about 80 MB to download and 290 MB installed: kept off the
# critical path); tests/web/run.sh runs it again, which waits for the
# background run (one run at a time: build/web/deps.lock) and then finds
# everything in place.
#
# The host's apt and dpkg are used while build/web/apt.lock is held, so that
# scripts/check.sh can keep the other host apt users (the arm64 cache's
# first `dpkg --add-architecture`) from running at the same time; apt-get
# itself waits for a dpkg lock held by anything else (DPkg::Lock::Timeout).
# Only Debian bookworm amd64 packages are installed. The browser is never
# downloaded by npm or playwright (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD,
# --ignore-scripts in web-npm.sh).
set -eu
what=${1:-all}
case $what in node | all) ;; *) echo "usage: $0 [node|all]" >&2; exit 2 ;; esac
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mkdir -p build/web
t0=$(date +%s)
say() { echo "web-deps: $*"; }

exec 8>build/web/deps.lock
if ! flock -n 8; then
	say "another run is installing; waiting for it"
	flock 8
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
APT="$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600"

need=""
if [ "$what" = node ]; then
	:
elif [ -x /usr/bin/chromium ]; then
	say "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
else
	need="chromium"
fi
# node and npm: the machine's own if present (CI: Node 20 with its npm);
# else Debian's (nodejs 18 and npm are separate packages there).
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
	say "node $(node --version), npm $(npm --version) ($(command -v npm))"
else
	command -v node >/dev/null 2>&1 || need="$need nodejs"
	need="$need npm"
fi

if [ -n "$need" ]; then
	exec 9>build/web/apt.lock
	flock 9
	# The package lists are refreshed only when they do not know a package
	# (scripts/deps.sh updated them if it installed anything).
	for p in $need; do
		cand=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
		if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
			say "apt-get update (no candidate for $p)"
			$SUDO apt-get -q -o DPkg::Lock::Timeout=600 update >build/web/apt-update.log 2>&1 ||
				{ cat build/web/apt-update.log; exit 1; }
			break
		fi
	done
	say "apt-get install --no-install-recommends$(printf ' %s' $need)"
	# shellcheck disable=SC2086
	$APT install --no-install-recommends $need >build/web/apt-install.log 2>&1 ||
		{ tail -n 30 build/web/apt-install.log; exit 1; }
	grep -E '^(Need to get|After this operation)' build/web/apt-install.log | sed 's/^/web-deps:   /' || true
	flock -u 9
	exec 9>&-
	[ "$what" = node ] || [ -x /usr/bin/chromium ] ||
		{ say "chromium still missing after apt-get"; exit 1; }
	say "installed:$(printf ' %s' $need) ($(($(date +%s) - t0)) s)"
fi

t1=$(date +%s)
# web-npm.sh runs `npm ci` only when web/package-lock.json changed
scripts/web-npm.sh
say "npm packages in build/npm ($(($(date +%s) - t1)) s)"
say "ready ($(($(date +%s) - t0)) s)"
