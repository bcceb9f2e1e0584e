#!/bin/sh
# townd ingest benchmark: the wall-clock figures of the binary, then the
# ingest core's instructions per message and per handshake under callgrind
# (stable between machines and runs, unlike messages/s).
set -eu
bin=$1
"$bin"
if ! command -v valgrind >/dev/null 2>&1; then
	echo "callgrind: valgrind not installed, skipped"
	exit 0
fi
out=$(mktemp -d)
valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" --toggle-collect=ingest_measured \
	"$bin" --callgrind >"$out/stdout" 2>"$out/stderr"
n=$(sed -n 's/^messages //p' "$out/stdout")
ir=$(callgrind_annotate "$out/cg.out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) *(100.0%) *PROGRAM TOTALS.*/\1/p' | tr -d ,)
if [ -z "$ir" ]; then
	ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/cg.out")
fi
echo "callgrind: ingest core (decode, authenticate, decrypt, store, ack, commit; synchronous=normal):"
echo "  $ir instructions for $n messages: $((ir / n)) instructions per message"
valgrind --tool=callgrind --callgrind-out-file="$out/hs.out" --toggle-collect=handshake_measured \
	"$bin" --callgrind >"$out/stdout" 2>"$out/stderr"
h=$(sed -n 's/^handshakes //p' "$out/stdout")
ir=$(callgrind_annotate "$out/hs.out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) *(100.0%) *PROGRAM TOTALS.*/\1/p' | tr -d ,)
if [ -z "$ir" ]; then
	ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/hs.out")
fi
echo "callgrind: handshakes (HELLO opened, replay memory, command floor, session, WELCOME sealed, commit):"
echo "  $ir instructions for $h handshakes: $((ir / h)) instructions per handshake"
rm -rf "$out"
