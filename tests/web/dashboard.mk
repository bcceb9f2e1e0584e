# The dashboard's browser test fixture (tests/web/dashboard-run.sh): a tool
# that writes a load-profile history with meterd's own store code (a
# WEB_PROGS helper, built into build/host/web/ by `make web-progs`).
WEB_PROGS += dashboard_seed
dashboard_seed_SRCS := tests/web/dashboard_seed.c agent/store/store.c agent/core/profile.c \
	drivers/tty/gm_frame.c

.PHONY: dashboard-tools
dashboard-tools: $(HOSTOUT)/web/dashboard_seed $(OUT)/bin/meterweb $(OUT)/bin/meterd
