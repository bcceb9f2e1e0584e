# CT sensor metering math: accuracy table and instructions per sample pair.
BENCHES += ct_bench
ct_bench_SRCS := drivers/iio/ct/ct_metering.c bench/ct_bench.c
ct_bench_LDLIBS := -lm
# As in the kernel, which builds without SIMD: no auto-vectorisation.
ct_bench_CFLAGS := -fno-tree-vectorize
