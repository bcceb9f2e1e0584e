# Link layer (issue 4): kselftest programs run inside the QEMU guests.
LINK_GUEST_UTIL := $(GMLINK_SRCS) tests/guest/link/link_util.c

GUEST_TESTS += link_test_pty
link_test_pty_SRCS := $(LINK_GUEST_UTIL) tests/guest/link/link_test_pty.c
link_test_pty_CFLAGS := -Idrivers/tty -Itests/guest/link -pthread
link_test_pty_LDLIBS := -pthread

GUEST_TESTS += link_bench_pty
link_bench_pty_SRCS := $(LINK_GUEST_UTIL) tests/guest/link/link_bench_pty.c
link_bench_pty_CFLAGS := -Idrivers/tty -Itests/guest/link -pthread
link_bench_pty_LDLIBS := -pthread

GUEST_TESTS += link_test_twoguest
link_test_twoguest_SRCS := $(LINK_GUEST_UTIL) tests/guest/link/link_test_twoguest.c
# the 6.1 harness defines fixture setup/teardown without prototypes
link_test_twoguest_CFLAGS := -Idrivers/tty -Itests/guest/link -Wno-missing-prototypes
