#!/bin/sh
# Run host unit tests (kselftest-harness programs) and print one summary
# line "unit: N passed, N failed, N skipped". Exit non-zero on any failure,
# including a program that crashes before reporting.
# The programs run GM_JOBS at a time (default: one per core); each has its
# own temporary directories and ephemeral ports, and none depends on
# wall-clock speed. Results are reported in the order given.
set -u
jobs=${GM_JOBS:-$(nproc 2>/dev/null || echo 2)}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
i=0
for t in "$@"; do
	i=$((i + 1))
	printf '%s %s\n' "$i" "$t"
done | xargs -P "$jobs" -L 1 sh -c '"$2" >"$0/$1.log" 2>&1; echo $? >"$0/$1.rc"' "$dir"
pass=0 fail=0 skip=0
failed=
i=0
for t in "$@"; do
	i=$((i + 1))
	name=$(basename "$t")
	log=$dir/$i.log
	rc=$(cat "$dir/$i.rc" 2>/dev/null || echo 127)
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
		# the harness's "#  FAIL  global.case" lines name the cases
		cases=$(sed -nE 's/^# +FAIL +[^.]*\.([^ ]+).*/\1/p' "$log" | tr '\n' ' ')
		failed="$failed $name${cases:+ ($(echo $cases | sed 's/ /, /g'))}"
	else
		echo "ok - $name: $p passed${s:+, $s skipped}"
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done
echo "unit: $pass passed, $fail failed, $skip skipped"
# the names again, last, where a reader of the log's tail sees them
[ -z "$failed" ] || echo "failed tests:$failed"
[ "$fail" -eq 0 ]
