# Link layer (issue 4): host benchmark of the shared codec (overhead vs
# PPP/HDLC, encoder/decoder throughput). pty and forwarding benchmarks run
# in the guest: tests/guest/link/link_bench_pty.
BENCHES += link_bench_codec
link_bench_codec_SRCS := drivers/tty/gm_frame.c bench/link_bench_codec.c
link_bench_codec_CFLAGS := -Idrivers/tty
