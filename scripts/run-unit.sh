#!/bin/sh
# Run host unit tests (kselftest-harness programs) and print one summary
# line "unit: N passed, N failed, N skipped". Exit non-zero on any failure,
# including a program that crashes before reporting.
set -u
pass=0 fail=0 skip=0
for t in "$@"; do
	name=$(basename "$t")
	log=$(mktemp)
	"$t" >"$log" 2>&1
	rc=$?
	p=$(grep -cE '^ok [0-9]+ ' "$log" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+ .*# SKIP' "$log" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+ ' "$log" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited with status $rc without reporting a failure"
	fi
	if [ "$f" -ne 0 ]; then
		echo "=== $name (failed) ==="
		cat "$log"
	else
		echo "ok - $name: $p passed${s:+, $s skipped}"
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	rm -f "$log"
done
echo "unit: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
