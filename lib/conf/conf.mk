# lib/conf: strict number/date parsers and the one INI reader every program
# uses for its configuration and key files. Use it as:
#   myprog_SRCS += $(CONF_SRCS)
CONF_SRCS := lib/conf/parse.c lib/conf/ini.c
INCDIRS += lib/conf
