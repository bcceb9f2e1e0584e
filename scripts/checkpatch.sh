#!/bin/sh
# checkpatch.pl --strict (from Debian's linux-source) over every kernel
# source file of the project. Any ERROR, WARNING or CHECK fails.
# Usage: checkpatch.sh LABEL DIR (DIR/scripts/checkpatch.pl)
# The files are checked in parallel (one perl per core).
set -u
label=$1
src=$(cd "$2" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
files=$(find drivers tests/kmod include/uapi -name '*.[ch]' | sort)
n=$(echo "$files" | wc -l)
# one line of findings per file with any, in file order
out=$(echo "$files" | xargs -P "$(nproc)" -I{} sh -c '
	f=$(perl "$1/scripts/checkpatch.pl" --no-tree --strict --quiet --terse \
		--ignore FILE_PATH_CHANGES -f "$2" 2>&1 | grep -E ": (ERROR|WARNING|CHECK):")
	[ -z "$f" ] || printf "%s\n" "$f"' sh "$src" {} | sort -t: -k1,1 -s)
bad=0
[ -z "$out" ] || { echo "$out"; bad=$(echo "$out" | cut -d: -f1 | sort -u | wc -l); }
echo "checkpatch --strict ($label): $n files, $bad with findings"
[ "$bad" -eq 0 ]
