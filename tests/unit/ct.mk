# CT sensor metering math, host unit tests (kselftest harness).
UNIT_TESTS += ct_test_metering
ct_test_metering_SRCS := drivers/iio/ct/ct_metering.c tests/unit/ct_test_metering.c
ct_test_metering_LDLIBS := -lm
