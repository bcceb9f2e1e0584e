# maind-notify end to end (issue 13, Documentation/notices.md "Tests"): its
# own PostgreSQL (scripts/pg-cluster.sh), a real SMTP server on loopback
# (python3-aiosmtpd), the SIM900 simulator on a pty, letters through
# pdftotext. (= not :=: MAIND_* and NOTIFY_* come from server/maind.)
UNIT_TESTS += notice_test_deliver
notice_test_deliver_SRCS = $(MAIND_CORE) $(NOTIFY_SRCS) tests/sim900/sim900sim.c \
	server/maind/notices/mainctl_notice.c server/maind/mainctl_util.c \
	tests/main/pg_scratch.c tests/main/notice_test_deliver.c
notice_test_deliver_CFLAGS = $(MAIND_CFLAGS) $(NOTIFY_CFLAGS) -Itests/sim900
notice_test_deliver_PKGS = $(MAIND_PKGS) $(NOTIFY_PKGS)

# The formats alone: SMS text and parts, the e-mail message, notify.conf.
UNIT_TESTS += notice_test_format
notice_test_format_SRCS = $(CONF_SRCS) server/maind/notices/notice_sms.c \
	server/maind/notices/notice_mail.c server/maind/notices/notify_config.c \
	tests/main/notice_test_format.c
notice_test_format_CFLAGS = $(NOTIFY_CFLAGS)
notice_test_format_PKGS = libcurl libsodium
