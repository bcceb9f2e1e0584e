# lib/file: replacing a file so that a power cut leaves the old contents or
# the new, never a mix or nothing. Use it as:
#   myprog_SRCS += $(FILE_SRCS)
FILE_SRCS := lib/file/atomic_file.c
INCDIRS += lib/file
