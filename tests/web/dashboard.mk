# The dashboard's browser test fixture (tests/web/dashboard-run.sh): a tool
# that writes a load-profile history with meterd's own store code.
WEB_TOOLS += $(HOSTOUT)/tools/dashboard_seed
DASHBOARD_SEED_SRCS := tests/web/dashboard_seed.c agent/store/store.c agent/core/profile.c drivers/tty/gm_frame.c

$(HOSTOUT)/tools/dashboard_seed: $(DASHBOARD_SEED_SRCS) | $(KSFT)/kselftest_harness.h
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(HOSTCC) $(BASE_CFLAGS) -o $@ $(DASHBOARD_SEED_SRCS)

.PHONY: dashboard-tools
dashboard-tools: $(HOSTOUT)/tools/dashboard_seed $(OUT)/bin/meterweb $(OUT)/bin/meterd
