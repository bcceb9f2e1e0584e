# CT sensor metering math, host unit tests (kselftest harness).
UNIT_TESTS += ct_test_metering
ct_test_metering_SRCS := drivers/iio/ct/ct_metering.c tests/unit/ct_test_metering.c
ct_test_metering_LDLIBS := -lm
# The same tests with UBSan trapping on the first undefined behaviour (signed
# overflow in the fixed-point math included).
UNIT_TESTS += ct_test_metering_ubsan
ct_test_metering_ubsan_SRCS := $(ct_test_metering_SRCS)
ct_test_metering_ubsan_LDLIBS := -lm
ct_test_metering_ubsan_CFLAGS := -fsanitize=undefined -fno-sanitize-recover=all
# Faults of issue 11: missed samples, off-nominal frequency, creep and the
# starting current, readings beyond 32 bits.
UNIT_TESTS += ct_test_faults
ct_test_faults_SRCS := drivers/iio/ct/ct_metering.c tests/unit/ct_test_faults.c
ct_test_faults_LDLIBS := -lm
