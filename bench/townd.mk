# townd (issue 6): ingest rate (core and end to end on 127.0.0.1) and
# memory per connected meter. (= not :=: TOWND_* come from server/server.mk.)
BENCHES += townd_bench_ingest
townd_bench_ingest_SRCS = $(TOWND_CORE) $(TOWND_NET) tests/server/simmeter.c \
	tests/server/simtown.c bench/townd_bench_ingest.c
townd_bench_ingest_CFLAGS = $(TOWND_CFLAGS) -Itests/server
townd_bench_ingest_PKGS = $(TOWND_PKGS) libsystemd

# Allocation inside a town (issue 12): cost of a decision by meters taking part.
BENCHES += townd_bench_alloc
townd_bench_alloc_SRCS = server/townd_alloc.c bench/townd_bench_alloc.c
townd_bench_alloc_CFLAGS = -Iserver -Ilib/proto
