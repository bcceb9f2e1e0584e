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

# instructions in function $1 of a --callgrind run, and the count its line $2 gives
count() {
	valgrind --tool=callgrind --callgrind-out-file="$out/$1.out" --toggle-collect="$1" \
		"$bin" --callgrind >"$out/stdout" 2>"$out/stderr"
	n=$(sed -n "s/^$2 //p" "$out/stdout")
	ir=$(callgrind_annotate "$out/$1.out" 2>/dev/null |
		sed -n 's/^ *\([0-9,]*\) *(100.0%) *PROGRAM TOTALS.*/\1/p' | tr -d ,)
	if [ -z "$ir" ]; then
		ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/$1.out")
	fi
}

count ingest_measured messages
echo "callgrind: ingest core (decode, authenticate, decrypt, store, ack, commit; synchronous=normal):"
echo "  $ir instructions for $n messages: $((ir / n)) instructions per message"
count handshake_measured handshakes
echo "callgrind: handshakes (HELLO opened, replay memory, command floor, session, WELCOME sealed, commit):"
echo "  $ir instructions for $n handshakes: $((ir / n)) instructions per handshake"
rm -rf "$out"
