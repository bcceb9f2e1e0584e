#!/bin/sh
# Build and run the link codec fuzzers (decoder: link_fuzz_rx, encoder
# round trip: link_fuzz_encode), the gmproto message decoder and
# envelope opener (proto_fuzz_decode), the configuration reader
# (conf_fuzz_ini) and the signed command and key set readers
# (sign_fuzz_decode) and the MQTT bridge's Tasmota payload reader
# (bridge_fuzz_tasmota, which also reads ESPHome payloads) for a bounded number of runs each.
#   tests/fuzz/run.sh [RUNS]   (default 200000; FUZZ_RUNS overrides too)
# Exit status is non-zero when a fuzzer finds a crash, leak or UB, or
# when the build fails. Artifacts go to build/host/fuzz/.
set -eu
cd "$(dirname "$0")/../.."
runs=${1:-${FUZZ_RUNS:-200000}}
out=build/host/fuzz
ksft=build/cache/linux-source/tools/testing/selftests
mkdir -p "$out/corpus" "$out/artifacts"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Iinclude -Iinclude/uapi -Idrivers/tty"
# shellcheck disable=SC2086
clang $CFLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-o "$out/link_fuzz_rx" tests/fuzz/link_fuzz_rx.c drivers/tty/gm_frame.c
# shellcheck disable=SC2086
clang $CFLAGS -DGM_FUZZ_SEEDS -o "$out/link_fuzz_seeds" \
	tests/fuzz/link_fuzz_rx.c drivers/tty/gm_frame.c
# shellcheck disable=SC2086
clang $CFLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-o "$out/link_fuzz_encode" tests/fuzz/link_fuzz_encode.c drivers/tty/gm_frame.c
PROTO_LIBS=$(pkg-config --cflags --libs libcbor libsodium)
# shellcheck disable=SC2086
clang $CFLAGS -Ilib/proto -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-o "$out/proto_fuzz_decode" tests/fuzz/proto_fuzz_decode.c lib/proto/gmproto.c $PROTO_LIBS
# shellcheck disable=SC2086
clang $CFLAGS -Ilib/proto -DGM_FUZZ_SEEDS -o "$out/proto_fuzz_seeds" \
	tests/fuzz/proto_fuzz_decode.c lib/proto/gmproto.c $PROTO_LIBS
clang $CFLAGS -Ilib/conf -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-o "$out/conf_fuzz_ini" tests/fuzz/conf_fuzz_ini.c lib/conf/ini.c lib/conf/parse.c
SIGN_LIBS=$(pkg-config --cflags --libs libsodium)
# shellcheck disable=SC2086
clang $CFLAGS -Ilib/sign -Ilib/proto -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -o "$out/sign_fuzz_decode" tests/fuzz/sign_fuzz_decode.c \
	lib/sign/gmcmd.c lib/sign/gmcmd_keys.c $SIGN_LIBS
# shellcheck disable=SC2086
clang $CFLAGS -Ilib/sign -Ilib/proto -DGM_FUZZ_SEEDS -o "$out/sign_fuzz_seeds" \
	tests/fuzz/sign_fuzz_decode.c lib/sign/gmcmd.c lib/sign/gmcmd_keys.c $SIGN_LIBS
clang $CFLAGS -Iagent/bridge -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-o "$out/bridge_fuzz_tasmota" tests/fuzz/bridge_fuzz_tasmota.c agent/bridge/json_scan.c \
	agent/bridge/tasmota.c agent/bridge/esphome.c
"$out/link_fuzz_seeds" "$out/corpus"
mkdir -p "$out/corpus-encode" "$out/corpus-proto" "$out/corpus-ini" "$out/corpus-sign" "$out/corpus-tasmota"
# Seeds: the documented Tasmota payloads the unit test uses (one per line there).
sed -n 's/^tasmota_seed: //p' tests/fuzz/bridge_seeds.txt | while IFS= read -r l; do
	printf '%s' "$l" >"$out/corpus-tasmota/$(printf '%s' "$l" | cksum | cut -d' ' -f1)"
done
"$out/sign_fuzz_seeds" "$out/corpus-sign"
cp agent/system/meterd.conf.example server/townd.conf.example "$out/corpus-ini/"
"$out/proto_fuzz_seeds" "$out/corpus-proto"
rc=0
for f in link_fuzz_rx link_fuzz_encode proto_fuzz_decode conf_fuzz_ini sign_fuzz_decode bridge_fuzz_tasmota; do
	corpus=$out/corpus
	[ $f = link_fuzz_encode ] && corpus=$out/corpus-encode
	[ $f = proto_fuzz_decode ] && corpus=$out/corpus-proto
	[ $f = conf_fuzz_ini ] && corpus=$out/corpus-ini
	[ $f = sign_fuzz_decode ] && corpus=$out/corpus-sign
	[ $f = bridge_fuzz_tasmota ] && corpus=$out/corpus-tasmota
	log=$out/$f.log
	if "$out/$f" -runs="$runs" -max_len=4096 -seed=1 \
		-artifact_prefix="$out/artifacts/" "$corpus" >"$log" 2>&1; then
		echo "fuzz: $f: $runs runs, no crash (corpus: $(ls "$corpus" | wc -l) inputs)"
	else
		tail -n 40 "$log" >&2
		echo "fuzz: $f FAILED (log: $log)" >&2
		rc=1
	fi
done
exit $rc
