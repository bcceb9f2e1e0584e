#!/bin/sh
# make bench: run every host benchmark (BENCHES in bench/*.mk) and keep the
# figures in build/bench/NAME.txt. Benchmarks print counts a reader can
# compare (instructions from callgrind, bytes, ratios), never a pass/fail
# wall-clock verdict. A benchmark named NAME may come with bench/NAME.sh,
# which is run instead of the binary (for example to drive callgrind).
set -u
dir=$1
shift
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$top/build/bench"
rc=0
for b in "$@"; do
	echo "=== $b"
	if [ -x "$top/bench/$b.sh" ]; then
		"$top/bench/$b.sh" "$dir/$b"
	else
		"$dir/$b"
	fi >"$top/build/bench/$b.txt" 2>&1 || { echo "$b failed" >&2; rc=1; }
	cat "$top/build/bench/$b.txt"
done
exit $rc
