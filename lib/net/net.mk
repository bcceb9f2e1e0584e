# lib/net: socket plumbing the servers share. Use it as:
#   myprog_SRCS += $(NET_SRCS)
NET_SRCS := lib/net/sendq.c lib/net/listen.c
INCDIRS += lib/net
