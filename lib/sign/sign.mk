# lib/sign: operator-signed commands (Documentation/commands.md), verified by
# the meter and the town they target; replay memory on disk.
#   myprog_SRCS += $(GMSIGN_SRCS)
#   myprog_PKGS += $(GMSIGN_PKGS)
GMSIGN_SRCS := lib/sign/gmcmd.c lib/sign/gmcmd_keys.c lib/sign/seen.c
GMSIGN_PKGS := libsodium
INCDIRS += lib/sign
