#!/bin/sh
# The pages' npm packages (web/package.json, pinned by web/package-lock.json):
# uPlot, built into the web daemons, and playwright-core, which drives
# Debian's chromium in the browser tests. Installed with `npm ci` into
# build/npm (never into the source tree); npm's download cache is kept in
# build/cache/npm. playwright-core never downloads a browser.
#   scripts/web-npm.sh            install if the lock file changed
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/npm
if [ -f "$out/.stamp" ] && cmp -s "$top/web/package-lock.json" "$out/package-lock.json"; then
	exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "web-npm: npm is missing (scripts/deps.sh installs it)" >&2; exit 1; }
mkdir -p "$out" "$top/build/cache/npm"
rm -f "$out/.stamp"
cp "$top/web/package.json" "$top/web/package-lock.json" "$out/"
cd "$out"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts \
	--cache "$top/build/cache/npm" >npm.log 2>&1 || { cat npm.log >&2; exit 1; }
touch .stamp
