# maind's notices (issue 13, Documentation/notices.md): the delivery daemon
# maind-notify (e-mail over SMTP with libcurl, SMS through a SIM900 modem,
# PDF letters with cairo) and mainctl's notice commands. (= not :=: MAIND_*
# come from server/maind/maind.mk, read after this fragment.)
#
# The schema (notice_schema.c) and mainctl_notice.c are listed in maind.mk.
NOTIFY_SRCS = server/maind/notices/notify.c server/maind/notices/notify_config.c \
	server/maind/notices/notice_mail.c server/maind/notices/notice_sms.c \
	server/maind/notices/notice_letter.c $(FILE_SRCS)
NOTIFY_CFLAGS = -Iserver/maind/notices
NOTIFY_PKGS = libcurl cairo

ifeq ($(ARCH),x86_64)
PROGS += maind-notify
maind-notify_SRCS = $(MAIND_CORE) $(NOTIFY_SRCS) server/maind/notices/maind_notify_main.c
maind-notify_CFLAGS = $(MAIND_CFLAGS) $(NOTIFY_CFLAGS)
maind-notify_PKGS = $(MAIND_PKGS) $(NOTIFY_PKGS)
endif
