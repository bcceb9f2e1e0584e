# The dashboard's browser test fixture (tests/web/dashboard-run.sh): a tool
# that writes a load-profile history with meterd's own store code (a
# WEB_PROGS helper, built into build/host/web/ by `make web-progs`).
WEB_PROGS += dashboard_seed
dashboard_seed_SRCS := tests/web/dashboard_seed.c agent/store/store.c agent/core/profile.c \
	drivers/tty/gm_frame.c

.PHONY: dashboard-tools
dashboard-tools: $(HOSTOUT)/web/dashboard_seed $(HOSTOUT)/web/dashboard_plug $(OUT)/bin/meterweb $(OUT)/bin/meterd

# A stand-in for the MQTT bridge: ReportLoad calls from stdin on one bus
# connection (dashboard_plug.c).
WEB_PROGS += dashboard_plug
dashboard_plug_SRCS := tests/web/dashboard_plug.c
dashboard_plug_PKGS := libsystemd
