# lib/link: the kernel's frame codec plus /dev/gmlink wrappers, for every
# userspace user of the link layer. Use it as:
#   myprog_SRCS += $(GMLINK_SRCS)
GMLINK_SRCS := drivers/tty/gm_frame.c lib/link/gmlink.c
INCDIRS += lib/link drivers/tty tests/include

PROGS += gmlinkctl
gmlinkctl_SRCS := $(GMLINK_SRCS) lib/link/gmlinkctl.c
