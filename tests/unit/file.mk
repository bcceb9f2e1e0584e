# lib/file: atomic, durable replacement of a file.
UNIT_TESTS += file_test_atomic
file_test_atomic_SRCS := $(FILE_SRCS) tests/unit/file_test_atomic.c
