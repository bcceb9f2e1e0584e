# Benchmarks of the metering agent: resident memory, CPU per second of
# operation (callgrind instructions), journal and storage bytes.
BENCHES += agent_bench_meterd
agent_bench_meterd_SRCS := $(AGENT_CORE) $(AGENT_IO) tests/dbus/agent_privbus.c \
	bench/agent_bench_meterd.c
agent_bench_meterd_PKGS := $(meterd_PKGS)
agent_bench_meterd_CFLAGS := $(meterd_CFLAGS)
agent_bench_meterd_LDLIBS := -pthread
