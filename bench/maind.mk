# maind (issue 12): ingest of one hour of 1,000,000 meters into PostgreSQL
# 15 (fsync on) through gmp_server and maind_pg; bytes per meter-hour.
# (= not :=: MAIND_* come from server/maind/maind.mk.)
BENCHES += maind_bench_ingest
maind_bench_ingest_SRCS = $(MAIND_CORE) lib/proto/outbox.c lib/proto/gmp_client.c \
	bench/maind_bench_ingest.c
maind_bench_ingest_CFLAGS = $(MAIND_CFLAGS)
maind_bench_ingest_PKGS = $(MAIND_PKGS)
