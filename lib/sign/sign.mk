# lib/sign: operator-signed commands (Documentation/commands.md), verified by
# the meter and the town they target; replay memory on disk.
#   myprog_SRCS += $(GMSIGN_SRCS)
#   myprog_PKGS += $(GMSIGN_PKGS)
GMSIGN_SRCS := lib/sign/gmcmd.c lib/sign/gmcmd_keys.c lib/sign/seen.c $(FILE_SRCS)
GMSIGN_PKGS := libsodium
INCDIRS += lib/sign

# gmsign: the operators' tool (keys, new commands, signatures), libsodium only
PROGS += gmsign
gmsign_SRCS := lib/sign/gmsign.c $(GMSIGN_SRCS)
gmsign_PKGS := $(GMSIGN_PKGS)
