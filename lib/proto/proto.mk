# lib/proto: the gmproto protocol both ends share (Documentation/protocol.md).
#   GMPROTO_SRCS   messages (CBOR) and the AEAD envelope (libsodium)
#   GMPCLIENT_SRCS the client end of a link: outbox on disk, records out,
#                  acknowledgements and commands in (meterd; townd upstream)
#   GMPSERVER_SRCS the server end of a tier link, storage behind hooks (maind;
#                  townd for its neighbours); needs drivers/tty/gm_frame.c
#                  (in GMPCLIENT_SRCS, or add it)
# Use it as:
#   myprog_SRCS += $(GMPROTO_SRCS)
#   myprog_PKGS += $(GMPROTO_PKGS)
GMPROTO_SRCS := lib/proto/gmproto.c
GMPROTO_PKGS := libsodium libcbor
GMPCLIENT_SRCS := drivers/tty/gm_frame.c lib/proto/outbox.c lib/proto/gmp_client.c
INCDIRS += lib/proto drivers/tty
GMPSERVER_SRCS := lib/proto/gmp_server.c
