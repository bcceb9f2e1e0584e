# maind billing (issue 13): the monthly bill run for 1,000,000 customers
# and the storage per meter and year in PostgreSQL 15 (`make bench`, or
# build/host/bench/maind_bench_bill [METERS]). Not part of make check.
# (= not :=: MAIND_* come from server/maind/maind.mk.)
BENCHES += maind_bench_bill
maind_bench_bill_SRCS = $(MAIND_CORE) bench/maind_bench_bill.c
maind_bench_bill_CFLAGS = $(MAIND_CFLAGS)
maind_bench_bill_PKGS = $(MAIND_PKGS)
