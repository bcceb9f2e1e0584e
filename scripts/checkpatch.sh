#!/bin/sh
# checkpatch.pl --strict (from Debian's linux-source) over every kernel
# source file of the project. Any ERROR, WARNING or CHECK fails.
# Usage: checkpatch.sh LABEL DIR (DIR/scripts/checkpatch.pl)
set -u
label=$1
src=$(cd "$2" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
files=$(find drivers tests/kmod include/uapi -name '*.[ch]' | sort)
bad=0 n=0
for f in $files; do
	n=$((n + 1))
	out=$(perl "$src/scripts/checkpatch.pl" --no-tree --strict --quiet --terse \
		--ignore FILE_PATH_CHANGES -f "$f" 2>&1 | grep -E ': (ERROR|WARNING|CHECK):')
	if [ -n "$out" ]; then
		echo "$out"
		bad=$((bad + 1))
	fi
done
echo "checkpatch --strict ($label): $n files, $bad with findings"
[ $bad -eq 0 ]
