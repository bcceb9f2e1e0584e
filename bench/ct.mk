# CT sensor metering math: accuracy table and instructions per sample pair.
BENCHES += ct_bench
ct_bench_SRCS := drivers/iio/ct/ct_metering.c bench/ct_bench.c
ct_bench_LDLIBS := -lm
# Code generation as in a kernel module, whose instructions it counts: no
# auto-vectorisation (the kernel builds without SIMD) and no position-
# independent code (a module addresses its tables directly, where a PIE
# computes each address RIP-relative first).
ct_bench_CFLAGS := -fno-tree-vectorize -fno-pie
ct_bench_LDFLAGS := -no-pie
