# lib/sign: operator-signed commands and the replay memory.
UNIT_TESTS += sign_test_cmd
sign_test_cmd_SRCS := $(GMSIGN_SRCS) tests/unit/sign_test_cmd.c
sign_test_cmd_PKGS := $(GMSIGN_PKGS)
