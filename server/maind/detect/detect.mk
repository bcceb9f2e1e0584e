# maind's attack and theft detection (issue 13, Documentation/detection.md).
# det_store.c and mainctl_alert.c are listed in server/maind/maind.mk; the
# rules are added here. (+= on recursively expanded lists: the order in
# which the fragments are read does not matter.)
MAIND_PARTS += server/maind/detect/det_raise.c server/maind/detect/det_balance.c \
	server/maind/detect/det_silent.c server/maind/detect/det_alarms.c \
	server/maind/detect/det_security.c
