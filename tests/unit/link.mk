# Link layer (issue 4): host unit tests of the shared frame codec.
UNIT_TESTS += link_test_codec
link_test_codec_SRCS := drivers/tty/gm_frame.c tests/unit/link_test_codec.c
link_test_codec_CFLAGS := -Idrivers/tty

# libgmlink wrappers (no module needed)
UNIT_TESTS += link_test_lib
link_test_lib_SRCS := $(GMLINK_SRCS) tests/unit/link_test_lib.c
# The production ABI header: free ioctl magic, no test-only API.
UNIT_TESTS += link_test_abi
link_test_abi_SRCS := tests/unit/link_test_abi.c
