# libgmproto (issue 6): meter <-> town server messages (CBOR) and the
# end-to-end AEAD session (libsodium). Use it as:
#   myprog_SRCS += $(GMPROTO_SRCS)
#   myprog_CFLAGS += $(GMPROTO_CFLAGS)
#   myprog_PKGS += $(GMPROTO_PKGS)
GMPROTO_SRCS := lib/gmproto.c
GMPROTO_CFLAGS := -Ilib
GMPROTO_PKGS := libsodium libcbor
