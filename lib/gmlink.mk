# libgmlink (issue 4): the kernel's frame codec plus /dev/gmlink wrappers,
# for every userspace user of the link layer. Use it as:
#   myprog_SRCS += $(GMLINK_SRCS)
#   myprog_CFLAGS += $(GMLINK_CFLAGS)
GMLINK_SRCS := drivers/tty/gm_frame.c lib/gmlink.c
GMLINK_CFLAGS := -Idrivers/tty -Ilib

PROGS += gmlinkctl
gmlinkctl_SRCS := $(GMLINK_SRCS) lib/gmlinkctl.c
gmlinkctl_CFLAGS := $(GMLINK_CFLAGS)
