#!/bin/sh
# Extract the few files gridmeter takes from Debian's linux-source-6.1 at
# build time (they are never copied into the repository):
# kselftest_harness.h/kselftest.h for every test program, and checkpatch.pl
# with its data files.
set -eu
dest=$1
tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1)
[ -n "$tarball" ] || { echo "linux-source: no /usr/src/linux-source-*.tar.xz (run scripts/deps.sh)" >&2; exit 1; }
mkdir -p "$dest.tmp"
tar -xJf "$tarball" -C "$dest.tmp" --strip-components=1 --wildcards \
	'*/tools/testing/selftests/kselftest_harness.h' \
	'*/tools/testing/selftests/kselftest.h' \
	'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
	'*/scripts/const_structs.checkpatch' '*/scripts/kernel-doc'
rm -rf "$dest"
mv "$dest.tmp" "$dest"
